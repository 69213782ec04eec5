"""A campaign plan from a config: the example, the real bacterial proteome, and input errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alphafold.campaign.campaign import Campaign
from alphafold.errors import UserError
from tests.campaign.conftest import EXAMPLE_FASTA


def proteome_path() -> Path | None:
    import pyhmmer

    p = Path(pyhmmer.__file__).parent / "tests" / "data" / "seqs" / "938293.PRJEB85.HG003687.faa"
    return p if p.is_file() else None


def test_example_campaign(tmp_path):
    c = Campaign.from_config({"targets": str(EXAMPLE_FASTA), "output_dir": str(tmp_path)})
    assert len(c.targets) == 5
    assert sum(b.size for b in c.batches.values()) == 5
    assert all(b.devices == 1 and b.tier.name == "s" for b in c.batches.values())
    res = c.resources("features", next(iter(c.batches)), attempt=2)
    assert res["mem_mb"] > c.resources("features", next(iter(c.batches)), attempt=1)["mem_mb"]


def test_duplicate_sequences_are_one_target(tmp_path):
    f = tmp_path / "in.fasta"
    f.write_text(">a\nMKVLA\n>b\nMKVLA\n>c\nGGSGW\n")
    c = Campaign.from_config({"targets": str(f), "output_dir": str(tmp_path / "o")})
    assert [t.aliases for t in c.targets] == [("a", "b"), ("c",)]


@pytest.mark.skipif(proteome_path() is None, reason="pyhmmer's test proteome is not installed")
def test_real_proteome_plans_into_few_batches(tmp_path):
    c = Campaign.from_config({"targets": str(proteome_path()), "output_dir": str(tmp_path)})
    assert len(c.targets) > 2000
    assert len(c.batches) < 200
    assert sum(b.size for b in c.batches.values()) == len(c.targets)


def test_max_length_in_config(tmp_path):
    with pytest.raises(UserError, match="exceeds max_length 80"):
        Campaign.from_config({"targets": str(EXAMPLE_FASTA), "output_dir": str(tmp_path), "max_length": 80})


def test_stage_settings_change_with_database(tmp_path):
    db = tmp_path / "db.fasta"
    db.write_text(">x\nMKV\n")
    cfg = {"targets": str(EXAMPLE_FASTA), "output_dir": str(tmp_path), "databases": {"uniref90": str(db)}}
    a = Campaign.from_config(cfg).stage_settings("predict")
    db.write_text(">x\nMKVW\n")
    b = Campaign.from_config(cfg).stage_settings("predict")
    assert a != b  # a new database invalidates features, hence predictions


def test_stage_settings_chain_msa_templates_features(tmp_path):
    seqres = tmp_path / "pdb_seqres.txt"
    seqres.write_text(">1abc_A mol:protein length:3  X\nMKV\n")
    cfg = {"targets": str(EXAMPLE_FASTA), "output_dir": str(tmp_path),
           "databases": {"pdb_seqres": str(seqres), "mmcif_dir": str(tmp_path)}}
    stages = ("msa_search", "template_search", "features", "predict")
    before = {s: Campaign.from_config(cfg).stage_settings(s) for s in stages}
    seqres.write_text(">1abc_A mol:protein length:4  X\nMKVW\n")
    after = {s: Campaign.from_config(cfg).stage_settings(s) for s in stages}
    # A new template database: the MSAs stay valid; templates and everything after are recomputed.
    assert before["msa_search"] == after["msa_search"]
    assert all(before[s] != after[s] for s in stages[1:])
    cfg["features"] = {"max_msa_clusters": 7}
    processing = {s: Campaign.from_config(cfg).stage_settings(s) for s in stages}
    assert processing["template_search"] == after["template_search"]
    assert processing["features"] != after["features"]


def test_targets_are_cached_by_file_content(tmp_path, monkeypatch):
    from alphafold.campaign import campaign as campaign_module

    f = tmp_path / "in.fasta"
    f.write_text(">a\nMKVLA\n>b\nMKVLA\n")
    cfg = {"targets": str(f), "output_dir": str(tmp_path / "o")}
    first = Campaign.from_config(cfg).targets
    assert len(list((tmp_path / "o" / ".cache").glob("targets-*.json"))) == 1

    def no_reading(paths):
        raise AssertionError("read again although the input did not change")

    monkeypatch.setattr(campaign_module, "read_targets", no_reading)
    assert Campaign.from_config(cfg).targets == first
    f.write_text(">a\nMKVLA\n>c\nGGSGW\n")  # changed input: read afresh
    with pytest.raises(AssertionError, match="read again"):
        Campaign.from_config(cfg)


@pytest.mark.parametrize("databases,message", [
    ({"uniref90": "{tmp}/missing.fasta"}, r"^config: databases\.uniref90: .*missing\.fasta does not exist$"),
    ({"mgnify": "{tmp}/nope.fa"}, r"^config: databases\.mgnify: .*nope\.fa does not exist$"),
    ({"pdb_seqres": "{tmp}/seqres.txt"}, r"pdb_seqres and databases\.mmcif_dir go together"),
    ({"mmcif_dir": "{tmp}"}, r"pdb_seqres and databases\.mmcif_dir go together"),
])
def test_bad_databases_are_one_line_errors_at_planning(tmp_path, databases, message):
    (tmp_path / "seqres.txt").write_text(">1abc_A mol:protein length:3  X\nMKV\n")
    databases = {k: v.format(tmp=tmp_path) for k, v in databases.items()}
    cfg = {"targets": str(EXAMPLE_FASTA), "output_dir": str(tmp_path / "o"), "databases": databases}
    with pytest.raises(UserError) as err:
        Campaign.from_config(cfg)
    assert re.search(message, str(err.value)), str(err.value)
