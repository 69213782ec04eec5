"""Amber relax on real structures: close to the input, lower energy, no violations left; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import openmm
import pdbfixer
import pytest
from Bio.PDB import PDBParser

from alphafold.common import residue_constants as rc
from alphafold.outputs.structure import read_structure
from alphafold.relax.amber import (
    AmberRelaxer,
    RelaxConfig,
    _minimize_round,
    choose_platform,
    segment_ends,
)
from alphafold.relax.violations import find_violations

FILES = Path(__file__).parents[1] / "outputs" / "files"


def heavy_rmsd(a, b) -> float:
    both = (a.atom_mask > 0.5) & (b.atom_mask > 0.5)
    return float(np.sqrt(((a.atom_positions - b.atom_positions) ** 2).sum(-1)[both].mean()))


@pytest.fixture(scope="module")
def relaxer():
    return AmberRelaxer(RelaxConfig(platform="CPU"))


@pytest.fixture(scope="module")
def ubiquitin_cli(tmp_path_factory):
    out = tmp_path_factory.mktemp("relax")
    args = [
        "relax",
        FILES / "1ubi.pdb",
        "--output",
        out / "relaxed.pdb",
        "--metrics",
        out / "m.json",
        "--platform",
        "CPU",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "alphafold", *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_cli_relaxes_ubiquitin(ubiquitin_cli):
    out, proc = ubiquitin_cli
    before = read_structure(FILES / "1ubi.pdb")
    after = read_structure(out / "relaxed.pdb")
    metrics = json.loads((out / "m.json").read_text())
    assert heavy_rmsd(before, after) < 0.5
    assert metrics["final_energy"] < metrics["initial_energy"]
    assert metrics["num_residue_violations"] == 0 and find_violations(after)["num_residue_violations"] == 0
    assert "energy" in proc.stdout
    # every heavy atom of the input is still there (plus at most OXT), hydrogens were added
    assert ((before.atom_mask > 0) <= (after.atom_mask > 0)).all()
    structure = gemmi.read_structure(str(out / "relaxed.pdb"))
    elements = {a.element.name for r in structure[0][0] for a in r}
    assert "H" in elements
    bio_atoms = list(PDBParser(QUIET=True).get_structure("r", str(out / "relaxed.pdb")).get_atoms())
    assert len(bio_atoms) == structure[0].count_atom_sites() > 2 * before.atom_mask.sum()
    # B-factors are carried over per residue from the input's CA
    ca = rc.atom_order["CA"]
    np.testing.assert_allclose(after.b_factors[:, ca], before.b_factors[:, ca], atol=0.01)


def test_bpti_is_relaxed_and_its_glu49_repaired(relaxer):
    chain = read_structure(FILES / "5PTI.cif.gz")
    assert find_violations(chain)["num_residue_violations"] == 1
    result = relaxer.relax(chain)
    assert heavy_rmsd(chain, result.chain) < 0.5
    assert result.metrics["final_energy"] < result.metrics["initial_energy"]
    assert find_violations(result.chain)["num_residue_violations"] == 0
    assert result.metrics["platform"] == "CPU"


def test_a_clash_is_resolved_by_freeing_the_residue():
    """Lys 48's side chain pushed into its neighbours and held there by restraints 100 times stiffer than
    AF2's: only the outer loop (violating residues freed from restraints, as AF2 does) can resolve it."""
    relaxer = AmberRelaxer(RelaxConfig(platform="CPU", stiffness=1000.0))
    chain = read_structure(FILES / "1ubi.pdb")
    k = int(np.flatnonzero(chain.residue_number == 48)[0])
    positions = chain.atom_positions.copy()
    side = [rc.atom_order[a] for a in ("CG", "CD", "CE", "NZ")]
    target = positions[k - 2, rc.atom_order["CA"]]
    nz = positions[k, rc.atom_order["NZ"]]
    positions[k, side] += 0.75 * (target - nz)
    broken = chain.replace(atom_positions=positions)
    before = find_violations(broken)
    assert before["clash"][k] or before["within_residue"][k]
    result = relaxer.relax(broken)
    assert find_violations(result.chain)["num_residue_violations"] == 0
    assert result.metrics["iterations"] >= 2 and 48 in result.metrics["excluded_residues"]
    untouched = np.ones(chain.num_res, dtype=bool)
    untouched[list(np.flatnonzero(before["per_residue"]))] = False
    assert heavy_rmsd(chain.replace(atom_mask=chain.atom_mask * untouched[:, None]), result.chain) < 0.5


def test_unknown_platform_is_refused():
    with pytest.raises(ValueError, match="not available"):
        choose_platform("NoSuchPlatform")


def test_cli_bad_input_is_a_one_line_error(cli, tmp_path):
    (tmp_path / "x.pdb").write_text("not a structure\n")
    proc = cli("relax", tmp_path / "x.pdb", "--output", tmp_path / "o.pdb", check=False)
    assert proc.returncode == 2 and "x.pdb" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.pdb").exists()


@pytest.mark.slow
def test_5eep_relaxes(relaxer):
    chain = read_structure(FILES / "5eep.pdb.gz")
    result = relaxer.relax(chain)
    assert heavy_rmsd(chain, result.chain) < 0.5
    assert result.metrics["final_energy"] < result.metrics["initial_energy"]
    assert find_violations(result.chain)["num_residue_violations"] == 0


def test_segments_split_at_numbering_gaps_but_never_leave_one_residue_alone():
    chain = read_structure(FILES / "5PTI.cif.gz")  # 58 residues numbered 1..58
    assert segment_ends(chain).tolist() == [57]
    numbers = chain.residue_number.copy()
    numbers[20:] += 3  # gap after index 19
    numbers[21:] += 2  # and after index 20: residue 20 would be alone
    numbers[56:] += 4  # and after index 55: the last two residues form their own segment
    assert segment_ends(chain.replace(residue_number=numbers)).tolist() == [19, 55, 57]


@pytest.mark.slow
def test_gapped_crystal_structure_keeps_its_gaps(relaxer):
    """1BHL (HIV integrase core) has three gaps and missing side-chain atoms: each segment is relaxed
    as its own chain, so no gap is pulled shut."""
    path = Path(pdbfixer.__file__).parent / "tests" / "data" / "1BHL.pdb"
    if not path.is_file():
        pytest.skip("pdbfixer's test data is not installed")
    chain = read_structure(path)
    assert len(segment_ends(chain)) == 4
    result = relaxer.relax(chain)
    assert heavy_rmsd(chain, result.chain) < 0.5
    assert result.metrics["final_energy"] < result.metrics["initial_energy"]
    assert find_violations(result.chain)["num_residue_violations"] == 0


def _attempt(einit: float, efinal: float):
    return lambda: {"einit": einit, "efinal": efinal, "posinit": "start", "pos": "moved", "restrained": 1}


def _raises():
    raise openmm.OpenMMException("Particle coordinate is NaN")


@pytest.mark.parametrize("attempts,expected", [
    ([_attempt(10.0, 4.0)], (4.0, "moved", False)),  # downhill: taken
    ([_attempt(10.0, 50.0), _attempt(10.0, 3.0)], (3.0, "moved", False)),  # uphill, then retried
    ([_raises, _attempt(10.0, 3.0)], (3.0, "moved", False)),  # raised, then retried
    ([_attempt(10.0, 50.0), _attempt(10.0, float("nan")), _raises], (10.0, "start", True)),  # none lower
])
def test_a_round_never_returns_more_energy_than_it_started_with(attempts, expected):
    calls = iter(attempts)
    ret = _minimize_round(lambda: next(calls)(), attempts=len(attempts))
    assert (ret["efinal"], ret["pos"], ret.get("kept_start", False)) == expected


def test_a_round_whose_attempts_all_raise_is_an_error():
    with pytest.raises(RuntimeError, match="failed 2 times"):
        _minimize_round(_raises, attempts=2)


@pytest.mark.slow
def test_an_untrained_model_relaxes_without_going_uphill():
    """An untrained model's atoms sit on top of one another (E ~ 2e10 kcal/mol). OpenMM's minimiser, which
    applies the hydrogen constraints at its end, took this structure to 2.5e11 or 5e11 in some runs (its
    CPU threads make runs differ): no round may end above its start, whichever way a run goes."""
    chain = read_structure(Path(__file__).parent / "files" / "untrained_ubiquitin.pdb")
    result = AmberRelaxer(RelaxConfig(platform="CPU", max_outer_iterations=2)).relax(chain)
    rounds = result.metrics["round_energies"]
    assert rounds[0][0] > 1e9, "the pathological case"
    assert len(rounds) == 2 and all(end <= start for start, end in rounds), rounds
    assert result.metrics["final_energy"] == rounds[-1][1]
    assert np.isfinite(result.chain.atom_positions).all()
