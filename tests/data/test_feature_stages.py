"""`alphafold features --stage msa|templates|features`: the three jobs the workflow runs per target.

Real data: the HBB_HUMAN query searched with jackhmmer (pyhmmer) against HMMER's 45 real globins
(Debian `hmmer-examples`), templates by hmmsearch against the 24 real PDB chains of `tests/data/files`.
Calls go through `alphafold.cli.main` (what `python -m alphafold` runs) in-process, to spare subprocesses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alphafold.cli import main as cli_main
from alphafold.data import msa_features, parsers
from alphafold.io_utils import load_npz
from tests.conftest import DATA

FILES = DATA / "files"
GLOBINS45 = Path("/usr/share/doc/hmmer/examples/tutorial/globins45.fa")
pytestmark = pytest.mark.skipif(not GLOBINS45.is_file(), reason="Debian hmmer-examples not installed")

QUERY = ["features", str(FILES / "queries.fasta"), "--only", "HBB_HUMAN", "--cpus", "1"]
MSA_FLAGS = ["--uniref90", str(GLOBINS45)]
TEMPLATE_FLAGS = ["--pdb-seqres", str(FILES / "pdb_seqres.txt"), "--mmcif-dir", str(FILES / "mmcif"),
                  "--max-template-date", "2020-01-01"]


def features(out: Path, *args: str) -> int:
    return cli_main([*QUERY, "--output-dir", str(out), "--store", str(out.parent / "store"), *args])


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The three stages run one after the other, each with only the flags it needs."""
    out = tmp_path_factory.mktemp("staged") / "out"
    hbb = out / "HBB_HUMAN"
    assert features(out, "--stage", "msa", *MSA_FLAGS) == 0
    after_msa = sorted(p.name for p in hbb.iterdir())
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 0
    after_templates = sorted(p.name for p in hbb.iterdir())
    assert features(out, "--stage", "features") == 0  # assembles: no database flag at all
    return out, after_msa, after_templates


def test_each_stage_writes_only_its_own_files(staged):
    out, after_msa, after_templates = staged
    assert after_msa == ["msas", "msas.json"]
    assert after_templates == ["msas", "msas.json", "templates.json", "templates.npz"]
    hbb = out / "HBB_HUMAN"
    assert not list(hbb.rglob(".*"))  # no temporary file left behind
    msas = json.loads((hbb / "msas.json").read_text())
    assert [f["name"] for f in msas["files"]] == ["uniref90.sto"]
    assert msas["searches"][0]["tool_version"].startswith("pyhmmer")
    alignment = parsers.parse_stockholm((hbb / "msas" / "uniref90.sto").read_text())
    assert len(alignment) > 10, "HBB has dozens of homologs among the 45 globins"
    templates = json.loads((hbb / "templates.json").read_text())
    # The template search's query is the MSA the first stage wrote, named by its checksum.
    assert templates["msa_sha256"] == msas["files"][0]["sha256"]
    assert templates["templates"]["used"] and templates["templates"]["num_templates"] == 4


def test_assembled_features_are_the_stage_files_combined(staged):
    out, _, _ = staged
    hbb = out / "HBB_HUMAN"
    feats = load_npz(hbb / "features.npz")
    msa_features.check_raw_features(feats, "HBB_HUMAN")
    assert feats["seq_length"][0] == 146
    expected_msa = msa_features.make_msa_features(
        [parsers.parse_stockholm((hbb / "msas" / "uniref90.sto").read_text())])
    for key, value in expected_msa.items():
        np.testing.assert_array_equal(feats[key], value, err_msg=key)
    for key, value in load_npz(hbb / "templates.npz").items():
        np.testing.assert_array_equal(feats[key], value, err_msg=key)
    assert "2hhb_B" in [n.decode() for n in feats["template_domain_names"]]
    record = json.loads((hbb / "features.json").read_text())
    assert record["msa_mode"] == "jackhmmer" and record["templates"]["num_templates"] == 4
    assert record["outputs"]["templates"] == str(hbb / "templates.npz")


def test_stage_all_gives_the_same_features_as_the_three_stages(staged, tmp_path):
    out, _, _ = staged
    assert cli_main([*QUERY, "--output-dir", str(tmp_path / "all"), *MSA_FLAGS, *TEMPLATE_FLAGS]) == 0
    staged_feats = load_npz(out / "HBB_HUMAN" / "features.npz")
    all_feats = load_npz(tmp_path / "all" / "HBB_HUMAN" / "features.npz")
    assert staged_feats.keys() == all_feats.keys()
    for key in staged_feats:
        np.testing.assert_array_equal(all_feats[key], staged_feats[key], err_msg=key)


def test_rerun_of_a_stage_reuses_the_store(staged, caplog):
    out, _, _ = staged
    caplog.set_level("INFO")
    assert features(out, "--stage", "msa", *MSA_FLAGS) == 0
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 0
    assert "reusing stored msa" in caplog.text and "jackhmmer HBB_HUMAN" not in caplog.text
    templates = json.loads((out / "HBB_HUMAN" / "templates.json").read_text())
    assert templates["reused"] is True
    # The templates file was written again, byte for byte the same: the features' store entry is reused.
    assert features(out, "--stage", "features") == 0
    assert json.loads((out / "HBB_HUMAN" / "features.json").read_text())["features_reused"] is True


def test_without_template_databases_the_template_stage_writes_zero_templates(tmp_path):
    out = tmp_path / "out"
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    assert features(out, "--stage", "templates") == 0
    assert features(out, "--stage", "features") == 0
    feats = load_npz(out / "HBB_HUMAN" / "features.npz")
    assert feats["template_aatype"].shape == (0, 146, 22)
    record = json.loads((out / "HBB_HUMAN" / "features.json").read_text())
    assert record["msa_mode"] == "user" and record["templates"] == {"used": False, "reason": "no flags"}


def test_a_stage_without_its_inputs_is_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 2
    err = capsys.readouterr().err
    assert "no msa output for target 'HBB_HUMAN'" in err and "--stage msa" in err and "Traceback" not in err
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    assert features(out, "--stage", "features") == 2
    assert "run `alphafold features --stage templates`" in capsys.readouterr().err
    assert not (out / "HBB_HUMAN" / "features.npz").exists()


def test_changed_or_newer_msas_are_never_used_with_stale_results(tmp_path, capsys):
    out = tmp_path / "out"
    hbb = out / "HBB_HUMAN"
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    # An alignment altered after the MSA stage wrote it (its checksum is in msas.json).
    sto = hbb / "msas" / "user.a3m"
    sto.write_text(sto.read_text() + ">extra\n" + "A" * 146 + "\n")
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 2
    assert "changed since the MSA stage wrote it" in capsys.readouterr().err
    # Templates searched with one MSA, then the MSA stage rerun with another: assembly refuses the mix.
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 0
    assert features(out, "--stage", "msa", *MSA_FLAGS) == 0
    assert features(out, "--stage", "features") == 2
    assert "searched with an older MSA" in capsys.readouterr().err
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 0
    assert features(out, "--stage", "features") == 0
    assert json.loads((hbb / "features.json").read_text())["msa_mode"] == "jackhmmer"


def test_template_search_that_cannot_run_fails_instead_of_storing_zero_templates(tmp_path, monkeypatch):
    import sys

    import alphafold.data

    out = tmp_path / "out"
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    # An environment without the template search's dependencies: the module does not import.
    monkeypatch.delattr(alphafold.data, "templates", raising=False)
    monkeypatch.setitem(sys.modules, "alphafold.data.templates", None)
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 1
    assert not (out / "HBB_HUMAN" / "templates.json").exists()
    assert not (tmp_path / "store" / "templates").exists()  # nothing stored to be reused later
    monkeypatch.undo()
    assert features(out, "--stage", "templates", *TEMPLATE_FLAGS) == 0
    assert json.loads((out / "HBB_HUMAN" / "templates.json").read_text())["templates"]["num_templates"] == 4


@pytest.mark.parametrize("record", ["[]", '{"key": "%s", "files": [{"name": "user.a3m"}]}'])
def test_a_damaged_stage_record_is_a_one_line_error(tmp_path, capsys, record):
    out = tmp_path / "out"
    assert features(out, "--stage", "msa", "--a3m", str(FILES / "hbb_globins45.a3m")) == 0
    msas = out / "HBB_HUMAN" / "msas.json"
    key = json.loads(msas.read_text())["key"]
    msas.write_text(record.replace("%s", key))  # valid JSON, not what the MSA stage writes
    assert features(out, "--stage", "templates") == 2
    err = capsys.readouterr().err
    assert str(msas) in err and "run --stage msa again" in err and "Traceback" not in err


def test_a_search_result_for_another_query_is_an_error_naming_its_file(tmp_path, capsys, monkeypatch):
    # a search tool that wrote another query's alignment: the error gives the result's full path, not the
    # bare "uniref90.sto" every target's search is called
    from alphafold.data.msa_pipeline import FeatureBuilder

    foreign = tmp_path / "cached" / "uniref90.a3m"
    foreign.parent.mkdir()
    foreign.write_text(">other\nMKTAYIAKQR\n>hit\nMKTAYIAKQK\n")
    monkeypatch.setattr(FeatureBuilder, "_search", lambda self, target, search: (foreign, {"format": "a3m"}))
    assert features(tmp_path / "out", "--stage", "msa", *MSA_FLAGS) == 2
    err = capsys.readouterr().err
    assert f"{foreign}: record 'HBB_HUMAN': MSA query differs from the target sequence" in err, err
    assert "Traceback" not in err
