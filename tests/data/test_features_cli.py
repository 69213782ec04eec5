"""`alphafold features` end to end on real queries against the real 20,000-sequence UniProt set."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from alphafold.cli import main as cli_main
from alphafold.data import msa_features, parsers
from alphafold.io_utils import load_npz
from tests.conftest import DATA, run_cli

FILES = DATA / "files"
UNIPROT_20K = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
needs_db = pytest.mark.skipif(not UNIPROT_20K.exists(), reason="Debian mmseqs2-examples not installed")


@pytest.fixture(scope="session")
def uniprot20k(tmp_path_factory) -> Path:
    """The 20,000 real UniProt sequences as plain FASTA (pyhmmer and the binaries read it)."""
    if not UNIPROT_20K.exists():
        pytest.skip("Debian mmseqs2-examples not installed")
    path = tmp_path_factory.mktemp("db") / "uniprot20k.fasta"
    with gzip.open(UNIPROT_20K, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


@pytest.fixture(scope="module")
def four_queries(uniprot20k, tmp_path_factory):
    out = tmp_path_factory.mktemp("features")
    proc = run_cli("features", FILES / "queries.fasta", "--output-dir", out, "--uniref90", uniprot20k,
               "--mgnify", uniprot20k, "--cpus", "2")
    return out, proc


@needs_db
def test_real_queries_give_contract_features(four_queries):
    out, proc = four_queries
    assert "written under" in proc.stderr and "empty template features" in proc.stderr
    lengths = {"HBB_HUMAN": 146, "1UBI_A": 76, "5PTI_A": 58, "1PPG_E": 212}
    for name, length in lengths.items():
        feats = load_npz(out / name / "features.npz")
        msa_features.check_raw_features(feats, name)
        assert feats["seq_length"][0] == length
        assert feats["msa"].shape[0] >= 2, f"{name}: homologs expected in the 20k UniProt set"
        record = json.loads((out / name / "features.json").read_text())
        assert [s["database"] for s in record["searches"]] == ["uniref90", "mgnify"]
        assert record["searches"][0]["tool_version"].startswith("pyhmmer")
        assert (out / name / "msas" / "uniref90.sto").is_file()
        assert record["num_alignments"] == feats["msa"].shape[0]


@needs_db
def test_features_equal_pipeline_applied_to_the_searched_msas(four_queries):
    out, _ = four_queries
    feats = load_npz(out / "5PTI_A" / "features.npz")
    sto = (out / "5PTI_A" / "msas" / "uniref90.sto").read_text()
    mgnify = (out / "5PTI_A" / "msas" / "mgnify.sto").read_text()
    expected = msa_features.make_msa_features([parsers.parse_stockholm(sto), parsers.parse_stockholm(mgnify)])
    for key, value in expected.items():
        np.testing.assert_array_equal(feats[key], value, err_msg=key)


@needs_db
def test_rerun_reuses_store_and_damage_is_recomputed(four_queries, uniprot20k, cli):
    out, _ = four_queries
    before = load_npz(out / "1UBI_A" / "features.npz")
    proc = cli("features", FILES / "queries.fasta", "--output-dir", out, "--uniref90", uniprot20k,
               "--mgnify", uniprot20k, "--only", "1UBI_A")
    record = json.loads((out / "1UBI_A" / "features.json").read_text())
    assert record["features_reused"] and all(s["reused"] for s in record["searches"])
    assert "jackhmmer 1UBI_A" not in proc.stderr
    # truncate the stored features: the next run must notice, recompute, and give the same arrays
    entry = Path(record["store_entry"])
    (entry / "features.npz").write_bytes((entry / "features.npz").read_bytes()[:200])
    proc = cli("features", FILES / "queries.fasta", "--output-dir", out, "--uniref90", uniprot20k,
               "--mgnify", uniprot20k, "--only", "1UBI_A")
    assert "unusable" in proc.stderr
    record = json.loads((out / "1UBI_A" / "features.json").read_text())
    assert not record["features_reused"]
    after = load_npz(out / "1UBI_A" / "features.npz")
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_user_a3m_skips_search(cli, tmp_path):
    proc = cli("features", FILES / "1UBI_A_mmseqs.a3m", "--output-dir", tmp_path)
    assert "no MSA search" in proc.stderr
    feats = load_npz(tmp_path / "1UBI_A" / "features.npz")
    expected = msa_features.make_msa_features([parsers.parse_a3m((FILES / "1UBI_A_mmseqs.a3m").read_text())])
    np.testing.assert_array_equal(feats["msa"], expected["msa"])
    assert feats["sequence"][0].decode().startswith("MQIFVKTLTG")
    record = json.loads((tmp_path / "1UBI_A" / "features.json").read_text())
    assert record["msa_mode"] == "user" and record["searches"][0]["num_hits"] == 15


def test_a3m_flag_must_match_the_query(cli, tmp_path):
    fasta = tmp_path / "pti.fasta"
    fasta.write_text(">pti\nRPDFCLEPPYTGPCKARIIRYFYNAKAGLCQTFVYGGCRAKRNNFKSAEDCMRTCGGA\n")
    proc = cli("features", fasta, "--output-dir", tmp_path / "o", "--a3m", FILES / "1UBI_A_mmseqs.a3m",
               check=False)
    assert proc.returncode == 2 and "differs from target 'pti'" in proc.stderr
    proc = cli("features", fasta, "--output-dir", tmp_path / "o", "--a3m", FILES / "5PTI_A_jackhmmer.sto")
    # 88 rows of which 12 repeat an earlier aligned row: AF2 keeps 76
    assert load_npz(tmp_path / "o" / "pti" / "features.npz")["msa"].shape == (76, 58)


@pytest.mark.parametrize("args,message", [
    ([], "needs --uniref90"),
    (["--uniref90", "/nonexistent/uniref90.fasta"], "uniref90 database (FASTA) not found"),
    (["--msa-mode", "hhblits"], "needs --bfd"),
    (["--uniref90", str(FILES / "queries.fasta"), "--pdb-seqres", "x"], "needs all of --pdb-seqres"),
    (["--uniref90", str(FILES / "queries.fasta"), "--only", "nope"], "no target named nope"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    # in-process (alphafold.cli.main is what `python -m alphafold` runs) to spare a subprocess per case
    code = cli_main(["features", str(FILES / "queries.fasta"), "--output-dir", str(tmp_path), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.glob("*/features.npz"))


@needs_db
def test_real_fasta_to_processed_features_with_templates(uniprot20k, tmp_path, cli):
    """Done-criterion of the data stage: a real FASTA becomes raw features (with real templates) that
    `alphafold process-features` turns into the model's input."""
    out = tmp_path / "out"
    cli("features", FILES / "queries.fasta", "--only", "HBB_HUMAN", "--output-dir", out,
        "--uniref90", uniprot20k, "--pdb-seqres", FILES / "pdb_seqres.txt", "--mmcif-dir", FILES / "mmcif",
        "--max-template-date", "2020-01-01")
    raw = load_npz(out / "HBB_HUMAN" / "features.npz")
    msa_features.check_raw_features(raw)
    names = [n.decode() for n in raw["template_domain_names"]]
    assert raw["template_aatype"].shape[0] == 4 and "2hhb_B" in names
    record = json.loads((out / "HBB_HUMAN" / "features.json").read_text())
    assert record["templates"]["used"] and record["templates"]["num_templates"] == 4
    processed = tmp_path / "processed.npz"
    cli("process-features", out / "HBB_HUMAN" / "features.npz", "--preset", "model_1", "--num-recycle", "1",
        "--max-msa-clusters", "6", "--max-extra-msa", "8", "--out", processed)
    feats = load_npz(processed)
    # model_1 keeps max_msa_clusters - max_templates = 2 cluster centres; 2 recycle samples
    assert feats["msa_feat"].shape == (2, 2, 146, 49)
    assert feats["template_aatype"].shape == (2, 4, 146)


def test_user_stockholm_with_hhsearch_templates(cli, tmp_path):
    out = tmp_path / "out"
    cli("features", FILES / "5PTI_A_jackhmmer.sto", "--output-dir", out, "--template-tool", "hhsearch",
        "--pdb70", FILES / "hhsearch" / "pdb_seqres", "--mmcif-dir", FILES / "mmcif",
        "--max-template-date", "2020-01-01")
    raw = load_npz(out / "5PTI_A" / "features.npz")
    msa_features.check_raw_features(raw)
    assert "5pti_A" in [n.decode() for n in raw["template_domain_names"]]
    record = json.loads((out / "5PTI_A" / "features.json").read_text())
    assert record["templates"]["tool"] == "hhsearch" and record["msa_mode"] == "user"


def test_failing_search_tool_exits_1_naming_the_target(tmp_path, caplog):
    bad = tmp_path / "bad"
    for part in ("a3m", "cs219"):
        (tmp_path / f"bad_{part}.ffdata").write_bytes(b"\x00garbage\n")
        (tmp_path / f"bad_{part}.ffindex").write_text("x\t0\t9\n")
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">pti\nRPDFCLEPPYTGPCKARIIRYFYNAKAGLCQTFVYGGCRAKRNNFKSAEDCMRTCGGA\n")
    code = cli_main(["features", str(fasta), "--output-dir", str(tmp_path / "out"), "--msa-mode", "hhblits",
                     "--bfd", str(bad)])
    assert code == 1, caplog.text
    assert "pti: failed: hhblits" in caplog.text and "1 target(s) failed" in caplog.text
    assert not (tmp_path / "out" / "pti" / "features.npz").exists()
