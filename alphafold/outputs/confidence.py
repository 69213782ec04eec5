"""Confidence scores from model outputs, ranking, and their JSON forms (AlphaFold DB / AF2 layouts).

pLDDT (Jumper et al. 2021, Suppl. 1.9.6): expected lDDT-Cα over 50 equal bins of [0, 1], times 100.
PAE and pTM (Suppl. 1.9.7): the aligned-error head's 64 bins have edges ``breaks`` (63 values, 0 to 31 Å);
bin centres are the edges plus half a step, with one catch-all bin beyond the last edge (31.75 Å). pTM is
the TM-score expectation over those bins with d0 of Yang & Skolnick (2004) for N ≥ 19 residues, maximised
over the aligning residue.

Ranking: AF2 v2.3's monomer pipeline ranks every model by mean pLDDT and writes ``plddts`` in
``ranking_debug.json``; its multimer pipeline ranks by 0.8·ipTM + 0.2·pTM under ``iptm+ptm``. This project's
issue asks that ``_ptm`` models be ranked by pTM: when every model of a target has a pTM, ranking confidence
is pTM (key ``ptm``); otherwise it is mean pLDDT (key ``plddts``), as in AF2. Mixing the two in one ranking
would compare numbers on different scales, so the choice is made per target, never per model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np

NUM_PLDDT_BINS = 50
# The aligned-error head's bin edges when a file does not carry them: 64 bins, edges 0..31 Å (AF2 config
# `predicted_aligned_error.max_error_bin = 31`, `num_bins = 64`).
DEFAULT_PAE_BREAKS = np.linspace(0.0, 31.0, 63)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def plddt_from_logits(logits: np.ndarray) -> np.ndarray:
    """[L, 50] logits → [L] pLDDT in [0, 100]."""
    num_bins = logits.shape[-1]
    centres = (np.arange(num_bins) + 0.5) / num_bins
    return 100.0 * (_softmax(logits.astype(np.float64)) * centres).sum(-1)


def _pae_bin_centres(breaks: np.ndarray) -> np.ndarray:
    step = breaks[1] - breaks[0]
    centres = breaks + step / 2
    return np.append(centres, centres[-1] + step)


def pae_from_logits(logits: np.ndarray, breaks: np.ndarray) -> tuple[np.ndarray, float]:
    """[L, L, 64] logits and [63] breaks → ([L, L] expected aligned error in Å, max possible error)."""
    centres = _pae_bin_centres(breaks.astype(np.float64))
    return (_softmax(logits.astype(np.float64)) * centres).sum(-1), float(centres[-1])


def ptm_from_logits(
    logits: np.ndarray, breaks: np.ndarray, residue_weights: np.ndarray | None = None
) -> float:
    """Predicted TM-score from aligned-error logits (Suppl. 1.9.7 eq. 40)."""
    num_res = logits.shape[0]
    weights = np.ones(num_res) if residue_weights is None else residue_weights.astype(np.float64)
    n_eff = max(float(weights.sum()), 19.0)
    d0 = 1.24 * (n_eff - 15.0) ** (1.0 / 3.0) - 1.8
    centres = _pae_bin_centres(breaks.astype(np.float64))
    tm_per_bin = 1.0 / (1.0 + (centres / d0) ** 2)
    # [L, L]: expected TM term for residue j when aligned on residue i
    expected = (_softmax(logits.astype(np.float64)) * tm_per_bin).sum(-1)
    pair_w = weights[None, :] * weights[:, None]
    per_alignment = (expected * pair_w / (1e-8 + pair_w.sum(-1, keepdims=True))).sum(-1)
    return float((per_alignment * weights).max())


def plddt_category(score: float) -> str:
    """AlphaFold DB's confidence bands: D(<50), L(<70), M(<90), H."""
    if score < 50:
        return "D"
    if score < 70:
        return "L"
    if score < 90:
        return "M"
    return "H"


def _scalar(value) -> float:
    """A scalar output as a float; accepts shape [] (the contract) and [1] (as some writers store it)."""
    return float(np.asarray(value).reshape(-1)[0])


def _breaks(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.asarray(outputs.get("predicted_aligned_error/breaks", DEFAULT_PAE_BREAKS))


def model_confidence(outputs: Mapping[str, np.ndarray]) -> dict:
    """Per-residue pLDDT and, for `_ptm` models, PAE, max PAE and pTM, from a model-output dict.

    Values the model already wrote are used as they are; missing ones are computed from the logits.
    """
    if "plddt" in outputs:
        plddt = np.asarray(outputs["plddt"], dtype=np.float64)
    elif "predicted_lddt/logits" in outputs:
        plddt = plddt_from_logits(np.asarray(outputs["predicted_lddt/logits"]))
    else:
        raise KeyError("neither plddt nor predicted_lddt/logits")
    result: dict = {"plddt": plddt, "mean_plddt": float(plddt.mean())}
    if "predicted_aligned_error" in outputs:
        result["pae"] = np.asarray(outputs["predicted_aligned_error"], dtype=np.float64)
        result["max_pae"] = _scalar(outputs.get("max_predicted_aligned_error", 31.75))
    elif "predicted_aligned_error/logits" in outputs:
        result["pae"], result["max_pae"] = pae_from_logits(
            np.asarray(outputs["predicted_aligned_error/logits"]), _breaks(outputs)
        )
    if "ptm" in outputs:
        result["ptm"] = _scalar(outputs["ptm"])
    elif "predicted_aligned_error/logits" in outputs:
        result["ptm"] = ptm_from_logits(
            np.asarray(outputs["predicted_aligned_error/logits"]), _breaks(outputs)
        )
    return result


def ranking_key(confidences: Sequence[Mapping]) -> str:
    """``ptm`` when every model has a pTM, else ``plddts`` (see module docstring)."""
    return "ptm" if confidences and all("ptm" in c for c in confidences) else "plddts"


def ranking_confidence(confidence: Mapping, key: str) -> float:
    return float(confidence["ptm"]) if key == "ptm" else float(confidence["mean_plddt"])


def rank_models(confidences: Mapping[str, Mapping]) -> dict:
    """The content of AF2's ``ranking_debug.json``: {key: {model: score}, "order": [best, ...]}.

    Ties keep the input order (a stable sort), as AF2's ``sorted(..., reverse=True)`` does.
    """
    key = ranking_key(list(confidences.values()))
    scores = {name: ranking_confidence(c, key) for name, c in confidences.items()}
    order = sorted(scores, key=lambda n: scores[n], reverse=True)
    return {key: scores, "order": order}


def pae_json(pae: np.ndarray, max_pae: float) -> str:
    """AlphaFold DB PAE JSON: ``[{"predicted_aligned_error": [[...]], "max_predicted_aligned_error": x}]``.

    Errors are rounded to one decimal as AF2 v2.3's ``pae_json`` writes them (the AFDB files themselves
    hold integers); compact separators.
    """
    rounded = np.round(np.asarray(pae, dtype=np.float64), decimals=1)
    return json.dumps(
        [{"predicted_aligned_error": rounded.tolist(), "max_predicted_aligned_error": float(max_pae)}],
        separators=(",", ":"),
    )


def plddt_json(plddt: np.ndarray) -> str:
    """AlphaFold DB per-residue confidence JSON (residueNumber from 1, scores to 2 decimals, band)."""
    scores = np.round(np.asarray(plddt, dtype=np.float64), decimals=2)
    return json.dumps(
        {
            "residueNumber": list(range(1, len(scores) + 1)),
            "confidenceScore": scores.tolist(),
            "confidenceCategory": [plddt_category(s) for s in scores],
        },
        separators=(",", ":"),
    )
