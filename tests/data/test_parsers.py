"""A3M / Stockholm / FASTA parsing on real files, and clear errors on malformed ones."""

from __future__ import annotations

import pytest

from alphafold.data import parsers
from alphafold.errors import UserError
from tests.conftest import DATA

FILES = DATA / "files"


def test_a3m_deletions_and_query_first():
    msa = parsers.parse_a3m(">q\nMKVA\n>h1 desc\nM-kkVaA\n>h2\n-K.VA\n")
    assert msa.sequences == ("MKVA", "M-VA", "-KVA")
    assert msa.deletion_matrix == ((0, 0, 0, 0), (0, 0, 2, 1), (0, 0, 0, 0))
    assert msa.descriptions == ("q", "h1 desc", "h2")


def test_stockholm_insert_columns_become_deletions():
    text = "# STOCKHOLM 1.0\nq   MK--VA\nh1  M-ggVA\nh2  MKa.V-\n//\n"
    msa = parsers.parse_stockholm(text)
    assert msa.sequences == ("MKVA", "M-VA", "MKV-")
    assert msa.deletion_matrix == ((0, 0, 0, 0), (0, 0, 2, 0), (0, 0, 1, 0))


def test_real_jackhmmer_output_multi_domain_rows():
    msa = parsers.parse_stockholm((FILES / "5PTI_A_jackhmmer.sto").read_text())
    assert len(msa) == 88
    assert msa.query == "RPDFCLEPPYTGPCKARIIRYFYNAKAGLCQTFVYGGCRAKRNNFKSAEDCMRTCGGA"
    assert all(len(s) == 58 for s in msa.sequences)
    assert msa.descriptions[1] == "tr|B4K6Z6|B4K6Z6_DROMO/1699-1749"


def test_real_mmseqs_a3m():
    msa = parsers.parse_a3m((FILES / "1UBI_A_mmseqs.a3m").read_text())
    assert msa.query.startswith("MQIFVKTLTG") and len(msa.query) == 76
    assert len(msa) == 16


def test_stockholm_to_a3m_round_trip_equals_direct_parse():
    text = (FILES / "1UBI_A_jackhmmer.sto").read_text()
    direct = parsers.parse_stockholm(text)
    via = parsers.parse_a3m(parsers.stockholm_to_a3m(text))
    assert via.sequences == direct.sequences
    assert via.deletion_matrix == direct.deletion_matrix


def test_truncate_stockholm_keeps_first_rows():
    text = (FILES / "5PTI_A_jackhmmer.sto").read_text()
    short = parsers.parse_stockholm(parsers.truncate_stockholm(text, 10))
    full = parsers.parse_stockholm(text)
    assert short.sequences == full.sequences[:10]


@pytest.mark.parametrize("text,message", [
    ("", "no records"),
    ("MKV\n>q\nMKV\n", "before the first '>'"),
    (">q\n\n>h\nMK\n", "query .* is empty"),
    (">q\nMK-V\n", "must not contain gaps"),
    (">q\nMKV\n>h\nMKVV\n", "4 aligned columns but the query has 3"),
])
def test_malformed_a3m(text, message):
    with pytest.raises(UserError, match=message):
        parsers.parse_a3m(text, "bad.a3m")


@pytest.mark.parametrize("text,message", [
    ("q MKV\n", "no '# STOCKHOLM' header"),
    ("# STOCKHOLM 1.0\n//\n", "no sequences"),
    ("# STOCKHOLM 1.0\nq MKV\nh MK\n//\n", "2 columns but the query has 3"),
    ("# STOCKHOLM 1.0\nq MKV extra\n//\n", "expected 'name alignment'"),
    ("# STOCKHOLM 1.0\nq ---\nh MKV\n//\n", "no residues"),
])
def test_malformed_stockholm(text, message):
    with pytest.raises(UserError, match=message) as err:
        parsers.parse_stockholm(text, "bad.sto")
    assert str(err.value).startswith("bad.sto")


def test_sniff_format_by_suffix_and_content(tmp_path):
    assert parsers.sniff_format("x.sto", "") == "stockholm"
    assert parsers.sniff_format("x.txt", "# STOCKHOLM 1.0\n") == "stockholm"
    assert parsers.sniff_format("x.txt", ">q\nMKV\n>h\nM-kV\n") == "a3m"
    assert parsers.sniff_format("x.txt", ">q\nMKV\n>h\nMRV\n") == "fasta"
    assert parsers.sniff_format("x", "a\tMKV\n") == "tsv"
    with pytest.raises(UserError, match="unknown format"):
        parsers.sniff_format("x", "hello")


def test_read_text_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        parsers.read_text(tmp_path / "missing.fasta")
    (tmp_path / "bin.fasta").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UserError, match="cannot be read as text"):
        parsers.read_text(tmp_path / "bin.fasta")


def test_stockholm_parse_agrees_with_a3m_path_on_random_alignments():
    """The vectorised Stockholm parser against the per-letter A3M path, on random rows with insert
    columns, lower case letters and both gap characters (17 rows, 23 columns, 5 of them inserts)."""
    import random

    rng = random.Random(12)
    letters = "ACDEFGHIKLMNPQRSTVWYacdx-."
    query = "".join("-" if i in (0, 4, 5, 11, 22) else rng.choice("ACDEFGHIKLMNPQRSTVWY") for i in range(23))
    rows = [f"r{i}/1-9 " + "".join(rng.choice(letters) for _ in range(23)) for i in range(16)]
    text = "# STOCKHOLM 1.0\nquery " + query + "\n" + "\n".join(rows) + "\n//\n"
    direct = parsers.parse_stockholm(text)
    via = parsers.parse_a3m(parsers.stockholm_to_a3m(text))
    assert len(direct) == 17 and len(direct.query) == 18
    assert direct.sequences == via.sequences
    assert direct.deletion_matrix == via.deletion_matrix
