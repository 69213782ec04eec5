"""Everything a target's model outputs become on disk, named as AlphaFold2 names them.

Per model (``NAME`` = the model's preset, e.g. ``model_1_ptm``, or the file stem when presets repeat):
``unrelaxed_NAME.pdb`` / ``.cif`` (pLDDT in B-factors; ModelCIF), ``relaxed_NAME.pdb`` / ``.cif`` with
``--relax``, ``scores_NAME.json`` (mean pLDDT, pTM, ranking confidence, recycles run, timings, untrained),
``confidence_NAME.json`` (per-residue pLDDT, AlphaFold DB layout) and, for `_ptm` models,
``pae_NAME.json`` (AlphaFold DB layout).
Per target: ``ranking_debug.json`` (AF2's layout), ``ranked_0..N.pdb`` / ``.cif`` (relaxed when relaxed, as
AF2 does), ``relax_metrics.json`` with ``--relax``, ``plddt.png``, ``pae.png`` (`_ptm` models),
``msa_coverage.png`` (when features with an MSA are given) and ``summary.json``, which the campaign report
reads. Every file is written under a temporary name and renamed into place; ``summary.json`` is written
last, so its presence means the target's outputs are complete.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from alphafold import __version__
from alphafold.io_utils import write_text_atomic
from alphafold.outputs import confidence, plots
from alphafold.outputs.modelcif_writer import to_modelcif
from alphafold.outputs.structure import from_prediction, to_pdb

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"


def _text(value) -> str:
    value = np.asarray(value)
    if value.dtype.kind == "S":
        return value.reshape(-1)[0].decode() if value.size else ""
    if value.dtype.kind == "U":
        return str(value.reshape(-1)[0]) if value.size else ""
    return str(value)


def prediction_metadata(outputs: Mapping[str, np.ndarray]) -> dict:
    """Run metadata from the ``meta/*`` keys of a model-output dict (docs/contracts.md)."""
    meta = {
        "preset": _text(outputs["meta/preset"]) if "meta/preset" in outputs else None,
        "params_sha256": _text(outputs["meta/params_sha256"]) if "meta/params_sha256" in outputs else None,
        "num_recycles_run": (
            int(np.asarray(outputs["meta/num_recycles_run"]).reshape(-1)[0])
            if "meta/num_recycles_run" in outputs
            else None
        ),
        "untrained": bool(np.asarray(outputs.get("meta/untrained", False)).reshape(-1)[0]),
    }
    meta["timings"] = {
        k[len("meta/timings/") :]: float(np.asarray(v).reshape(-1)[0])
        for k, v in outputs.items()
        if k.startswith("meta/timings/")
    }
    return meta


def model_names(presets: Sequence[str | None], paths: Sequence[str]) -> list[str]:
    """One unique name per model: its preset, or its file stem when presets are missing or repeat."""
    stems = [Path(p).name.removesuffix(".npz") for p in paths]
    candidates = [p or s for p, s in zip(presets, stems)]
    if len(set(candidates)) == len(candidates):
        return candidates
    if len(set(stems)) != len(stems):
        raise ValueError(f"cannot name models uniquely: presets {presets} and file names {stems} repeat")
    return stems


def msa_from_features(features: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """[N, L] MSA letter ids from raw (``msa``) or processed (``true_msa``/``msa`` + ``extra_msa``) features.

    Processed features carry a leading recycle axis; slice 0 is used. Rows whose mask is all zero (padding)
    are dropped. The query is row 0.
    """

    def first_recycle(x, ndim):
        x = np.asarray(x)
        return x[0] if x.ndim == ndim + 1 else x

    blocks = []
    main_key = "true_msa" if "true_msa" in features else "msa"
    for key, mask_key in ((main_key, "msa_mask"), ("extra_msa", "extra_msa_mask")):
        if key not in features:
            continue
        msa = first_recycle(features[key], 2).astype(np.int64)
        if mask_key in features:
            mask = first_recycle(features[mask_key], 2)
            msa = msa[mask.sum(-1) > 0]
        blocks.append(msa)
    return np.concatenate(blocks, axis=0) if blocks else None


def write_target_outputs(
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    output_dir: str | os.PathLike,
    target: str,
    features: Mapping[str, np.ndarray] | None = None,
    relaxer=None,
) -> dict:
    """Write all per-model and per-target outputs of one target; return the summary (also written).

    predictions: model name → model-output dict (docs/contracts.md), in the order models were run.
    relaxer: optional :class:`alphafold.relax.amber.AmberRelaxer` (anything with ``relax(chain, remarks)``
    returning a ``RelaxResult``).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    lengths = {name: np.asarray(p["aatype"]).shape[0] for name, p in predictions.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"models of one target have different lengths: {lengths}")
    confidences, metas, final_chains, relax_metrics = {}, {}, {}, {}
    for name, outputs in predictions.items():
        started = time.perf_counter()
        meta = prediction_metadata(outputs)
        conf = confidence.model_confidence(outputs)
        chain = from_prediction(outputs, where=name)
        remarks = _remarks(name, meta, relaxed=False)
        write_text_atomic(out / f"unrelaxed_{name}.pdb", to_pdb(chain, remarks))
        cif_meta = {**meta, "ptm": conf.get("ptm")}
        write_text_atomic(out / f"unrelaxed_{name}.cif", to_modelcif(chain, name, conf["plddt"], cif_meta))
        write_text_atomic(out / f"confidence_{name}.json", confidence.plddt_json(conf["plddt"]))
        if "pae" in conf:
            write_text_atomic(out / f"pae_{name}.json", confidence.pae_json(conf["pae"], conf["max_pae"]))
        final = chain
        if relaxer is not None:
            relax_started = time.perf_counter()
            try:
                result = relaxer.relax(chain, remarks=_remarks(name, meta, relaxed=True))
            except (RuntimeError, ValueError) as err:
                # no summary.json is written: the target stays unfinished, its unrelaxed files kept
                raise RuntimeError(f"Amber relax of model {name} failed: {err}") from err
            final = result.chain
            meta["timings"]["relax"] = time.perf_counter() - relax_started
            relax_metrics[name] = result.metrics
            # as AF2: the relaxed PDB keeps its hydrogens, the relaxed mmCIF holds the heavy atoms
            write_text_atomic(out / f"relaxed_{name}.pdb", result.pdb)
            write_text_atomic(
                out / f"relaxed_{name}.cif",
                to_modelcif(final, name, conf["plddt"], {**cif_meta, "relaxed": True}),
            )
        meta["timings"]["write_outputs"] = time.perf_counter() - started
        confidences[name], metas[name], final_chains[name] = conf, meta, final
        logger.info(
            "%s %s: mean pLDDT %.2f%s",
            target,
            name,
            conf["mean_plddt"],
            f", pTM {conf['ptm']:.3f}" if "ptm" in conf else "",
        )

    ranking = confidence.rank_models(confidences)
    key = next(k for k in ranking if k != "order")
    write_text_atomic(out / "ranking_debug.json", json.dumps(ranking, indent=4))
    for name in predictions:
        conf, meta = confidences[name], metas[name]
        scores = {
            "model": name,
            "target": target,
            "mean_plddt": round(conf["mean_plddt"], 4),
            "ptm": round(conf["ptm"], 6) if "ptm" in conf else None,
            "ranking_confidence": round(confidence.ranking_confidence(conf, key), 6),
            "ranking_key": key,
            "rank": ranking["order"].index(name),
            "num_recycles_run": meta["num_recycles_run"],
            "preset": meta["preset"],
            "params_sha256": meta["params_sha256"],
            "untrained": meta["untrained"],
            "relaxed": relaxer is not None,
            "timings": {k: round(v, 4) for k, v in meta["timings"].items()},
            "software": f"alphafold-hpc {__version__}",
        }
        write_text_atomic(out / f"scores_{name}.json", json.dumps(scores, indent=2))
    for rank, name in enumerate(ranking["order"]):
        kind = "relaxed" if relaxer is not None else "unrelaxed"
        for ext in ("pdb", "cif"):
            write_text_atomic(out / f"ranked_{rank}.{ext}", (out / f"{kind}_{name}.{ext}").read_text())
    if relax_metrics:
        write_text_atomic(out / "relax_metrics.json", json.dumps(relax_metrics, indent=2))

    plot_files = _write_plots(out, target, confidences, features)
    best = ranking["order"][0]
    summary = {
        "target": target,
        "length": int(next(iter(lengths.values()))),
        "sequence": final_chains[best].sequence,
        "models": list(predictions),
        "order": ranking["order"],
        "ranking_key": key,
        "best_model": best,
        "best": {
            "mean_plddt": round(confidences[best]["mean_plddt"], 4),
            "ptm": round(confidences[best]["ptm"], 6) if "ptm" in confidences[best] else None,
            "ranking_confidence": round(confidence.ranking_confidence(confidences[best], key), 6),
        },
        "untrained": any(m["untrained"] for m in metas.values()),
        "relaxed": relaxer is not None,
        "files": {"ranked_0_pdb": "ranked_0.pdb", "ranked_0_cif": "ranked_0.cif", **plot_files},
    }
    write_text_atomic(out / SUMMARY_NAME, json.dumps(summary, indent=2))
    logger.info("%s: outputs written to %s (best %s)", target, out, best)
    return summary


def _remarks(name: str, meta: Mapping, relaxed: bool) -> list[str]:
    remarks = [
        f"alphafold-hpc {__version__} model {name}",
        f"params preset {meta['preset']}, params file sha256:",
        str(meta["params_sha256"]),  # 64 hex digits: a line of its own to fit 80 columns
        f"recycles run {meta['num_recycles_run']}; B-factor column holds pLDDT",
    ]
    if relaxed:
        remarks.append("Amber-relaxed (amber99sb, heavy-atom restraints)")
    if meta["untrained"]:
        remarks.append("UNTRAINED: made with random-weight params, not a real prediction")
    return remarks


def _write_plots(
    out: Path, target: str, confidences: Mapping[str, Mapping], features: Mapping[str, np.ndarray] | None
) -> dict[str, str]:
    files = {}
    plots.plot_plddt({n: c["plddt"] for n, c in confidences.items()}, out / "plddt.png", title=target)
    files["plddt_png"] = "plddt.png"
    paes = {n: (c["pae"], c["max_pae"]) for n, c in confidences.items() if "pae" in c}
    if paes:
        plots.plot_pae(paes, out / "pae.png", title=target)
        files["pae_png"] = "pae.png"
    msa = msa_from_features(features) if features is not None else None
    if msa is not None and msa.shape[0] > 0:
        plots.plot_msa_coverage(msa, out / "msa_coverage.png", title=f"{target}: MSA coverage")
        files["msa_coverage_png"] = "msa_coverage.png"
    return files
