"""Amino-acid and atom tables shared by the data pipeline, the model and the output writers.

Orders matter: they are the orders DeepMind's params and processed features assume.

* ``restypes``: the 20 standard residues ordered alphabetically by three-letter code (ALA, ARG, ASN, ...);
  index 20 is the unknown residue ``X``; MSA features add index 21 for the gap.
* ``atom_types``: the 37 heavy-atom names of the "atom37" representation: backbone first (N, CA, C, CB, O),
  then side-chain atoms ordered by element and branch, OXT last.
* ``residue_atom14_names``: per residue, the "atom14" dense layout: backbone N, CA, C, O, then side-chain
  atoms in the order of their PDB names; unused slots are empty strings.

Geometry tables (rigid-group frames, ideal atom positions, chi angles, bond lengths) are added beside these
by the structure-module code that needs them.
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
