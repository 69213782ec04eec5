"""Reading campaign inputs: FASTA, A3M directories and sample sheets; validation, names, deduplication."""

from __future__ import annotations

import gzip

import pytest

from alphafold.campaign.targets import read_targets, read_targets_tsv, sanitise_name, write_targets_tsv
from alphafold.common.hashing import sequence_hash
from alphafold.errors import UserError
from tests.campaign.conftest import EXAMPLE_FASTA


def test_example_fasta_reads_five_real_proteins():
    targets = read_targets(EXAMPLE_FASTA)
    assert len(targets) == 5
    assert [t.name for t in targets][0] == "tr_W8JGV5_W8JGV5_9CHLA"
    assert all(t.key == sequence_hash(t.sequence) for t in targets)
    assert sorted(t.length for t in targets) == [67, 80, 90, 97, 123]


def test_duplicates_collapse_to_one_target_with_all_names(tmp_path):
    f = tmp_path / "in.fasta"
    f.write_text(">a desc\nMKV\nLA*\n>b\nmkvla\n>c\nGGGS\n")
    targets = read_targets(f)
    assert [(t.names, t.sequence) for t in targets] == [(("a", "b"), "MKVLA"), (("c",), "GGGS")]


def test_gzipped_fasta(tmp_path):
    f = tmp_path / "in.fasta.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(">x\nACDE\n")
    assert read_targets(f)[0].sequence == "ACDE"


@pytest.mark.parametrize("text,problem", [
    (">a\nMK1V\n", "invalid residue(s) '1' (first at position 3)"),
    (">a\n\n>b\nMK\n", "sequence is empty"),
    ("MKV\n", "sequence data before the first '>'"),
    ("", "no FASTA records"),
    (">a\nMKV\n>a\nGGG\n", "used for two different sequences"),
    (">x/y\nMKV\n>x_y\nGGG\n", "used for two different sequences"),
])
def test_bad_fasta_is_one_clear_user_error(tmp_path, text, problem):
    f = tmp_path / "bad.fasta"
    f.write_text(text)
    with pytest.raises(UserError) as err:
        read_targets(f)
    assert problem in str(err.value)
    assert str(f) in str(err.value)


def test_max_length_names_the_record(tmp_path):
    f = tmp_path / "in.fasta"
    f.write_text(">short\nMKV\n>long\n" + "A" * 21 + "\n")
    with pytest.raises(UserError, match="record 'long': sequence of length 21 exceeds max_length 20"):
        read_targets(f, max_length=20)


@pytest.mark.parametrize("raw,expected", [
    ("sp|P69905|HBA_HUMAN", "sp_P69905_HBA_HUMAN"),
    ("../../etc/passwd", "etc_passwd"),
    ("..hidden", "hidden"),
    ("a\x00b\tc", "a_b_c"),
    ("///", "unnamed"),
])
def test_sanitise_name_keeps_names_path_safe(raw, expected):
    assert sanitise_name(raw) == expected


def test_a3m_directory_uses_first_sequence_without_gaps_or_insertions(tmp_path):
    (tmp_path / "q1.a3m").write_text(">q1\nMK-VL\n>hit\nMKaaVL\n")
    (tmp_path / "q2.a3m").write_text(">q2 x\nGGS\n")
    (tmp_path / "notes.txt").write_text("ignored")
    targets = read_targets(tmp_path)
    assert [(t.name, t.sequence) for t in targets] == [("q1", "MKVL"), ("q2", "GGS")]
    assert targets[0].a3m == str((tmp_path / "q1.a3m").resolve())


def test_empty_a3m_directory_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no .a3m files"):
        read_targets(tmp_path)


def test_sample_sheet_with_sequences_and_fasta_paths(tmp_path):
    (tmp_path / "one.fasta").write_text(">whatever\nWWW\n")
    (tmp_path / "aln.a3m").write_text(">q\nMKV\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("name\tsequence\tfasta\ta3m\nalpha\tMKV\t\taln.a3m\nbeta\t\tone.fasta\t\n")
    targets = read_targets(sheet)
    assert [(t.name, t.sequence) for t in targets] == [("alpha", "MKV"), ("beta", "WWW")]
    assert targets[0].a3m.endswith("aln.a3m") and targets[1].a3m is None


def test_sample_sheet_missing_columns(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("id,seq\na,MKV\n")
    with pytest.raises(UserError, match="needs columns 'name' and 'sequence' or 'fasta'"):
        read_targets(sheet)


def test_targets_table_round_trip(tmp_path):
    f = tmp_path / "in.fasta"
    f.write_text(">a\nMKV\n>b\nMKV\n>c\nGGS\n")
    targets = read_targets(f)
    write_targets_tsv(targets, tmp_path / "t.tsv")
    assert read_targets_tsv(tmp_path / "t.tsv") == targets


def test_missing_input():
    with pytest.raises(UserError, match="does not exist"):
        read_targets("/nonexistent/x.fasta")
