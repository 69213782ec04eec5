"""`alphafold score` against real structures, checked against Debian's TMscore program."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from outputs_fakes import FILES

from alphafold.outputs.evaluation import evaluate, kabsch, superposed_rmsd
from alphafold.outputs.structure import read_structure, to_pdb

TMSCORE = shutil.which("TMscore")
TM_EXAMPLES = Path("/usr/share/doc/tm-align/examples")
PAIRS = {
    "adk open vs closed": (FILES / "adk_open.pdb.gz", FILES / "adk_closed.pdb.gz"),
    "1ni7 vs 5eep": (TM_EXAMPLES / "1ni7.pdb.gz", FILES / "5eep.pdb.gz"),
}


def tmscore_program(model: Path, native: Path, tmp: Path) -> dict[str, float]:
    """Run TMscore (it reads plain PDB only) and parse its TM-score, GDT-TS and RMSD lines."""
    paths = []
    for p in (model, native):
        plain = tmp / p.name.removesuffix(".gz")
        plain.write_bytes(subprocess.run(["zcat", "-f", p], capture_output=True, check=True).stdout)
        paths.append(plain)
    text = subprocess.run([TMSCORE, *paths], capture_output=True, text=True, check=True).stdout
    return {
        "tm": float(re.search(r"TM-score\s+=\s+([\d.]+)", text).group(1)),
        "gdt_ts": float(re.search(r"GDT-TS-score=\s*([\d.]+)", text).group(1)),
        "rmsd": float(re.search(r"RMSD of\s+the common residues=\s*([\d.]+)", text).group(1)),
        "common": int(re.search(r"Number of residues in common=\s*(\d+)", text).group(1)),
    }


@pytest.mark.skipif(TMSCORE is None, reason="TMscore comes with Debian's tm-align (scripts/system-deps.sh)")
@pytest.mark.parametrize("pair", list(PAIRS))
def test_matches_the_tmscore_program(pair, tmp_path):
    model_path, native_path = PAIRS[pair]
    if not model_path.exists():
        pytest.skip(f"{model_path} not installed")
    expected = tmscore_program(model_path, native_path, tmp_path)
    result = evaluate(read_structure(model_path), read_structure(native_path), by_number=True)
    assert result.num_aligned == expected["common"]
    # Tolerances: TMscore prints 4 decimals (RMSD 3); the superposition search is a heuristic, so allow
    # one unit of the 4th decimal on top of rounding for TM-score and GDT-TS.
    assert result.tm_score == pytest.approx(expected["tm"], abs=2e-4)
    assert result.gdt_ts == pytest.approx(expected["gdt_ts"], abs=2e-4)
    assert result.ca_rmsd == pytest.approx(expected["rmsd"], abs=1e-3)


def test_identical_structures_score_perfectly():
    chain = read_structure(FILES / "5PTI.cif.gz")
    result = evaluate(chain, chain)
    assert result.tm_score == pytest.approx(1.0) and result.gdt_ts == pytest.approx(1.0)
    assert result.lddt == pytest.approx(1.0) and result.lddt_ca == pytest.approx(1.0)
    assert result.ca_rmsd == pytest.approx(0.0, abs=1e-6)


def test_scores_are_invariant_to_rigid_motion_and_fall_with_noise():
    native = read_structure(FILES / "1ubi.pdb")
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    moved = native.replace(atom_positions=native.atom_positions @ q.T + np.array([5.0, -3.0, 12.0]))
    result = evaluate(moved, native)
    assert result.tm_score == pytest.approx(1.0) and result.lddt == pytest.approx(1.0)
    noisy = native.replace(atom_positions=native.atom_positions + rng.normal(scale=1.0, size=(76, 37, 3)))
    worse = evaluate(noisy, native)
    assert worse.tm_score < 0.95 and worse.lddt < 0.9 and 1.0 < worse.ca_rmsd < 2.5


def test_sequence_alignment_pairs_a_model_numbered_from_one():
    """A native numbered from 8 (5EEP) against a model of the same residues numbered 1..140."""
    native = read_structure(FILES / "5eep.pdb.gz")
    model = native.replace(residue_number=np.arange(1, native.num_res + 1))
    assert evaluate(model, native).tm_score == pytest.approx(1.0)
    with pytest.raises(ValueError):
        evaluate(model.replace(residue_number=model.residue_number + 1000), native, by_number=True)


def test_kabsch_recovers_a_rotation():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(17, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    rotation, translation = kabsch(x, x @ q.T + 1.5)
    np.testing.assert_allclose(rotation, q, atol=1e-10)
    np.testing.assert_allclose(translation, 1.5 * np.ones(3) @ np.eye(3), atol=1e-9)
    assert superposed_rmsd(x, x @ q.T) == pytest.approx(0.0, abs=1e-9)


def test_cli_json(cli, tmp_path):
    native = read_structure(FILES / "5PTI.cif.gz")
    shifted = native.replace(
        atom_positions=native.atom_positions
        + np.array([0.0, 0.0, 3.0]) * (np.arange(native.num_res)[:, None, None] > 40)
    )  # the C-terminal helix displaced by 3 Å
    (tmp_path / "model.pdb").write_text(to_pdb(shifted))
    data = json.loads(cli("score", tmp_path / "model.pdb", FILES / "5PTI.cif.gz", "--json").stdout)
    assert set(data) >= {"tm_score", "gdt_ts", "lddt", "lddt_ca", "ca_rmsd", "tm_align_score", "gdt"}
    assert data["num_aligned"] == 58 and 0.5 < data["tm_score"] < 1.0 and data["gdt"]["1"] < 1.0
    expected = evaluate(shifted, native)
    assert data["tm_score"] == pytest.approx(expected.tm_score) and data["lddt"] == pytest.approx(
        expected.lddt
    )


def test_cli_unrelated_chains_is_a_clear_error(cli, tmp_path):
    proc = cli(
        "score", FILES / "1ubi.pdb", FILES / "5PTI.cif.gz", "--by-number", "--native-chain", "Z", check=False
    )
    assert proc.returncode == 2 and "no chain 'Z'" in proc.stderr and "Traceback" not in proc.stderr
