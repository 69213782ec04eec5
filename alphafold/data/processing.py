"""Raw monomer features -> the processed features the model reads, as AlphaFold2 v2.3 makes them.

DeepMind's `features.np_example_to_features` (the TF input pipeline of `model/tf/input_pipeline.py`) for
monomer presets, rewritten in numpy:

1. once per target (deterministic): HHblits -> our residue ids, masks, the MSA profile, template residue
   ids/mask/pseudo-beta atoms, atom14/atom37 maps;
2. once per recycle, with fresh random draws (`resample_msa_in_recycling`, v2.3's default): cluster
   sampling (query always first), BERT masking, nearest-centre assignment and cluster profiles, extra-MSA
   subsampling, `msa_feat`/`target_feat`, then padding to the configured sizes.

Every feature gets a leading axis of size num_recycle + 1; recycle r reads slice r. The deterministic
arithmetic is bitwise equal to DeepMind's pipeline given the same random draws, and by default the draws
are DeepMind's too (`DeepMindSampler`: TF's Philox stream with the op seeds of DeepMind's graph), so a
given seed gives DeepMind's processed features; `rng="numpy"` draws from numpy's generator instead.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import numpy as np

from alphafold.data import processing_msa as pm
from alphafold.data import processing_structure as ps
from alphafold.errors import UserError

log = logging.getLogger(__name__)

TEMPLATE_FEATURES = ("template_aatype", "template_all_atom_masks", "template_all_atom_positions",
                     "template_sum_probs", "template_domain_names")

# Axes padded to a configured size, per processed feature ("msa", "extra", "templ"; None: kept).
_PADDED_AXES: dict[str, tuple[str | None, ...]] = {
    "msa_feat": ("msa", None, None), "msa_mask": ("msa", None), "msa_row_mask": ("msa",),
    "bert_mask": ("msa", None), "true_msa": ("msa", None),
    "extra_msa": ("extra", None), "extra_msa_mask": ("extra", None), "extra_msa_row_mask": ("extra",),
    "extra_has_deletion": ("extra", None), "extra_deletion_value": ("extra", None),
    "template_aatype": ("templ", None), "template_all_atom_masks": ("templ", None, None),
    "template_all_atom_positions": ("templ", None, None, None), "template_mask": ("templ",),
    "template_pseudo_beta": ("templ", None, None), "template_pseudo_beta_mask": ("templ", None),
    "template_sum_probs": ("templ", None),
}
# Processed features that do not change between recycles (computed once, repeated on the recycle axis).
_PER_TARGET = ("aatype", "residue_index", "seq_mask", "is_distillation", "random_crop_to_size_seed",
               "atom14_atom_exists", "residx_atom14_to_atom37", "residx_atom37_to_atom14",
               "atom37_atom_exists")


@dataclasses.dataclass(frozen=True)
class ProcessingConfig:
    """DeepMind's `data.common` / `data.eval` settings that matter for monomer inference.

    `max_msa_clusters` is before the template reduction: models that use templates keep
    `max_msa_clusters - max_templates` cluster centres (508 with the defaults), as DeepMind's configs do.
    """

    use_templates: bool = False
    max_msa_clusters: int = 512
    max_extra_msa: int = 1024
    max_templates: int = 4
    reduce_msa_clusters_by_max_templates: bool = False
    num_recycle: int = 3
    resample_msa_in_recycling: bool = True
    masked_msa_replace_fraction: float = 0.15
    uniform_prob: float = 0.1
    profile_prob: float = 0.1
    same_prob: float = 0.1

    def __post_init__(self):
        for name in ("max_msa_clusters", "max_extra_msa", "max_templates", "num_recycle"):
            if getattr(self, name) < 0:
                raise UserError(None, f"{name} must be >= 0, got {getattr(self, name)}")
        if self.num_msa_clusters < 1:
            raise UserError(None, f"max_msa_clusters {self.max_msa_clusters} leaves no cluster centre "
                                  f"(templates take {self.max_templates} rows)")

    @property
    def num_msa_clusters(self) -> int:
        if self.reduce_msa_clusters_by_max_templates:
            return self.max_msa_clusters - self.max_templates
        return self.max_msa_clusters

    @classmethod
    def from_preset(cls, name: str, **overrides) -> ProcessingConfig:
        """The data settings DeepMind's config diffs give preset `name` (model_1 .. model_5_ptm)."""
        from alphafold.params.presets import get_preset

        preset = get_preset(name)
        settings = dict(use_templates=preset.use_templates, max_msa_clusters=preset.max_msa_clusters,
                        max_extra_msa=preset.max_extra_msa, max_templates=preset.max_templates,
                        reduce_msa_clusters_by_max_templates=preset.use_templates)
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)


class RandomSampler:
    """The random draws of one processing run, from one seeded numpy generator."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def crop_seed(self) -> np.ndarray:
        info = np.iinfo(np.int32)
        return self.rng.integers(info.min, info.max, size=2, dtype=np.int32)

    def cluster_order(self, num_seq: int) -> np.ndarray:
        return pm.sample_cluster_order(num_seq, self.rng)

    def bert(self, msa: np.ndarray, profile: np.ndarray,
             config: ProcessingConfig) -> tuple[np.ndarray, np.ndarray]:
        mask = pm.sample_bert_mask(msa.shape, config.masked_msa_replace_fraction, self.rng)
        replacement = msa.copy()
        rows, cols = np.nonzero(mask)
        probs = pm.bert_probabilities(msa[rows, cols], profile[cols], config.uniform_prob,
                                      config.profile_prob, config.same_prob)
        replacement[rows, cols] = pm.sample_bert_replacements(probs, self.rng)
        return mask, replacement

    def extra_rows(self, num_extra: int, max_extra: int) -> np.ndarray:
        return pm.sample_extra_rows(num_extra, max_extra, self.rng)


class DeepMindSampler:
    """The random draws DeepMind's pipeline makes for `seed` (TF's Philox stream, `tf_random`).

    Op seeds follow the order DeepMind's transforms create random ops: two unused draws, the crop seed
    (op seed 0 of the pipeline's own seed counter, as in a fresh process), then per recycle sample the
    cluster shuffle, the BERT mask, the BERT replacement and the extra-MSA shuffle. With one sample these
    run once with op seeds 2..5; with several, `tf.map_fn` re-runs them with op seeds 0..3, run r.
    """

    def __init__(self, seed: int, num_samples: int):
        from alphafold.data import tf_random

        self._tf = tf_random
        self.seed = seed
        self.run = -1
        first = 2 if num_samples == 1 else 0
        self._ops = {name: tf_random.effective_seeds(seed, first + i)
                     for i, name in enumerate(("shuffle", "mask", "replace", "extra"))}
        self._single = num_samples == 1

    def crop_seed(self) -> np.ndarray:
        info = np.iinfo(np.int32)
        return self._tf.uniform_int32(self._tf.effective_seeds(self.seed, 0), (2,), info.min, info.max)

    def _run(self) -> int:
        return 0 if self._single else self.run

    def cluster_order(self, num_seq: int) -> np.ndarray:
        self.run += 1
        shuffled = self._tf.shuffle(self._ops["shuffle"], np.arange(1, num_seq), self._run())
        return np.concatenate([[0], shuffled]).astype(np.int64)

    def bert(self, msa: np.ndarray, profile: np.ndarray,
             config: ProcessingConfig) -> tuple[np.ndarray, np.ndarray]:
        fraction = config.masked_msa_replace_fraction
        mask = self._tf.uniform(self._ops["mask"], msa.shape, self._run()) < fraction
        probs = pm.bert_probabilities(msa, np.broadcast_to(profile, msa.shape + (22,)), config.uniform_prob,
                                      config.profile_prob, config.same_prob)
        logits = np.log(probs + np.float32(1e-10)).reshape(-1, probs.shape[-1])
        replacement = self._tf.categorical(self._ops["replace"], logits, self._run()).reshape(msa.shape)
        return mask, replacement

    def extra_rows(self, num_extra: int, max_extra: int) -> np.ndarray:
        return self._tf.shuffle(self._ops["extra"], np.arange(num_extra), self._run())[:max_extra]


def _shape_error(where: str, key: str, expected: str, got: tuple[int, ...]) -> UserError:
    return UserError(where, f"feature {key!r} has shape {got}, expected {expected}")


def validate_raw(raw: Mapping[str, np.ndarray], use_templates: bool, where: str = "raw features") -> None:
    """Check the raw features a monomer run needs: present, consistent shapes, residue ids in range.

    Raises:
        UserError: naming `where`, the feature and the problem.
    """
    required = ["aatype", "residue_index", "seq_length", "between_segment_residues", "msa"]
    if use_templates:
        required += list(TEMPLATE_FEATURES)
    missing = [k for k in required if k not in raw]
    if "deletion_matrix_int" not in raw and "deletion_matrix" not in raw:
        missing.append("deletion_matrix_int")
    if missing:
        raise UserError(where, f"missing feature(s) {', '.join(repr(k) for k in missing)}")
    aatype = raw["aatype"]
    if aatype.ndim != 2 or aatype.shape[1] != 21 or aatype.shape[0] == 0:
        raise _shape_error(where, "aatype", "[L, 21] with L >= 1", aatype.shape)
    num_res = aatype.shape[0]
    for key in ("residue_index", "between_segment_residues", "seq_length"):
        if raw[key].shape not in ((num_res,), (num_res, 1)):
            raise _shape_error(where, key, f"[{num_res}]", raw[key].shape)
    if int(np.asarray(raw["seq_length"]).ravel()[0]) != num_res:
        raise UserError(where, f"feature 'seq_length' says {int(np.asarray(raw['seq_length']).ravel()[0])} "
                               f"residues, 'aatype' has {num_res}")
    msa = raw["msa"]
    if msa.ndim != 2 or msa.shape[1] != num_res or msa.shape[0] == 0:
        raise _shape_error(where, "msa", f"[N, {num_res}] with N >= 1", msa.shape)
    if not np.issubdtype(msa.dtype, np.integer) or msa.min() < 0 or msa.max() > 21:
        raise UserError(where, "feature 'msa' must hold integer residue ids 0..21 (HHblits order)")
    deletion_key = "deletion_matrix_int" if "deletion_matrix_int" in raw else "deletion_matrix"
    if raw[deletion_key].shape != msa.shape:
        raise _shape_error(where, deletion_key, f"{list(msa.shape)} (as 'msa')", raw[deletion_key].shape)
    if use_templates:
        num_templates = raw["template_aatype"].shape[0] if raw["template_aatype"].ndim else -1
        expected = {"template_aatype": (num_templates, num_res, 22),
                    "template_all_atom_masks": (num_templates, num_res, 37),
                    "template_all_atom_positions": (num_templates, num_res, 37, 3)}
        for key, shape in expected.items():
            if raw[key].shape != shape:
                raise _shape_error(where, key, f"{list(shape)}", raw[key].shape)
        if raw["template_sum_probs"].shape not in ((num_templates, 1), (num_templates,)):
            raise _shape_error(where, "template_sum_probs", f"[{num_templates}, 1]",
                               raw["template_sum_probs"].shape)
        if raw["template_domain_names"].shape != (num_templates,):
            raise _shape_error(where, "template_domain_names", f"[{num_templates}]",
                               raw["template_domain_names"].shape)


def target_features(raw: Mapping[str, np.ndarray], config: ProcessingConfig) -> dict[str, np.ndarray]:
    """The deterministic per-target part (DeepMind's non-ensembled transforms)."""
    num_res = raw["aatype"].shape[0]
    deletions = raw["deletion_matrix_int"] if "deletion_matrix_int" in raw else raw["deletion_matrix"]
    msa = ps.hhblits_to_ours(np.asarray(raw["msa"], np.int64))
    f: dict[str, np.ndarray] = {
        "aatype": np.argmax(raw["aatype"], axis=-1).astype(np.int32),
        "residue_index": np.asarray(raw["residue_index"]).reshape(num_res).astype(np.int32),
        "between_segment_residues": np.asarray(raw["between_segment_residues"]).reshape(num_res).astype(
            np.int32),
        "seq_length": np.int32(num_res),
        "is_distillation": np.float32(0.0),
        "seq_mask": np.ones(num_res, np.float32),
        "msa": msa,
        "deletion_matrix": np.asarray(deletions).astype(np.float32),
        "msa_mask": np.ones(msa.shape, np.float32),
        "msa_row_mask": np.ones(msa.shape[0], np.float32),
    }
    f["hhblits_profile"] = pm.hhblits_profile(msa)
    if config.use_templates:
        positions = np.asarray(raw["template_all_atom_positions"], np.float32)
        masks = np.asarray(raw["template_all_atom_masks"], np.float32)
        f["template_aatype"] = ps.template_aatype(raw["template_aatype"])
        f["template_all_atom_positions"] = positions
        f["template_all_atom_masks"] = masks
        f["template_sum_probs"] = np.asarray(raw["template_sum_probs"], np.float32).reshape(-1, 1)
        f["template_mask"] = np.ones(len(raw["template_domain_names"]), np.float32)
        f["template_pseudo_beta"], f["template_pseudo_beta_mask"] = ps.pseudo_beta(
            f["template_aatype"], positions, masks)
    f.update(ps.atom14_maps(f["aatype"]))
    return f


def _pad(features: dict[str, np.ndarray], config: ProcessingConfig) -> dict[str, np.ndarray]:
    sizes = {"msa": config.num_msa_clusters, "extra": config.max_extra_msa, "templ": config.max_templates}
    out = {}
    for key, value in features.items():
        axes = _PADDED_AXES.get(key)
        if axes is None:
            out[key] = value
            continue
        pad = [(0, sizes[a] - value.shape[i]) if a else (0, 0) for i, a in enumerate(axes)]
        out[key] = np.pad(value, pad)
    return out


def sample_features(target: Mapping[str, np.ndarray], config: ProcessingConfig,
                    sampler) -> dict[str, np.ndarray]:
    """One recycle's processed features (DeepMind's ensembled transforms, then fixed-size padding)."""
    f = {k: v for k, v in target.items()}
    order = sampler.cluster_order(len(f["msa"]))
    pm.split_clusters(f, order, config.num_msa_clusters)
    mask_position, replacement = sampler.bert(f["msa"], f["hhblits_profile"], config)
    pm.apply_bert_mask(f, mask_position, replacement)
    assignment = pm.nearest_cluster(f["msa"], f["msa_mask"], f["extra_msa"], f["extra_msa_mask"])
    pm.summarize_clusters(f, assignment)
    if config.max_extra_msa:
        pm.crop_extra(f, sampler.extra_rows(len(f["extra_msa"]), config.max_extra_msa))
    else:
        for key in pm.MSA_ROW_FEATURES:
            f.pop("extra_" + key, None)
    pm.make_msa_feat(f)
    if config.use_templates:
        for key in _PADDED_AXES:
            if key.startswith("template_"):
                f[key] = f[key][: config.max_templates]
    keep = set(_PADDED_AXES) | set(_PER_TARGET) | {"seq_length", "msa_feat", "target_feat"}
    return _pad({k: v for k, v in f.items() if k in keep}, config)


RNGS = ("deepmind", "numpy")


def process_features(raw: Mapping[str, np.ndarray], config: ProcessingConfig, seed: int = 0, *,
                     rng: str = "deepmind", where: str = "raw features",
                     sampler=None) -> dict[str, np.ndarray]:
    """Processed features with a leading recycle axis of size `config.num_recycle + 1`.

    Args:
        raw: AF2 raw monomer features (docs/contracts.md), e.g. from `alphafold features`.
        config: data settings (see `ProcessingConfig.from_preset`).
        seed: seed of the random draws (cluster sampling, BERT masking, extra-MSA subsampling).
        rng: "deepmind" draws what DeepMind's pipeline draws for `seed` (TF's Philox stream), so the output
            is DeepMind's processed features; "numpy" uses numpy's generator (same distributions).
        where: the file name to put in error messages.
        sampler: replaces the random draws (tests replay recorded ones).
    """
    if rng not in RNGS:
        raise UserError(None, f"unknown random generator {rng!r}; choose one of {', '.join(RNGS)}")
    validate_raw(raw, config.use_templates, where)
    if sampler is None:
        num_samples = config.num_recycle + 1 if config.resample_msa_in_recycling else 1
        sampler = DeepMindSampler(seed, num_samples) if rng == "deepmind" else RandomSampler(seed)
    target = target_features(raw, config)
    target["random_crop_to_size_seed"] = sampler.crop_seed()
    num_samples = config.num_recycle + 1
    log.info("processing %d residues, %d MSA rows%s: %d cluster centres, %d extra rows, %d recycle "
             "samples", len(target["aatype"]), len(target["msa"]),
             f", {len(target['template_mask'])} templates" if config.use_templates else "",
             config.num_msa_clusters, config.max_extra_msa, num_samples)
    if config.resample_msa_in_recycling:
        samples = [sample_features(target, config, sampler) for _ in range(num_samples)]
    else:
        # DEVIATION(af2): without resampling DeepMind keeps a recycle axis of 1; we repeat the one sample
        # so every processed file has num_recycle + 1 slices (docs/contracts.md).
        samples = [sample_features(target, config, sampler)] * num_samples
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}
