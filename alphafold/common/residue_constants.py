"""Amino-acid and atom tables shared by the data pipeline, the model and the output writers.

Orders matter: they are the orders DeepMind's params and processed features assume.

* ``restypes``: the 20 standard residues ordered alphabetically by three-letter code (ALA, ARG, ASN, ...);
  index 20 is the unknown residue ``X``; MSA features add index 21 for the gap.
* ``atom_types``: the 37 heavy-atom names of the "atom37" representation: backbone first (N, CA, C, CB, O),
  then side-chain atoms ordered by element and branch, OXT last.
* ``residue_atom14_names``: per residue, the "atom14" dense layout: backbone N, CA, C, O, then side-chain
  atoms in the order of their PDB names; unused slots are empty strings.

Geometry tables (chi angles, rigid groups and their default frames, idealised atom positions) follow below;
relax and violation constants live in a separate module.
"""

from __future__ import annotations

import numpy as np

# The 20 standard amino acids, one-letter codes, ordered by their three-letter codes.
restypes: tuple[str, ...] = (
    "A", "R", "N", "D", "C", "Q", "E", "G", "H", "I",
    "L", "K", "M", "F", "P", "S", "T", "W", "Y", "V",
)
restype_order: dict[str, int] = {r: i for i, r in enumerate(restypes)}
restype_num = len(restypes)  # 20; index 20 is 'X' (unknown)
unk_restype_index = restype_num
restypes_with_x: tuple[str, ...] = restypes + ("X",)

restype_1to3: dict[str, str] = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU", "G": "GLY",
    "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO", "S": "SER",
    "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}
restype_3to1: dict[str, str] = {v: k for k, v in restype_1to3.items()}
unk_restype = "UNK"
resnames: tuple[str, ...] = tuple(restype_1to3[r] for r in restypes) + (unk_restype,)

# The 37 atom names of the atom37 layout, in DeepMind's order.
atom_types: tuple[str, ...] = (
    "N", "CA", "C", "CB", "O", "CG", "CG1", "CG2", "OG", "OG1", "SG", "CD", "CD1", "CD2", "ND1", "ND2",
    "OD1", "OD2", "SD", "CE", "CE1", "CE2", "CE3", "NE", "NE1", "NE2", "OE1", "OE2", "CH2", "NH1", "NH2",
    "OH", "CZ", "CZ2", "CZ3", "NZ", "OXT",
)
atom_order: dict[str, int] = {a: i for i, a in enumerate(atom_types)}
atom_type_num = len(atom_types)  # 37

# Heavy atoms of each residue in the atom14 order (backbone N, CA, C, O, then the side chain).
residue_atom14_names: dict[str, tuple[str, ...]] = {
    "ALA": ("N", "CA", "C", "O", "CB"),
    "ARG": ("N", "CA", "C", "O", "CB", "CG", "CD", "NE", "CZ", "NH1", "NH2"),
    "ASN": ("N", "CA", "C", "O", "CB", "CG", "OD1", "ND2"),
    "ASP": ("N", "CA", "C", "O", "CB", "CG", "OD1", "OD2"),
    "CYS": ("N", "CA", "C", "O", "CB", "SG"),
    "GLN": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "NE2"),
    "GLU": ("N", "CA", "C", "O", "CB", "CG", "CD", "OE1", "OE2"),
    "GLY": ("N", "CA", "C", "O"),
    "HIS": ("N", "CA", "C", "O", "CB", "CG", "ND1", "CD2", "CE1", "NE2"),
    "ILE": ("N", "CA", "C", "O", "CB", "CG1", "CG2", "CD1"),
    "LEU": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2"),
    "LYS": ("N", "CA", "C", "O", "CB", "CG", "CD", "CE", "NZ"),
    "MET": ("N", "CA", "C", "O", "CB", "CG", "SD", "CE"),
    "PHE": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "PRO": ("N", "CA", "C", "O", "CB", "CG", "CD"),
    "SER": ("N", "CA", "C", "O", "CB", "OG"),
    "THR": ("N", "CA", "C", "O", "CB", "OG1", "CG2"),
    "TRP": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "NE1", "CE2", "CE3", "CZ2", "CZ3", "CH2"),
    "TYR": ("N", "CA", "C", "O", "CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OH"),
    "VAL": ("N", "CA", "C", "O", "CB", "CG1", "CG2"),
    "UNK": (),
}
atom14_num = 14


def _atom37_mask_table() -> np.ndarray:
    """[21, 37] float32: 1 where residue type r has atom a (row 20, unknown, is all zero)."""
    mask = np.zeros((restype_num + 1, atom_type_num), dtype=np.float32)
    for r, name in enumerate(resnames):
        for atom in residue_atom14_names[name]:
            mask[r, atom_order[atom]] = 1.0
    return mask


def _atom14_to_atom37_table() -> np.ndarray:
    """[21, 14] int32: the atom37 index of each atom14 slot (0 for unused slots, masked elsewhere)."""
    table = np.zeros((restype_num + 1, atom14_num), dtype=np.int32)
    for r, name in enumerate(resnames):
        for slot, atom in enumerate(residue_atom14_names[name]):
            table[r, slot] = atom_order[atom]
    return table


restype_atom37_mask: np.ndarray = _atom37_mask_table()
restype_atom14_to_atom37: np.ndarray = _atom14_to_atom37_table()


def sequence_to_aatype(sequence: str) -> np.ndarray:
    """Map one-letter codes to restype indices; anything not among the 20 maps to 20 (X)."""
    return np.array([restype_order.get(c, unk_restype_index) for c in sequence.upper()], dtype=np.int32)


# ---------------------------------------------------------------------------------------------------------
# Side-chain geometry: torsion angles, rigid groups and idealised atom positions (Jumper et al. 2021,
# Suppl. Sec. 1.8 and Table 2). Used by `alphafold.model.all_atom` (Suppl. Alg. 24).
# ---------------------------------------------------------------------------------------------------------

# The four atoms defining each side-chain torsion chi1..chi4 (a subset from chi1 on; ALA and GLY have
# none). The third atom of chi_k is the origin of the chi_k rigid group, the x-axis runs along the bond
# from the second to the third atom. ARG's chi5 is planar (0 +- 5 degrees) and is not modelled.
chi_angles_atoms: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "ALA": (),
    "ARG": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD"), ("CB", "CG", "CD", "NE"),
            ("CG", "CD", "NE", "CZ")),
    "ASN": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "OD1")),
    "ASP": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "OD1")),
    "CYS": (("N", "CA", "CB", "SG"),),
    "GLN": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD"), ("CB", "CG", "CD", "OE1")),
    "GLU": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD"), ("CB", "CG", "CD", "OE1")),
    "GLY": (),
    "HIS": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "ND1")),
    "ILE": (("N", "CA", "CB", "CG1"), ("CA", "CB", "CG1", "CD1")),
    "LEU": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD1")),
    "LYS": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD"), ("CB", "CG", "CD", "CE"),
            ("CG", "CD", "CE", "NZ")),
    "MET": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "SD"), ("CB", "CG", "SD", "CE")),
    "PHE": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD1")),
    "PRO": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD")),
    "SER": (("N", "CA", "CB", "OG"),),
    "THR": (("N", "CA", "CB", "OG1"),),
    "TRP": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD1")),
    "TYR": (("N", "CA", "CB", "CG"), ("CA", "CB", "CG", "CD1")),
    "VAL": (("N", "CA", "CB", "CG1"),),
}

# Side-chain torsions that a rotation by pi maps onto an equivalent structure (symmetric end groups:
# ASP chi2 (OD1/OD2), GLU chi3 (OE1/OE2), PHE and TYR chi2 (the ring flip)).
_PI_PERIODIC_CHIS: dict[str, tuple[int, ...]] = {"ASP": (1,), "GLU": (2,), "PHE": (1,), "TYR": (1,)}

# The 8 rigid groups of a residue (Suppl. Table 2). Each group's frame is its parent's default frame
# rotated about x by the group's torsion angle; the parent is the backbone group for groups 1-4 and the
# previous chi group for chi2-chi4.
rigid_group_names: tuple[str, ...] = (
    "backbone", "pre_omega", "phi", "psi", "chi1", "chi2", "chi3", "chi4",
)
num_rigid_groups = len(rigid_group_names)  # 8; torsions: the 7 groups after the backbone

# Idealised heavy-atom positions (Angstrom) in the frame of the rigid group that carries each atom:
# residue, atom, rigid group index, x, y, z. Backbone-group atoms are placed relative to CA with C on the
# +x axis and N in the xy-plane; every other group's atoms are given relative to the end atom of the
# group's rotation axis, x along the axis, the atom that defines the torsion in the xy-plane at y > 0.
# Values: Engh & Huber (1991) bond lengths and angles as idealised by AlphaFold (Jumper et al. 2021),
# needed to the last digit to reproduce DeepMind's coordinates; PRO CD uses a 2 degrees wider angle than
# the literature value (as AlphaFold does) so the ring closes with ideal chi angles.
_IDEAL_ATOM_POSITIONS = """
ALA N    0  -0.525   1.363   0.000
ALA CA   0   0.000   0.000   0.000
ALA C    0   1.526   0.000   0.000
ALA CB   0  -0.529  -0.774  -1.205
ALA O    3   0.627   1.062   0.000
ARG N    0  -0.524   1.362   0.000
ARG CA   0   0.000   0.000   0.000
ARG C    0   1.525   0.000   0.000
ARG CB   0  -0.524  -0.778  -1.209
ARG O    3   0.626   1.062   0.000
ARG CG   4   0.616   1.390   0.000
ARG CD   5   0.564   1.414   0.000
ARG NE   6   0.539   1.357   0.000
ARG NH1  7   0.206   2.301   0.000
ARG NH2  7   2.078   0.978   0.000
ARG CZ   7   0.758   1.093   0.000
ASN N    0  -0.536   1.357   0.000
ASN CA   0   0.000   0.000   0.000
ASN C    0   1.526   0.000   0.000
ASN CB   0  -0.531  -0.787  -1.200
ASN O    3   0.625   1.062   0.000
ASN CG   4   0.584   1.399   0.000
ASN ND2  5   0.593  -1.188   0.001
ASN OD1  5   0.633   1.059   0.000
ASP N    0  -0.525   1.362   0.000
ASP CA   0   0.000   0.000   0.000
ASP C    0   1.527   0.000   0.000
ASP CB   0  -0.526  -0.778  -1.208
ASP O    3   0.626   1.062   0.000
ASP CG   4   0.593   1.398   0.000
ASP OD1  5   0.610   1.091   0.000
ASP OD2  5   0.592  -1.101  -0.003
CYS N    0  -0.522   1.362   0.000
CYS CA   0   0.000   0.000   0.000
CYS C    0   1.524   0.000   0.000
CYS CB   0  -0.519  -0.773  -1.212
CYS O    3   0.625   1.062   0.000
CYS SG   4   0.728   1.653   0.000
GLN N    0  -0.526   1.361   0.000
GLN CA   0   0.000   0.000   0.000
GLN C    0   1.526   0.000   0.000
GLN CB   0  -0.525  -0.779  -1.207
GLN O    3   0.626   1.062   0.000
GLN CG   4   0.615   1.393   0.000
GLN CD   5   0.587   1.399   0.000
GLN NE2  6   0.593  -1.189  -0.001
GLN OE1  6   0.634   1.060   0.000
GLU N    0  -0.528   1.361   0.000
GLU CA   0   0.000   0.000   0.000
GLU C    0   1.526   0.000   0.000
GLU CB   0  -0.526  -0.781  -1.207
GLU O    3   0.626   1.062   0.000
GLU CG   4   0.615   1.392   0.000
GLU CD   5   0.600   1.397   0.000
GLU OE1  6   0.607   1.095   0.000
GLU OE2  6   0.589  -1.104  -0.001
GLY N    0  -0.572   1.337   0.000
GLY CA   0   0.000   0.000   0.000
GLY C    0   1.517   0.000   0.000
GLY O    3   0.626   1.062   0.000
HIS N    0  -0.527   1.360   0.000
HIS CA   0   0.000   0.000   0.000
HIS C    0   1.525   0.000   0.000
HIS CB   0  -0.525  -0.778  -1.208
HIS O    3   0.625   1.063   0.000
HIS CG   4   0.600   1.370   0.000
HIS CD2  5   0.889  -1.021   0.003
HIS ND1  5   0.744   1.160   0.000
HIS CE1  5   2.030   0.851   0.002
HIS NE2  5   2.145  -0.466   0.004
ILE N    0  -0.493   1.373   0.000
ILE CA   0   0.000   0.000   0.000
ILE C    0   1.527   0.000   0.000
ILE CB   0  -0.536  -0.793  -1.213
ILE O    3   0.627   1.062   0.000
ILE CG1  4   0.534   1.437   0.000
ILE CG2  4   0.540  -0.785  -1.199
ILE CD1  5   0.619   1.391   0.000
LEU N    0  -0.520   1.363   0.000
LEU CA   0   0.000   0.000   0.000
LEU C    0   1.525   0.000   0.000
LEU CB   0  -0.522  -0.773  -1.214
LEU O    3   0.625   1.063   0.000
LEU CG   4   0.678   1.371   0.000
LEU CD1  5   0.530   1.430   0.000
LEU CD2  5   0.535  -0.774   1.200
LYS N    0  -0.526   1.362   0.000
LYS CA   0   0.000   0.000   0.000
LYS C    0   1.526   0.000   0.000
LYS CB   0  -0.524  -0.778  -1.208
LYS O    3   0.626   1.062   0.000
LYS CG   4   0.619   1.390   0.000
LYS CD   5   0.559   1.417   0.000
LYS CE   6   0.560   1.416   0.000
LYS NZ   7   0.554   1.387   0.000
MET N    0  -0.521   1.364   0.000
MET CA   0   0.000   0.000   0.000
MET C    0   1.525   0.000   0.000
MET CB   0  -0.523  -0.776  -1.210
MET O    3   0.625   1.062   0.000
MET CG   4   0.613   1.391   0.000
MET SD   5   0.703   1.695   0.000
MET CE   6   0.320   1.786   0.000
PHE N    0  -0.518   1.363   0.000
PHE CA   0   0.000   0.000   0.000
PHE C    0   1.524   0.000   0.000
PHE CB   0  -0.525  -0.776  -1.212
PHE O    3   0.626   1.062   0.000
PHE CG   4   0.607   1.377   0.000
PHE CD1  5   0.709   1.195   0.000
PHE CD2  5   0.706  -1.196   0.000
PHE CE1  5   2.102   1.198   0.000
PHE CE2  5   2.098  -1.201   0.000
PHE CZ   5   2.794  -0.003  -0.001
PRO N    0  -0.566   1.351   0.000
PRO CA   0   0.000   0.000   0.000
PRO C    0   1.527   0.000   0.000
PRO CB   0  -0.546  -0.611  -1.293
PRO O    3   0.621   1.066   0.000
PRO CG   4   0.382   1.445   0.000
PRO CD   5   0.477   1.424   0.000
SER N    0  -0.529   1.360   0.000
SER CA   0   0.000   0.000   0.000
SER C    0   1.525   0.000   0.000
SER CB   0  -0.518  -0.777  -1.211
SER O    3   0.626   1.062   0.000
SER OG   4   0.503   1.325   0.000
THR N    0  -0.517   1.364   0.000
THR CA   0   0.000   0.000   0.000
THR C    0   1.526   0.000   0.000
THR CB   0  -0.516  -0.793  -1.215
THR O    3   0.626   1.062   0.000
THR CG2  4   0.550  -0.718  -1.228
THR OG1  4   0.472   1.353   0.000
TRP N    0  -0.521   1.363   0.000
TRP CA   0   0.000   0.000   0.000
TRP C    0   1.525   0.000   0.000
TRP CB   0  -0.523  -0.776  -1.212
TRP O    3   0.627   1.062   0.000
TRP CG   4   0.609   1.370   0.000
TRP CD1  5   0.824   1.091   0.000
TRP CD2  5   0.854  -1.148  -0.005
TRP CE2  5   2.186  -0.678  -0.007
TRP CE3  5   0.622  -2.530  -0.007
TRP NE1  5   2.140   0.690  -0.004
TRP CH2  5   3.028  -2.890  -0.013
TRP CZ2  5   3.283  -1.543  -0.011
TRP CZ3  5   1.715  -3.389  -0.011
TYR N    0  -0.522   1.362   0.000
TYR CA   0   0.000   0.000   0.000
TYR C    0   1.524   0.000   0.000
TYR CB   0  -0.522  -0.776  -1.213
TYR O    3   0.627   1.062   0.000
TYR CG   4   0.607   1.382   0.000
TYR CD1  5   0.716   1.195   0.000
TYR CD2  5   0.713  -1.194  -0.001
TYR CE1  5   2.107   1.200  -0.002
TYR CE2  5   2.104  -1.201  -0.003
TYR OH   5   4.168  -0.002  -0.005
TYR CZ   5   2.791  -0.001  -0.003
VAL N    0  -0.494   1.373   0.000
VAL CA   0   0.000   0.000   0.000
VAL C    0   1.527   0.000   0.000
VAL CB   0  -0.533  -0.795  -1.213
VAL O    3   0.627   1.062   0.000
VAL CG1  4   0.540   1.429   0.000
VAL CG2  4   0.533  -0.776   1.203
"""


def _parse_ideal_positions() -> dict[str, tuple[tuple[str, int, tuple[float, float, float]], ...]]:
    rows: dict[str, list[tuple[str, int, tuple[float, float, float]]]] = {}
    for line in _IDEAL_ATOM_POSITIONS.strip().splitlines():
        res, atom, group, x, y, z = line.split()
        rows.setdefault(res, []).append((atom, int(group), (float(x), float(y), float(z))))
    return {res: tuple(atoms) for res, atoms in rows.items()}


rigid_group_atom_positions = _parse_ideal_positions()


def _chi_tables() -> tuple[np.ndarray, np.ndarray]:
    """[21, 4] float32 chi mask and [21, 4] float32 pi-periodicity, rows in restype order (UNK last)."""
    mask = np.zeros((restype_num + 1, 4), dtype=np.float32)
    periodic = np.zeros((restype_num + 1, 4), dtype=np.float32)
    for r, name in enumerate(resnames[:restype_num]):
        mask[r, : len(chi_angles_atoms[name])] = 1.0
        periodic[r, list(_PI_PERIODIC_CHIS.get(name, ()))] = 1.0
    return mask, periodic


chi_angles_mask, chi_pi_periodic = _chi_tables()


def _frame_from_axes(e_x: np.ndarray, e_xy: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """4x4 rigid transform whose x-axis is ``e_x``, whose xy-plane holds ``e_xy``, placed at ``origin``.

    Gram-Schmidt: normalise e_x, remove its component from e_xy and normalise, e_z = e_x cross e_y.
    """
    ex = e_x / np.linalg.norm(e_x)
    ey = e_xy - np.dot(e_xy, ex) * ex
    ey = ey / np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    frame = np.eye(4)
    frame[:3, 0], frame[:3, 1], frame[:3, 2], frame[:3, 3] = ex, ey, ez, origin
    return frame


def _rigid_group_tables() -> dict[str, np.ndarray]:
    """Per-restype rigid-group tables (UNK, row 20, stays all zero, frames included, as in AlphaFold).

    * ``default_frame`` [21, 8, 4, 4]: each group's frame relative to its parent at torsion angle 0
      (backbone and pre-omega: identity; phi: x along CA->N; psi: x along CA->C; chi1: x along CA->CB;
      chi2..4: x along the previous group's axis-end atom, which sits in the parent's xy-plane).
    * ``atom14_to_rigid_group`` [21, 14] int, ``atom14_mask`` [21, 14], ``atom14_rigid_group_positions``
      [21, 14, 3]; the same three in atom37 layout.
    """
    frames = np.zeros((restype_num + 1, num_rigid_groups, 4, 4), dtype=np.float32)
    group14 = np.zeros((restype_num + 1, atom14_num), dtype=np.int64)
    mask14 = np.zeros((restype_num + 1, atom14_num), dtype=np.float32)
    pos14 = np.zeros((restype_num + 1, atom14_num, 3), dtype=np.float32)
    group37 = np.zeros((restype_num + 1, atom_type_num), dtype=np.int64)
    pos37 = np.zeros((restype_num + 1, atom_type_num, 3), dtype=np.float32)
    for r, name in enumerate(resnames[:restype_num]):
        pos = {}
        for atom, group, xyz in rigid_group_atom_positions[name]:
            slot = residue_atom14_names[name].index(atom)
            group14[r, slot], mask14[r, slot], pos14[r, slot] = group, 1.0, xyz
            group37[r, atom_order[atom]], pos37[r, atom_order[atom]] = group, xyz
            pos[atom] = np.array(xyz, dtype=np.float64)
        frames[r, 0] = np.eye(4)
        frames[r, 1] = np.eye(4)
        frames[r, 2] = _frame_from_axes(pos["N"] - pos["CA"], np.array([1.0, 0.0, 0.0]), pos["N"])
        frames[r, 3] = _frame_from_axes(pos["C"] - pos["CA"], pos["CA"] - pos["N"], pos["C"])
        chis = chi_angles_atoms[name]
        if chis:
            a, b, c, _ = (pos[x] for x in chis[0])
            frames[r, 4] = _frame_from_axes(c - b, a - b, c)
        for k in range(1, len(chis)):
            # chi_k's axis runs from the parent group's origin to its axis-end atom, which lies in the
            # parent's frame at pos[...] (given in that frame); the parent's origin is the previous atom.
            axis_end = pos[chis[k][2]]
            frames[r, 4 + k] = _frame_from_axes(axis_end, np.array([-1.0, 0.0, 0.0]), axis_end)
    return {
        "default_frame": frames, "atom14_to_rigid_group": group14, "atom14_mask": mask14,
        "atom14_rigid_group_positions": pos14, "atom37_to_rigid_group": group37,
        "atom37_rigid_group_positions": pos37,
    }


_RIGID_GROUP_TABLES = _rigid_group_tables()
restype_rigid_group_default_frame: np.ndarray = _RIGID_GROUP_TABLES["default_frame"]
restype_atom14_to_rigid_group: np.ndarray = _RIGID_GROUP_TABLES["atom14_to_rigid_group"]
restype_atom14_mask: np.ndarray = _RIGID_GROUP_TABLES["atom14_mask"]
restype_atom14_rigid_group_positions: np.ndarray = _RIGID_GROUP_TABLES["atom14_rigid_group_positions"]
restype_atom37_to_rigid_group: np.ndarray = _RIGID_GROUP_TABLES["atom37_to_rigid_group"]
restype_atom37_rigid_group_positions: np.ndarray = _RIGID_GROUP_TABLES["atom37_rigid_group_positions"]


def _atom37_to_atom14_table() -> np.ndarray:
    """[21, 37] int32: the atom14 slot of each atom37 atom (0 where the residue lacks it; masked)."""
    table = np.zeros((restype_num + 1, atom_type_num), dtype=np.int32)
    for r, name in enumerate(resnames):
        for slot, atom in enumerate(residue_atom14_names[name]):
            table[r, atom_order[atom]] = slot
    return table


restype_atom37_to_atom14: np.ndarray = _atom37_to_atom14_table()
