"""Load a params file once, predict many feature sets: the Python seam of docs/contracts.md.

``Predictor.from_params_file(path, preset=None, options=None).predict(features, num_recycle=None)`` returns
the model-output dict (numpy) under DeepMind's names, with representations and run metadata.
:meth:`Predictor.run_recycle` runs one pass from explicit recycling inputs, so each recycle can be
compared with DeepMind's in isolation (the recycled distogram is discontinuous in its input).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from alphafold.common.hashing import file_sha256
from alphafold.errors import UserError
from alphafold.model.chunking import resolve_chunk_size
from alphafold.model.model import PREV_KEYS, AlphaFold, RecycleReport, recycle
from alphafold.model.options import RuntimeOptions
from alphafold.params.loader import is_untrained, load_into, read_params
from alphafold.params.presets import Preset, config_for_params, get_preset, preset_from_filename

log = logging.getLogger(__name__)

# Processed features the network reads (AF2 v2.3 names); each has a leading recycle axis.
BASE_FEATURES = (
    "aatype",
    "residue_index",
    "seq_mask",
    "target_feat",
    "msa_feat",
    "msa_mask",
    "extra_msa",
    "extra_msa_mask",
    "extra_has_deletion",
    "extra_deletion_value",
)
TEMPLATE_FEATURES = (
    "template_aatype",
    "template_all_atom_positions",
    "template_all_atom_masks",
    "template_mask",
    "template_pseudo_beta",
    "template_pseudo_beta_mask",
)
INTEGER_FEATURES = {"aatype", "residue_index", "extra_msa", "template_aatype"}


class Predictor:
    """A loaded network ready to run on processed features."""

    def __init__(
        self, model: AlphaFold, preset: Preset, options: RuntimeOptions, params_sha256: str, untrained: bool
    ):
        self.model = model
        self.preset = preset
        self.options = options
        self.params_sha256 = params_sha256
        self.untrained = untrained
        self.device = torch.device(options.device)
        self.dtype = torch.bfloat16 if options.dtype == "bfloat16" else torch.float32

    @classmethod
    def from_params_file(
        cls, path: str | Path, preset: str | None = None, options: RuntimeOptions | None = None
    ) -> Predictor:
        """Read a DeepMind-layout params file (preset from its name unless given) and build the network."""
        options = options or RuntimeOptions()
        params, meta = read_params(path)
        chosen = get_preset(preset) if preset else preset_from_filename(path)
        config = config_for_params(chosen, params, where=str(path))
        model = AlphaFold(config)
        load_into(model, params, where=str(path))
        device = torch.device(options.device)
        dtype = torch.float32
        if options.dtype == "bfloat16":
            if device.type == "cuda" and not torch.cuda.is_bf16_supported():
                raise UserError(options.device, "this GPU does not support bfloat16; use float32")
            dtype = torch.bfloat16
        model = model.to(device=device).eval()
        # bf16 for the trunk only: the structure module and heads stay float32, as DeepMind casts the
        # Evoformer's outputs before them
        model.evoformer.to(dtype=dtype)
        untrained = is_untrained(meta)
        if untrained:
            log.warning("%s holds untrained (random) parameters: outputs are not predictions", path)
        return cls(model, chosen, options, file_sha256(path), untrained)

    def required_features(self) -> tuple[str, ...]:
        return BASE_FEATURES + (TEMPLATE_FEATURES if self.model.config.template.enabled else ())

    def _tensors(
        self, features: Mapping[str, np.ndarray], where: str = "features"
    ) -> dict[str, torch.Tensor]:
        missing = [k for k in self.required_features() if k not in features]
        if missing:
            raise UserError(where, f"missing feature(s) {', '.join(missing)} (preset {self.preset.name})")
        out = {}
        for k in self.required_features():
            v = np.asarray(features[k])
            v = v.astype(np.int64) if k in INTEGER_FEATURES else v.astype(np.float32)
            out[k] = torch.from_numpy(v).to(self.device)
        return out

    def _chunk_size(self, batch: Mapping[str, torch.Tensor]) -> int | None:
        num_res = batch["aatype"].shape[-1]
        num_seq = max(batch["extra_msa"].shape[-2], batch["msa_feat"].shape[-3])
        heads = max(self.model.config.evoformer.num_heads_msa, self.model.config.evoformer.num_heads_pair)
        bytes_per = 2 if self.dtype == torch.bfloat16 else 4
        budget = self.options.memory_budget_gb
        free = None if budget is None else int(budget * 1e9)
        return resolve_chunk_size(
            self.options.chunk_size, num_res, num_seq, heads, self.device, bytes_per, free
        )

    def _outputs(
        self, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], num_recycles_run: int
    ) -> dict[str, np.ndarray]:
        result = {
            k: v.detach().float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
            for k, v in out.items()
            if not k.startswith("prev/")
        }
        result["meta/num_recycles_run"] = np.asarray(num_recycles_run, dtype=np.int32)
        result["meta/preset"] = np.asarray(self.preset.name.encode())
        result["meta/params_sha256"] = np.asarray(self.params_sha256.encode())
        result["meta/untrained"] = np.asarray(self.untrained)
        result["aatype"] = batch["aatype"].cpu().numpy().astype(np.int32)
        result["residue_index"] = batch["residue_index"].cpu().numpy().astype(np.int32)
        return result

    def num_recycles_in(self, features: Mapping[str, np.ndarray]) -> int:
        """The recycles the features carry: their leading axis minus one."""
        return int(np.asarray(features["aatype"]).shape[0]) - 1

    def predict(
        self, features: Mapping[str, np.ndarray], num_recycle: int | None = None, where: str = "features"
    ) -> dict[str, np.ndarray]:
        """Run Alg. 2 on processed features (leading recycle axis); returns the final pass's outputs."""
        tensors = self._tensors(features, where)
        available = self.num_recycles_in(features)
        if num_recycle is None:
            num_recycle = self.options.num_recycle if self.options.num_recycle is not None else available
        if num_recycle > available:
            raise UserError(
                where,
                f"num_recycle {num_recycle} needs {num_recycle + 1} recycle slices but the "
                f"features carry {available + 1}",
            )
        chunk_size = self._chunk_size({k: v[0] for k, v in tensors.items()})

        def report(r: RecycleReport) -> None:
            moved = "" if r.ca_movement is None else f", CA movement {r.ca_movement:.3f} Å"
            log.info("recycle %d/%d done in %.1f s%s", r.index, r.num_recycle, r.seconds, moved)

        start = time.perf_counter()
        with torch.inference_mode():
            out, ran = recycle(
                self.model, tensors, num_recycle, chunk_size, self.options.recycle_tolerance, report
            )
        result = self._outputs(out, {k: v[0] for k, v in tensors.items()}, ran)
        # wall time of the network (all passes), read by the outputs' scores JSON
        result["meta/timings/predict"] = np.asarray(time.perf_counter() - start, dtype=np.float64)
        return result

    def run_recycle(
        self, features: Mapping[str, np.ndarray], recycle_index: int, prev: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """One pass on slice ``recycle_index`` of the features from explicit recycling inputs
        ``prev_pos`` [N, 37, 3], ``prev_msa_first_row`` [N, c_m], ``prev_pair`` [N, N, c_z]."""
        tensors = self._tensors(features)
        batch = {k: v[recycle_index] for k, v in tensors.items()}
        prev_t = {k: torch.from_numpy(np.asarray(prev[k], np.float32)).to(self.device) for k in PREV_KEYS}
        with torch.inference_mode():
            out = self.model(batch, prev_t, self._chunk_size(batch))
        return self._outputs(out, batch, recycle_index)

    def with_options(self, **changes) -> Predictor:
        """The same loaded network under other runtime options (e.g. a chunk size)."""
        options = dataclasses.replace(self.options, **changes)
        return Predictor(self.model, self.preset, options, self.params_sha256, self.untrained)
