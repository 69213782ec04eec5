"""Targets from FASTA / A3M / Stockholm / sample sheets: validation, dedup, names, tiers, the CLI."""

from __future__ import annotations

import csv

import pytest

from alphafold.cli import main as cli_main
from alphafold.common.hashing import sequence_hash
from alphafold.data import inputs
from alphafold.errors import UserError
from tests.conftest import DATA

FILES = DATA / "files"
UBI = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_fasta_gives_four_targets():
    targets = inputs.read_targets([FILES / "queries.fasta"])
    assert [t.name for t in targets] == ["HBB_HUMAN", "1UBI_A", "5PTI_A", "1PPG_E"]
    assert [t.length for t in targets] == [146, 76, 58, 212]
    assert targets[1].key == sequence_hash(UBI)


def test_identical_sequences_merge_with_aliases(tmp_path):
    path = _write(tmp_path, "q.fasta", f">ubi_a\n{UBI}\n>other\nMKVLAAGIVG\n>ubi_b\n{UBI.lower()}\n")
    targets = inputs.read_targets([path])
    assert len(targets) == 2
    ubi = targets[0]
    assert ubi.name == "ubi_a" and ubi.aliases == ("ubi_a", "ubi_b")


@pytest.mark.parametrize("fasta,message", [
    (">a\n\n", "record 'a': sequence is empty"),
    (">a\nMKV1L\n", r"not amino-acid letters \('1'; first at position 4\)"),
    (">a\nMKV-L\n", "not amino-acid letters"),
    (">a\nACGTTGCAACGTAGCT\n", "looks like DNA/RNA"),
    (">a\nMKVL\n>a\nMRRR\n", "record 'a': duplicate name"),
    (">a/b\nMKVL\n>a_b\nMRRR\n", "collides with 'a/b'"),
    (">..\nMKVL\n", "no usable characters"),
    ("MKVL\n", "before the first '>'"),
])
def test_invalid_fasta(tmp_path, fasta, message):
    path = _write(tmp_path, "bad.fasta", fasta)
    with pytest.raises(UserError, match=message) as err:
        inputs.read_targets([path])
    assert str(path) in str(err.value)


def test_ambiguous_letters_accepted_and_stop_removed(tmp_path):
    path = _write(tmp_path, "q.fasta", ">a\nMKBZUOJXL*\n")
    (target,) = inputs.read_targets([path])
    assert target.sequence == "MKBZUOJXL"


def test_names_are_sanitised():
    assert inputs.sanitize_name("sp|P69905|HBA_HUMAN") == "sp_P69905_HBA_HUMAN"
    assert inputs.sanitize_name("../../etc/passwd") == "_etc_passwd"
    assert inputs.sanitize_name("a\x00b\nc") == "a_b_c"
    assert "/" not in inputs.sanitize_name("x/" * 80) and len(inputs.sanitize_name("x" * 300)) == 100


def test_a3m_and_stockholm_inputs_carry_their_msa():
    (a3m,) = inputs.read_targets([FILES / "1UBI_A_mmseqs.a3m"])
    assert a3m.sequence == UBI and a3m.msa.endswith("1UBI_A_mmseqs.a3m")
    (sto,) = inputs.read_targets([FILES / "5PTI_A_jackhmmer.sto"])
    assert sto.name == "5PTI_A" and sto.length == 58 and sto.msa.endswith(".sto")


def test_sample_sheet_with_sequences_and_paths(tmp_path):
    sheet = _write(tmp_path, "samples.tsv",
                   f"name\tsequence\nubi\t{UBI}\npti\t{FILES / '5PTI_A_jackhmmer.sto'}\n"
                   f"hbb\t{FILES / 'queries.fasta'}\n")
    with pytest.raises(UserError, match="has 4 records"):
        inputs.read_targets([sheet])
    sheet.write_text(f"ubi\t{UBI}\npti\t{FILES / '5PTI_A_jackhmmer.sto'}\nmissing\tnope.fasta\n")
    with pytest.raises(UserError, match="line 3: file 'nope.fasta' not found"):
        inputs.read_targets([sheet])
    sheet.write_text(f"ubi\t{UBI}\npti\t{FILES / '5PTI_A_jackhmmer.sto'}\n")
    targets = inputs.read_targets([sheet])
    assert [t.name for t in targets] == ["ubi", "pti"] and targets[1].msa


@pytest.mark.parametrize("length,tier", [(1, "single"), (1500, "single"), (1501, "tp2"), (2121, "tp2"),
                                         (2122, "tp4"), (3000, "tp4"), (4242, "tp8"), (4243, "too_long")])
def test_tier_for_length(length, tier):
    assert inputs.tier_for_length(length) == tier


def test_tier_policy_is_configurable():
    policy = inputs.TierPolicy(single_device_max_length=100, device_counts=(1, 4))
    assert inputs.tier_for_length(100, policy) == "single"
    assert inputs.tier_for_length(101, policy) == "tp4"
    assert inputs.tier_for_length(201, policy) == "too_long"


def test_prepare_targets_cli(cli, tmp_path):
    fasta = _write(tmp_path, "in.fasta", (FILES / "queries.fasta").read_text() + f">ubi_copy\n{UBI}\n"
                   + ">long\n" + "MKV" * 600 + "\n")
    out = tmp_path / "targets.tsv"
    proc = cli("prepare-targets", fasta, "--output", out)
    assert str(out) in proc.stderr
    rows = list(csv.DictReader(out.open(), delimiter="\t"))
    assert [r["name"] for r in rows] == ["HBB_HUMAN", "1UBI_A", "5PTI_A", "1PPG_E", "long"]
    assert rows[1]["aliases"] == "1UBI_A,ubi_copy"
    assert rows[4]["tier"] == "tp2" and rows[4]["length"] == "1800"
    assert rows[0]["key"] == sequence_hash(rows[0]["sequence"])
    # the table is itself a valid input, giving the same targets
    again = inputs.read_targets([out])
    assert [t.key for t in again] == [r["key"] for r in rows]


def test_prepare_targets_errors(tmp_path, capsys):
    # in-process: alphafold.cli.main is what `python -m alphafold` runs
    fasta = _write(tmp_path, "in.fasta", ">short\nMKVLAAGIVG\n>long\n" + "MKV" * 600 + "\n")
    code = cli_main(["prepare-targets", str(fasta), "--output", str(tmp_path / "t2.tsv"),
                     "--single-device-max-length", "500", "--device-counts", "1,2"])
    err = capsys.readouterr().err
    assert code == 2 and "record 'long'" in err and "--allow-too-long" in err
    assert not (tmp_path / "t2.tsv").exists()
    assert cli_main(["prepare-targets", str(fasta), "--output", str(tmp_path / "t2.tsv"), "--device-counts",
                     "1,x"]) == 2
    assert "--device-counts" in capsys.readouterr().err
    bad = _write(tmp_path, "bad.fasta", ">x\nMK1\n")
    assert cli_main(["prepare-targets", str(bad), "--output", str(tmp_path / "t3.tsv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "record 'x'" in err


@pytest.mark.parametrize("sheet,message", [
    ("name\tsequence\n", "lists no targets"),
    ("a\n", "line 1: expected 'name<TAB>sequence-or-path'"),
    ("a\tMKVL\nb\tsub.tsv\n", "cannot list another sample sheet"),
])
def test_invalid_sample_sheets(tmp_path, sheet, message):
    (tmp_path / "sub.tsv").write_text("x\tMKV\n")
    path = _write(tmp_path, "samples.tsv", sheet)
    with pytest.raises(UserError, match=message):
        inputs.read_targets([path])


def test_gzipped_fasta_and_broken_targets_table(tmp_path):
    import gzip

    with gzip.open(tmp_path / "q.fasta.gz", "wt") as fh:
        fh.write(f">ubi\n{UBI}\n")
    (target,) = inputs.read_targets([tmp_path / "q.fasta.gz"])
    assert target.sequence == UBI
    table = _write(tmp_path, "targets.tsv", "\t".join(inputs.TARGETS_COLUMNS) + "\nabc\tx\n")
    with pytest.raises(UserError, match="line 2: 2 columns"):
        inputs.read_targets([table])


def test_same_query_tolerates_tools_writing_x():
    from alphafold.data.msa_pipeline import same_query

    assert same_query("MKUV", "MKXV") and same_query("MKV", "MKV")
    assert not same_query("MKV", "MKL")
