"""Residue and atom tables: orders and counts the params and features depend on."""

from __future__ import annotations

import numpy as np

from alphafold.common import residue_constants as rc
from alphafold.common.hashing import sequence_hash


def test_orders_and_sizes():
    assert len(rc.restypes) == 20 and len(set(rc.restypes)) == 20
    assert [rc.restype_1to3[r] for r in rc.restypes] == sorted(rc.restype_1to3.values())
    assert len(rc.atom_types) == 37 and len(set(rc.atom_types)) == 37
    assert rc.atom_types[:5] == ("N", "CA", "C", "CB", "O") and rc.atom_types[-1] == "OXT"


def test_atom_counts_per_residue():
    heavy_atoms = {"GLY": 4, "ALA": 5, "SER": 6, "CYS": 6, "VAL": 7, "THR": 7, "PRO": 7, "ILE": 8,
                   "LEU": 8, "ASP": 8, "ASN": 8, "GLU": 9, "GLN": 9, "LYS": 9, "MET": 8, "HIS": 10,
                   "PHE": 11, "ARG": 11, "TYR": 12, "TRP": 14}
    for name, n in heavy_atoms.items():
        assert len(rc.residue_atom14_names[name]) == n, name
        r = rc.resnames.index(name)
        assert rc.restype_atom37_mask[r].sum() == n
        # every atom14 slot in use points at an atom37 slot the mask marks present
        idx = rc.restype_atom14_to_atom37[r, :n]
        assert np.all(rc.restype_atom37_mask[r, idx] == 1)
    assert rc.restype_atom37_mask[20].sum() == 0


def test_sequence_to_aatype_and_hash():
    np.testing.assert_array_equal(rc.sequence_to_aatype("ARXz"), [0, 1, 20, 20])
    assert sequence_hash("acd") == sequence_hash(" ACD\n") != sequence_hash("ACE")
