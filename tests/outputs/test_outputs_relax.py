"""`alphafold write-outputs --relax`: relaxed models named and ranked as AF2 does."""

from __future__ import annotations

import json

import gemmi
import numpy as np
from outputs_fakes import FILES, fake_prediction

from alphafold.io_utils import save_npz_atomic
from alphafold.outputs.structure import read_structure
from alphafold.relax.violations import find_violations


def test_write_outputs_with_relax(cli, tmp_path):
    prediction = fake_prediction(FILES / "5PTI.cif.gz", "model_1_ptm", seed=5)
    save_npz_atomic(tmp_path / "m1.npz", prediction)
    out = tmp_path / "bpti"
    cli(
        "write-outputs",
        "--prediction",
        tmp_path / "m1.npz",
        "--output-dir",
        out,
        "--relax",
        "--relax-platform",
        "CPU",
    )
    relaxed_pdb = (out / "relaxed_model_1_ptm.pdb").read_text()
    assert (out / "ranked_0.pdb").read_text() == relaxed_pdb
    assert "Amber-relaxed" in relaxed_pdb
    pdb = gemmi.read_structure(str(out / "relaxed_model_1_ptm.pdb"))
    assert any(a.element.name == "H" for r in pdb[0][0] for a in r), "relaxed PDB keeps hydrogens, as AF2's"
    cif = read_structure(out / "relaxed_model_1_ptm.cif")
    unrelaxed = read_structure(out / "unrelaxed_model_1_ptm.pdb")
    both = (cif.atom_mask > 0) & (unrelaxed.atom_mask > 0)
    rmsd = np.sqrt(((cif.atom_positions - unrelaxed.atom_positions) ** 2).sum(-1)[both].mean())
    assert rmsd < 0.5
    assert find_violations(cif)["num_residue_violations"] == 0
    np.testing.assert_allclose(cif.b_factors[:, 1], unrelaxed.b_factors[:, 1], atol=0.01)  # pLDDT kept
    metrics = json.loads((out / "relax_metrics.json").read_text())["model_1_ptm"]
    assert metrics["final_energy"] < metrics["initial_energy"]
    scores = json.loads((out / "scores_model_1_ptm.json").read_text())
    assert scores["relaxed"] is True and scores["timings"]["relax"] > 0


def test_failed_relax_leaves_the_target_unfinished(cli, tmp_path):
    """A collapsed structure (every residue on the same spot, as random weights can give) cannot be
    minimised: the command fails with one line, keeps the unrelaxed files and writes no summary.json."""
    prediction = fake_prediction(FILES / "5PTI.cif.gz", "model_1", seed=1)
    positions = prediction["structure_module/final_atom_positions"]
    prediction["structure_module/final_atom_positions"] = positions - positions[:, 1:2] + positions[0, 1]
    save_npz_atomic(tmp_path / "collapsed.npz", prediction)
    out = tmp_path / "t"
    proc = cli(
        "write-outputs",
        "--prediction",
        tmp_path / "collapsed.npz",
        "--output-dir",
        out,
        "--relax",
        "--relax-platform",
        "CPU",
        check=False,
    )
    assert proc.returncode == 2
    assert "Amber relax of model model_1 failed" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "unrelaxed_model_1.pdb").is_file()
    assert not (out / "summary.json").exists() and not (out / "ranked_0.pdb").exists()
