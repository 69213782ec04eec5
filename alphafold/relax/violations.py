"""Structural violations of a heavy-atom model: the checks that steer AlphaFold2's iterative relax.

Jumper et al. (2021) Suppl. 1.9.11 "Structural violations" (eqs. 44-46): a residue is violating when

* its peptide bond to a sequence neighbour has a C-N length, CA-C-N or C-N-CA angle further than
  ``tolerance_factor`` standard deviations from the reference (both residues of the bond count);
* one of its atoms clashes with an atom of another residue: closer than the sum of their van der Waals
  radii minus ``overlap_tolerance`` (the peptide C-N bond and disulfide SG-SG pairs are exempt);
* two of its own atoms are closer or further apart than the residue's bond, angle or overlap bounds.

Numbers and references are in :mod:`alphafold.relax.stereochemistry`. Works on the atom37 layout with numpy;
neighbour search with a k-d tree, so memory grows with the number of atoms, not its square.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import Chain
from alphafold.relax import stereochemistry as sc

_N, _CA, _C = rc.atom_order["N"], rc.atom_order["CA"], rc.atom_order["C"]
_SG = rc.atom_order["SG"]
_PRO = rc.restype_order["P"]


def _angle_cos(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """cos of the angle at b in a-b-c, per row."""
    u, v = a - b, c - b
    return (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-12)


def peptide_bond_violations(chain: Chain, tolerance_factor: float = 12.0) -> np.ndarray:
    """[L] bool: residues in a peptide bond whose length or angles are out of bounds."""
    pos, mask = chain.atom_positions, chain.atom_mask > 0.5
    connected = (np.diff(chain.residue_number) == 1) & mask[:-1, _C] & mask[1:, _N]
    c, n = pos[:-1, _C], pos[1:, _N]
    length = np.linalg.norm(n - c, axis=-1)
    before_pro = chain.aatype[1:] == _PRO
    ideal = np.where(before_pro, sc.PEPTIDE_C_N_BEFORE_PRO[0], sc.PEPTIDE_C_N[0])
    sigma = np.where(before_pro, sc.PEPTIDE_C_N_BEFORE_PRO[1], sc.PEPTIDE_C_N[1])
    bad = np.abs(length - ideal) > tolerance_factor * sigma
    for (theta, sigma_theta), has, cos in (
        (sc.ANGLE_CA_C_N, mask[:-1, _CA], _angle_cos(pos[:-1, _CA], c, n)),
        (sc.ANGLE_C_N_CA, mask[1:, _CA], _angle_cos(c, n, pos[1:, _CA])),
    ):
        # compare in cosines, with σ carried through d(cos)/dθ = -sin θ
        bad |= has & (np.abs(cos - math.cos(theta)) > tolerance_factor * math.sin(theta) * sigma_theta)
    bad &= connected
    per_residue = np.zeros(chain.num_res, dtype=bool)
    per_residue[:-1] |= bad
    per_residue[1:] |= bad
    return per_residue


def clash_violations(chain: Chain, overlap_tolerance: float = 1.5) -> tuple[np.ndarray, int]:
    """([L] bool residues with an atom clashing with another residue's atom, number of clashing pairs)."""
    res_idx, atom_idx = np.nonzero(chain.atom_mask > 0.5)
    coords = chain.atom_positions[res_idx, atom_idx]
    radii = np.array([sc.VDW_RADIUS[name[0]] for name in rc.atom_types])[atom_idx]
    cutoff = 2 * max(sc.VDW_RADIUS.values()) - overlap_tolerance
    pairs = cKDTree(coords).query_pairs(cutoff, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(chain.num_res, dtype=bool), 0
    i, j = pairs[:, 0], pairs[:, 1]
    ri, rj = res_idx[i], res_idx[j]
    numbers = chain.residue_number
    keep = ri != rj
    # the peptide bond C(k)-N(k+1)
    first_is_c = (atom_idx[i] == _C) & (atom_idx[j] == _N) & (numbers[rj] == numbers[ri] + 1)
    second_is_c = (atom_idx[j] == _C) & (atom_idx[i] == _N) & (numbers[ri] == numbers[rj] + 1)
    keep &= ~(first_is_c | second_is_c)
    keep &= ~((atom_idx[i] == _SG) & (atom_idx[j] == _SG))  # disulfide bridges
    dist = np.linalg.norm(coords[i] - coords[j], axis=-1)
    clash = keep & (dist < radii[i] + radii[j] - overlap_tolerance)
    per_residue = np.zeros(chain.num_res, dtype=bool)
    per_residue[ri[clash]] = True
    per_residue[rj[clash]] = True
    return per_residue, int(clash.sum())


def within_residue_violations(
    chain: Chain, tolerance_factor: float = 12.0, overlap_tolerance: float = 1.5
) -> np.ndarray:
    """[L] bool: residues with an intra-residue distance outside its bounds."""
    lower, upper = sc.within_residue_bounds(tolerance_factor, overlap_tolerance)
    aatype = np.minimum(chain.aatype, rc.unk_restype_index)
    pos, mask = chain.atom_positions, chain.atom_mask > 0.5
    # [L, 37, 37]
    dist = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)
    pair_mask = mask[:, :, None] & mask[:, None, :] & ~np.eye(rc.atom_type_num, dtype=bool)[None]
    out_of_bounds = (dist < lower[aatype]) | (dist > upper[aatype])
    return (out_of_bounds & pair_mask).any(axis=(1, 2))


def find_violations(chain: Chain, tolerance_factor: float = 12.0, overlap_tolerance: float = 1.5) -> dict:
    """All three checks; ``per_residue`` is the union, ``residues`` its indices (0-based)."""
    bonds = peptide_bond_violations(chain, tolerance_factor)
    clashes, num_clashes = clash_violations(chain, overlap_tolerance)
    within = within_residue_violations(chain, tolerance_factor, overlap_tolerance)
    per_residue = bonds | clashes | within
    return {
        "per_residue": per_residue,
        "residues": np.flatnonzero(per_residue),
        "num_residue_violations": int(per_residue.sum()),
        "peptide_bond": bonds,
        "clash": clashes,
        "num_clashing_pairs": num_clashes,
        "within_residue": within,
    }
