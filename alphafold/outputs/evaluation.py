"""Model quality against an experimental structure: TM-score, GDT-TS, lDDT, CA RMSD.

* Residue correspondence: by a global alignment of the two sequences (default; model and native may be
  numbered differently or the native may miss residues), or by residue number (``by_number``), as the
  TMscore program pairs residues.
* TM-score (Zhang & Skolnick 2004) over the native's length, d0 = 1.24·(L-15)^(1/3) - 1.8 (≥ 0.5), maximised
  over superpositions with TMscore's search: seed on fragments of decreasing length, then superpose on the
  pairs closer than a cutoff and repeat. Checked against Debian's ``TMscore`` in the tests.
* GDT-TS (Zemla 2003): mean over cutoffs 1, 2, 4, 8 Å of the largest fraction of native residues that some
  superposition brings within the cutoff, searched the same way.
* lDDT (Mariani et al. 2013) over all heavy atoms of corresponding residues, 15 Å inclusion radius, with
  biotite; lDDT-Cα the same on CA atoms only (what pLDDT predicts).
* CA RMSD after the optimal (Kabsch) superposition of all corresponding CA atoms.
* TM-align's sequence-independent TM-score (tmtools), normalised by the native, as a second opinion.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import Chain

_CA = rc.atom_order["CA"]
GDT_CUTOFFS = (1.0, 2.0, 4.0, 8.0)


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |mobile @ R.T + t - target| (both [N, 3])."""
    mc, tc = mobile.mean(0), target.mean(0)
    h = (mobile - mc).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rotation, tc - mc @ rotation.T


def superposed_rmsd(mobile: np.ndarray, target: np.ndarray) -> float:
    rotation, translation = kabsch(mobile, target)
    return float(np.sqrt(((mobile @ rotation.T + translation - target) ** 2).sum(-1).mean()))


def correspondence(model: Chain, native: Chain, by_number: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (model_idx, native_idx) of corresponding residues that both have a CA."""
    if by_number:
        native_pos = {int(n): i for i, n in enumerate(native.residue_number)}
        pairs = [(i, native_pos[int(n)]) for i, n in enumerate(model.residue_number) if int(n) in native_pos]
    else:
        from Bio import Align

        aligner = Align.PairwiseAligner(
            mode="global", match_score=2, mismatch_score=-1, open_gap_score=-5, extend_gap_score=-0.5
        )
        alignment = aligner.align(model.sequence, native.sequence)[0]
        pairs = []
        for (m0, m1), (n0, n1) in zip(*alignment.aligned):
            pairs += list(zip(range(m0, m1), range(n0, n1)))
    pairs = [(i, j) for i, j in pairs if model.atom_mask[i, _CA] > 0.5 and native.atom_mask[j, _CA] > 0.5]
    if len(pairs) < 3:
        raise ValueError(f"only {len(pairs)} corresponding residues with CA atoms: nothing to compare")
    m, n = zip(*pairs)
    return np.array(m), np.array(n)


def _d0(length: int) -> float:
    return max(1.24 * np.cbrt(length - 15) - 1.8, 0.5) if length > 21 else 0.5


def _seed_windows(num_pairs: int) -> list[np.ndarray]:
    """Fragments TMscore seeds from: lengths L, L/2, L/4, ... down to 4, slid along the chain."""
    windows, length = [], num_pairs
    while length >= 4:
        step = max(length // 2, 1) if length < num_pairs else 1
        for start in range(0, num_pairs - length + 1, step):
            windows.append(np.arange(start, start + length))
        if length == 4:
            break
        length = max(length // 2, 4)
    return windows


def _superposition_search(
    model: np.ndarray, native: np.ndarray, native_length: int, iterations: int = 20
) -> tuple[float, dict[float, float]]:
    """TM-score and GDT fractions maximised over the superpositions TMscore's search visits.

    From every seed fragment, for each refinement cutoff (TM-score's d0_search and each GDT cutoff):
    superpose on the current pairs, keep the pairs within the cutoff (at least the closest three), repeat
    until the set stops changing. Every superposition visited scores all measures at once.
    """
    d0 = _d0(native_length)
    d0_search = min(max(d0, 4.5), 8.0)
    best_tm = 0.0
    best_gdt = dict.fromkeys(GDT_CUTOFFS, 0.0)
    # A refinement is deterministic given (cutoff, selection): once a pair was visited, the rest of its
    # path was too, so stopping there changes no score and saves most of the work.
    visited: set[tuple[float, bytes]] = set()
    for seed in _seed_windows(len(model)):
        for cutoff in (d0_search, *GDT_CUTOFFS):
            selection = seed
            for _ in range(iterations):
                key = (cutoff, selection.tobytes())
                if key in visited:
                    break
                visited.add(key)
                rotation, translation = kabsch(model[selection], native[selection])
                dist = np.linalg.norm(model @ rotation.T + translation - native, axis=-1)
                best_tm = max(best_tm, float((1.0 / (1.0 + (dist / d0) ** 2)).sum() / native_length))
                for c in GDT_CUTOFFS:
                    best_gdt[c] = max(best_gdt[c], float((dist <= c).sum() / native_length))
                new = np.flatnonzero(dist < cutoff)
                if len(new) < 3:
                    new = np.argsort(dist)[:3]
                selection = new
    return best_tm, best_gdt


def tm_score(model_ca: np.ndarray, native_ca: np.ndarray, native_length: int) -> float:
    """TM-score of paired CA atoms, normalised by ``native_length`` (TMscore's search)."""
    return _superposition_search(model_ca, native_ca, native_length)[0]


def gdt(model_ca: np.ndarray, native_ca: np.ndarray, native_length: int) -> dict[float, float]:
    """Largest fraction of native residues within 1, 2, 4, 8 Å over the searched superpositions."""
    return _superposition_search(model_ca, native_ca, native_length)[1]


def _atom_array(chain: Chain, residues: np.ndarray, atoms: np.ndarray):
    import biotite.structure as struc

    array = struc.AtomArray(len(residues))
    array.coord = chain.atom_positions[residues, atoms].astype(np.float32)
    array.res_id = residues + 1
    array.chain_id = np.full(len(residues), "A")
    array.atom_name = np.array([rc.atom_types[a] for a in atoms])
    array.element = np.array([rc.atom_types[a][0] for a in atoms])
    array.res_name = np.array([rc.resnames[min(int(chain.aatype[r]), 20)] for r in residues])
    return array


def lddt(
    model: Chain, native: Chain, model_idx: np.ndarray, native_idx: np.ndarray, ca_only: bool = False
) -> float:
    """lDDT of the model against the native over atoms present in both corresponding residues."""
    import biotite.structure as struc

    both = (model.atom_mask[model_idx] > 0.5) & (native.atom_mask[native_idx] > 0.5)
    if ca_only:
        keep = np.zeros_like(both)
        keep[:, _CA] = True
        both &= keep
    pair, atom = np.nonzero(both)
    reference = _atom_array(native, native_idx[pair], atom)
    reference.res_id = pair + 1  # number by pair so model and reference agree
    subject = model.atom_positions[model_idx[pair], atom].astype(np.float32)
    return float(struc.lddt(reference, subject))


@dataclasses.dataclass(frozen=True)
class Evaluation:
    tm_score: float
    gdt_ts: float
    gdt: dict
    lddt: float
    lddt_ca: float
    ca_rmsd: float
    tm_align_score: float
    num_aligned: int
    model_length: int
    native_length: int

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["gdt"] = {f"{k:g}": v for k, v in self.gdt.items()}
        return out


def evaluate(model: Chain, native: Chain, by_number: bool = False) -> Evaluation:
    """All scores of ``model`` against ``native`` (normalised by the native's residues with a CA)."""
    import tmtools

    model_idx, native_idx = correspondence(model, native, by_number)
    native_length = int((native.atom_mask[:, _CA] > 0.5).sum())
    m_ca, n_ca = model.ca_positions()[model_idx], native.ca_positions()[native_idx]
    tm, gdt_values = _superposition_search(m_ca, n_ca, native_length)
    has_ca_m, has_ca_n = model.atom_mask[:, _CA] > 0.5, native.atom_mask[:, _CA] > 0.5
    aligned = tmtools.tm_align(
        model.ca_positions()[has_ca_m].astype(np.float64),
        native.ca_positions()[has_ca_n].astype(np.float64),
        "".join(np.array(list(model.sequence))[has_ca_m]),
        "".join(np.array(list(native.sequence))[has_ca_n]),
    )
    return Evaluation(
        tm_score=tm,
        gdt_ts=float(np.mean(list(gdt_values.values()))),
        gdt=gdt_values,
        lddt=lddt(model, native, model_idx, native_idx),
        lddt_ca=lddt(model, native, model_idx, native_idx, ca_only=True),
        ca_rmsd=superposed_rmsd(m_ca, n_ca),
        tm_align_score=float(aligned.tm_norm_chain2),
        num_aligned=len(model_idx),
        model_length=model.num_res,
        native_length=native_length,
    )
