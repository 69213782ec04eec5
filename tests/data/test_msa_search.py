"""The search tools on real data: pyhmmer == jackhmmer binary, caps, hhblits on a tiny real HH-suite
database, MMseqs2 to A3M, database identity."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from alphafold.data import msa_search, parsers
from alphafold.io_utils import load_npz
from tests.conftest import DATA
from tests.data import hhsuite_db

FILES = DATA / "files"
UNIPROT_20K = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
QUERIES = {parsers.record_name(h): s for h, s in parsers.parse_fasta((FILES / "queries.fasta").read_text())}


@pytest.fixture(scope="module")
def uniprot_records():
    if not UNIPROT_20K.exists():
        pytest.skip("Debian mmseqs2-examples not installed")
    with gzip.open(UNIPROT_20K, "rt") as fh:
        return parsers.parse_fasta(fh.read())


@pytest.fixture(scope="module")
def uniprot20k(uniprot_records, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "uniprot20k.fasta"
    with gzip.open(UNIPROT_20K, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def _homolog_subset(records, decoys: int, domains: bool = False, per_query: int | None = None):
    """The real UniProt homologs jackhmmer found for 1UBI and 5PTI (whole, or just the matched domains,
    ``name/start-end``; at most ``per_query`` each), plus ``decoys`` other sequences under 150 residues."""
    by_name = {parsers.record_name(h): s for h, s in records}
    picked: dict[str, str] = {}
    for sto in ("1UBI_A_jackhmmer.sto", "5PTI_A_jackhmmer.sto"):
        for hit in parsers.parse_stockholm((FILES / sto).read_text()).descriptions[1:][:per_query]:
            name, _, span = hit.partition("/")
            if domains:
                start, end = (int(x) for x in span.split("-"))
                picked[hit] = by_name[name][start - 1:end]
            else:
                picked[name] = by_name[name]
    others = [(n, s) for n, s in by_name.items() if n not in picked and len(s) < 150][:decoys]
    return list(picked.items()) + others


@pytest.mark.parametrize("query", ["5PTI_A", "1UBI_A"])
def test_pyhmmer_equals_jackhmmer_binary(uniprot20k, query):
    if shutil.which("jackhmmer") is None:
        pytest.skip("HMMER binary not installed")
    settings = msa_search.JackhmmerSettings()
    ours = msa_search.JackhmmerSearch(uniprot20k, "uniref90", settings).search(query, QUERIES[query])
    theirs = msa_search.JackhmmerBinarySearch(uniprot20k, "uniref90", settings).search(query, QUERIES[query])
    assert ours.num_hits == theirs.num_hits > 10
    a, b = ours.parse(), theirs.parse()
    assert a.sequences == b.sequences
    assert a.deletion_matrix == b.deletion_matrix
    assert a.descriptions == b.descriptions
    assert theirs.tool_version.startswith("HMMER 3")


def test_jackhmmer_cap_and_iterations(uniprot20k):
    seq = QUERIES["1PPG_E"]
    one = msa_search.JackhmmerSearch(uniprot20k, "uniref90").search("1PPG_E", seq)
    capped = msa_search.JackhmmerSearch(uniprot20k, "mgnify", msa_search.JackhmmerSettings(max_rows=10))
    capped_result = capped.search("1PPG_E", seq)
    assert capped_result.num_hits == 9
    assert capped_result.parse().sequences == one.parse().sequences[:10]
    settings3 = msa_search.JackhmmerSettings(iterations=3)
    three = msa_search.JackhmmerSearch(uniprot20k, "uniref90", settings3).search("1PPG_E", seq)
    assert three.num_hits >= one.num_hits
    # a database too large to hold in memory is streamed from disk each iteration: same alignment
    streamed = msa_search.JackhmmerSearch(uniprot20k, "uniref90", settings3, preload_max_bytes=0)
    assert streamed.search("1PPG_E", seq).parse().sequences == three.parse().sequences


def test_database_identity_tracks_content(tmp_path):
    db = tmp_path / "db.fasta"
    db.write_text(">a\nMKV\n")
    first = msa_search.database_identity(db)
    db.write_text(">a\nMKL\n")
    assert msa_search.database_identity(db) != first
    assert first["path"] == str(db)


@pytest.fixture(scope="module")
def tiny_hhsuite_db(uniprot_records, tmp_path_factory) -> Path:
    if not hhsuite_db.tools_available():
        pytest.skip("HH-suite not installed")
    # cstranslate takes ~0.15 s CPU per entry: 45 entries keep the build near 10 s
    records = _homolog_subset(uniprot_records, decoys=5, domains=True, per_query=20)
    return hhsuite_db.build(records, tmp_path_factory.mktemp("hh") / "tiny")


@pytest.mark.slow
def test_hhblits_on_tiny_real_database(tiny_hhsuite_db, tmp_path, cli):
    # BPTI: its Kunitz-domain homologs are diverse enough to survive hhblits' output filter (-id 90),
    # unlike the near-identical plant ubiquitins
    search = msa_search.HHblitsSearch([tiny_hhsuite_db], cpus=2)
    result = search.search("5PTI_A", QUERIES["5PTI_A"])
    msa = result.parse()
    assert msa.query == QUERIES["5PTI_A"]
    assert result.num_hits >= 5 and result.tool_version.startswith("HHblits 3")
    assert all(len(s) == 58 for s in msa.sequences)
    assert any("DROMO" in d for d in msa.descriptions)
    # and through the CLI, as the BFD/UniRef30 stand-in
    fasta = tmp_path / "pti.fasta"
    fasta.write_text(f">pti\n{QUERIES['5PTI_A']}\n")
    out = tmp_path / "out"
    cli("features", fasta, "--output-dir", out, "--msa-mode", "hhblits", "--bfd", tiny_hhsuite_db)
    feats = load_npz(tmp_path / "out" / "pti" / "features.npz")
    assert feats["msa"].shape[1] == 58 and feats["msa"].shape[0] >= 5
    assert (tmp_path / "out" / "pti" / "msas" / "bfd_uniref30.a3m").is_file()


@pytest.mark.slow
def test_mmseqs2_search_gives_query_first_a3m(uniprot_records, tmp_path):
    if shutil.which("mmseqs") is None:
        pytest.skip("MMseqs2 not installed")
    db = tmp_path / "subset.fasta"
    db.write_text("".join(f">{n}\n{s}\n" for n, s in _homolog_subset(uniprot_records, decoys=300)))
    search = msa_search.MmseqsSearch(db, "uniref90", msa_search.MmseqsSettings(max_rows=20), cpus=2)
    try:
        result = search.search("5PTI_A", QUERIES["5PTI_A"])
    finally:
        search.close()
    msa = result.parse()
    assert msa.query == QUERIES["5PTI_A"]
    assert 5 <= result.num_hits <= 19 and len(msa) <= 20
    assert result.tool_version.startswith("MMseqs2")
