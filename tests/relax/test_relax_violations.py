"""Structural-violation checks on real structures and on real structures broken on purpose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import read_structure
from alphafold.relax import stereochemistry
from alphafold.relax.violations import find_violations

FILES = Path(__file__).parents[1] / "outputs" / "files"


@pytest.fixture(scope="module")
def ubiquitin():
    return read_structure(FILES / "1ubi.pdb")


@pytest.mark.parametrize("name", ["1ubi.pdb", "5eep.pdb.gz"])
def test_well_refined_crystal_structures_have_no_violations(name):
    violations = find_violations(read_structure(FILES / name))
    assert violations["num_residue_violations"] == 0
    assert violations["num_clashing_pairs"] == 0


def test_bpti_disulfides_are_not_clashes_and_its_distorted_glu49_is_found():
    chain = read_structure(FILES / "5PTI.cif.gz")
    sg = chain.atom_positions[:, rc.atom_order["SG"]][chain.aatype == rc.restype_order["C"]]
    close = np.linalg.norm(sg[:, None] - sg[None], axis=-1)
    assert ((close > 0) & (close < 2.2)).sum() == 6, "three S-S bridges at ~2.03 Å"
    violations = find_violations(chain)
    assert violations["num_clashing_pairs"] == 0
    # Glu 49's carboxylate oxygens sit 1.84 Å apart in the deposited model (ideal ~2.2 Å)
    assert chain.residue_number[violations["residues"]].tolist() == [49]
    assert violations["within_residue"].sum() == 1


def test_a_residue_moved_onto_another_clashes_with_it(ubiquitin):
    i, j = 20, 50
    positions = ubiquitin.atom_positions.copy()
    offset = positions[j, rc.atom_order["CA"]] - positions[i, rc.atom_order["CA"]] + np.array([1.0, 0.5, 0.0])
    positions[i] += offset
    violations = find_violations(ubiquitin.replace(atom_positions=positions))
    assert violations["clash"][i] and violations["clash"][j]
    assert violations["num_clashing_pairs"] > 0
    # moving residue i also breaks its two peptide bonds
    assert set(np.flatnonzero(violations["peptide_bond"])) == {i - 1, i, i + 1}


def test_stretched_peptide_bond_flags_both_residues_and_gaps_are_exempt(ubiquitin):
    k = 33
    positions = ubiquitin.atom_positions.copy()
    ca = rc.atom_order["CA"]
    direction = positions[k + 1, ca] - positions[k, ca]
    positions[k + 1 :] += 0.6 * direction / np.linalg.norm(direction)  # C-N from 1.33 to ~1.9 Å
    stretched = ubiquitin.replace(atom_positions=positions)
    violations = find_violations(stretched)
    assert np.flatnonzero(violations["peptide_bond"]).tolist() == [k, k + 1]
    assert not violations["clash"].any() and not violations["within_residue"].any()
    numbers = ubiquitin.residue_number.copy()
    numbers[k + 1 :] += 5  # a numbering gap: no bond is expected there
    assert find_violations(stretched.replace(residue_number=numbers))["num_residue_violations"] == 0


def test_within_residue_bounds_hold_ideal_geometry():
    lower, upper = stereochemistry.within_residue_bounds()
    ala, phe = rc.restype_order["A"], rc.restype_order["F"]
    n, ca, c, cz, cg = (rc.atom_order[a] for a in ("N", "CA", "C", "CZ", "CG"))
    assert lower[ala, n, ca] < 1.458 < upper[ala, n, ca]  # N-CA bond
    assert lower[ala, n, c] < 2.46 < upper[ala, n, c]  # N-CA-C angle as a 1-3 distance
    assert upper[ala, n, ca] - lower[ala, n, ca] == pytest.approx(2 * 12 * 0.02)
    assert np.isinf(upper[phe, cg, cz]) and lower[phe, cg, cz] == pytest.approx(1.9)  # 1-4: overlap only
    np.testing.assert_array_equal(lower, lower.transpose(0, 2, 1))
