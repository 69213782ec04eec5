"""Template search and features on real PDB entries (tests/data/files, see README.md there)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import gemmi
import numpy as np
import pytest

from alphafold.common import residue_constants as rc
from alphafold.data.mmcif import read_mmcif
from alphafold.data.templates import TemplateSearcher, msa_match_columns
from alphafold.errors import UserError

FILES = Path(__file__).parent / "files"
SEQRES = FILES / "pdb_seqres.txt"
MMCIF = FILES / "mmcif"
PROTEASES = Path("/usr/share/doc/t-coffee/examples/proteases_small.fasta")


def _fasta(path: Path) -> list[str]:
    rows: list[str] = []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            rows.append("")
        elif line.strip():
            rows[-1] += line.strip()
    return rows


@pytest.fixture(scope="module")
def hbb_msa() -> list[str]:
    return _fasta(FILES / "hbb_globins45.a3m")


@pytest.fixture(scope="module")
def searcher() -> TemplateSearcher:
    return TemplateSearcher(SEQRES, MMCIF, "2020-01-01")


def test_hbb_templates_equal_deepminds_featurizer(searcher, hbb_msa):
    """Same MSA, database and files through DeepMind's hmmbuild/hmmsearch/HmmsearchHitFeaturizer
    (tests/data/reference/make_af2_templates.py): every array must be identical (tolerance 0)."""
    reference = dict(np.load(FILES / "af2_templates_hbb.npz"))
    assert str(reference.pop("max_template_date")) == "2020-01-01"
    features, hits = searcher.search(hbb_msa[0], hbb_msa)
    assert set(features) == set(reference)
    for key, expected in reference.items():
        assert features[key].shape == expected.shape, key
        assert features[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(features[key], expected, err_msg=key)
    # HBB itself (2HHB chain B), then the alpha chain, then the earthworm globins of 2GTL.
    assert list(features["template_domain_names"]) == [b"2hhb_B", b"2hhb_A", b"2gtl_A", b"2gtl_C"]
    assert [h["name"] for h in hits if h["used"]] == ["2hhb_B", "2hhb_A", "2gtl_A", "2gtl_C"]
    # 2HHB chain D is HBB again: skipped as a repeat of an identical template.
    assert "repeat" in next(h for h in hits if h["name"] == "2hhb_D")["reason"] or \
        "same aligned sequence" in next(h for h in hits if h["name"] == "2hhb_D")["reason"]


def test_template_coordinates_are_the_structures(searcher, hbb_msa):
    features, _ = searcher.search(hbb_msa[0], hbb_msa)
    entry = read_mmcif(MMCIF / "2hhb.cif.gz")
    positions, mask = entry.atom37("B")
    # HBB == 2HHB chain B residue for residue: the first template is the chain itself.
    np.testing.assert_array_equal(features["template_all_atom_positions"][0], positions)
    np.testing.assert_array_equal(features["template_all_atom_masks"][0], mask)
    assert features["template_sequence"][0].decode() == hbb_msa[0]
    # One-hot in HHblits order: V (first residue of HBB) is index 17 there.
    assert features["template_aatype"][0, 0].argmax() == 17
    assert features["template_sum_probs"].shape == (4, 1)


def test_release_date_cutoff_excludes_later_entries(hbb_msa):
    features, hits = TemplateSearcher(SEQRES, MMCIF, "2000-01-01").search(hbb_msa[0], hbb_msa)
    # 2GTL was released 2006-07-18, 2HHB 1984-07-18.
    assert list(features["template_domain_names"]) == [b"2hhb_B", b"2hhb_A"]
    late = [h for h in hits if h["name"].startswith("2gtl")]
    assert late and all(not h["used"] and "after the cut-off" in h["reason"] for h in late)
    assert all(h["release_date"] == "2006-07-18" for h in late)


def test_protease_query_finds_other_serine_proteases(searcher):
    query = _fasta(PROTEASES)[0]  # granzyme-like protease GRZ2_RAT (Q06606), query alone
    features, hits = searcher.search(query, None)
    names = [n.decode() for n in features["template_domain_names"]]
    assert len(names) == 4
    assert {"1mzd_A", "1op8_F", "1ppg_E"} <= set(names)  # granzyme K, granzyme A, elastase
    # The query's catalytic-serine motif GDSGGP is aligned to each template's own G-D-[S]-G (one of the
    # crystals is an inactive S->A mutant, GDAG).
    start = query.index("GDSGGP")
    motifs = sorted(seq.decode()[start:start + 4] for seq in features["template_sequence"])
    assert motifs == ["GDAG", "GDSG", "GDSG", "GDSG"]
    assert all(h["e_value"] < 1e-20 for h in hits if h["used"])


def test_no_template_gives_empty_arrays_of_the_right_shapes(hbb_msa):
    features, hits = TemplateSearcher(SEQRES, MMCIF, "1950-01-01").search(hbb_msa[0], hbb_msa)
    num_res = len(hbb_msa[0])
    assert features["template_aatype"].shape == (0, num_res, 22)
    assert features["template_all_atom_masks"].shape == (0, num_res, 37)
    assert features["template_all_atom_positions"].shape == (0, num_res, 37, 3)
    assert features["template_domain_names"].shape == (0,)
    assert features["template_sum_probs"].shape == (0, 1)
    assert hits and not any(h["used"] for h in hits)


def test_malformed_mmcif_is_a_user_error_naming_the_file(tmp_path, hbb_msa):
    mmcif_dir = tmp_path / "mmcif"
    shutil.copytree(MMCIF, mmcif_dir)
    broken = mmcif_dir / "2hhb.cif.gz"
    text = gzip.decompress(broken.read_bytes()).decode()
    # Cut off mid-file inside the coordinates, then an unterminated quoted value: a CIF syntax error.
    broken.write_bytes(gzip.compress((text[: len(text) // 2] + "\n'unterminated\n").encode()))
    with pytest.raises(UserError, match="2hhb.cif.gz"):
        TemplateSearcher(SEQRES, mmcif_dir, "2020-01-01").search(hbb_msa[0], hbb_msa)
    # Asked to, the search skips the bad entry and goes on with the others.
    features, hits = TemplateSearcher(SEQRES, mmcif_dir, "2020-01-01", skip_bad_files=True).search(
        hbb_msa[0], hbb_msa)
    assert all(not n.startswith(b"2hhb") for n in features["template_domain_names"])
    assert any("2hhb.cif.gz" in h["reason"] for h in hits)


def test_mmcif_without_sequence_table_is_a_user_error(tmp_path):
    doc = gemmi.cif.read(str(MMCIF / "5pti.cif.gz"))
    doc.sole_block().find_mmcif_category("_entity_poly_seq.").erase()
    path = tmp_path / "5pti.cif"
    doc.write_file(str(path))
    with pytest.raises(UserError, match=r"5pti\.cif.*_entity_poly_seq"):
        read_mmcif(path)


def test_mmcif_release_date_sequence_and_atoms():
    entry = read_mmcif(MMCIF / "5pti.cif.gz")
    assert entry.file_id == "5pti"
    assert str(entry.release_date) == "1984-10-29"  # the oldest of six revisions
    assert entry.seqres == {"A": "RPDFCLEPPYTGPCKARIIRYFYNAKAGLCQTFVYGGCRAKRNNFKSAEDCMRTCGGA"}
    positions, mask = entry.atom37("A")
    assert positions.shape == (58, 37, 3) and positions.dtype == np.float32
    # Every resolved atom is one its residue type has (no hydrogens, no water); backbone complete.
    aatype = rc.sequence_to_aatype(entry.seqres["A"])
    allowed = rc.restype_atom37_mask[aatype].copy()
    allowed[:, rc.atom_order["OXT"]] = 1.0
    assert np.all(mask <= allowed)
    assert mask[:, :3].all()
    # First atom of the file: ARG 1 N at (32.231, 1.00?, ...): coordinates read as written.
    np.testing.assert_allclose(positions[0, rc.atom_order["N"], 0], 32.231, rtol=0, atol=1e-4)


def test_selenomethionine_is_read_as_methionine(tmp_path):
    """MSE's selenium is stored as SD; the residue counts as X in SEQRES, as in AF2."""
    doc = gemmi.cif.read(str(MMCIF / "5pti.cif.gz"))
    block = doc.sole_block()
    met = 51  # MET 52 (0-based 51)
    for row in block.find("_atom_site.", ["label_comp_id", "label_atom_id", "label_seq_id", "type_symbol"]):
        if row[2] == str(met + 1):
            row[0] = "MSE"
            if row[1] == "SD":
                row[1], row[3] = "SE", "SE"
    for row in block.find("_entity_poly_seq.", ["num", "mon_id"]):
        if row[0] == str(met + 1):
            row[1] = "MSE"
    path = tmp_path / "5pti_mse.cif"
    doc.write_file(str(path))
    original_positions, original_mask = read_mmcif(MMCIF / "5pti.cif.gz").atom37("A")
    entry = read_mmcif(path)
    assert entry.seqres["A"][met] == "X"
    positions, mask = entry.atom37("A")
    np.testing.assert_array_equal(positions, original_positions)
    np.testing.assert_array_equal(mask, original_mask)
    assert mask[met, rc.atom_order["SD"]] == 1.0


def test_msa_rows_must_cover_the_query():
    assert msa_match_columns(["ACDE", "AcCDE", "-C-E"], "ACDE") == ["ACDE", "ACDE", "-C-E"]
    with pytest.raises(UserError, match="row 1 has 3 match columns"):
        msa_match_columns(["ACDE", "ACD"], "ACDE")
    with pytest.raises(UserError, match="first row must be the query"):
        msa_match_columns(["ACDF"], "ACDE")


def test_insertions_become_insert_columns_as_in_jackhmmer_stockholm():
    from alphafold.data.templates import expand_insertions

    rows, reference = expand_insertions(["ACDE", "AcCDEde", "-C-E", "aaAC-E"])
    assert reference == "..x.xxx.."
    assert rows == ["..A.CDE..", "..AcCDEde", "..-.C-E..", "aaA.C-E.."]


def test_bad_options_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        TemplateSearcher(tmp_path / "missing.txt", MMCIF, "2020-01-01")
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        TemplateSearcher(SEQRES, MMCIF, "01/02/2020")


def test_mmcif_reader_equals_deepminds_parser_on_every_test_file():
    """Release date, chain sequences and atom37 arrays (sha256 of float32 bytes, i.e. exact) of every chain
    of the test entries, against DeepMind's mmcif_parsing + _get_atom_positions
    (tests/data/reference/make_af2_templates.py). 5PTI has alternate locations, 2GTL 15 chains."""
    import hashlib
    import json

    expected = json.loads((FILES / "af2_mmcif_digest.json").read_text())
    assert sorted(expected) == sorted(p.name for p in MMCIF.glob("*.cif.gz"))
    for name, reference in expected.items():
        entry = read_mmcif(MMCIF / name)
        if reference["release_date"] is not None:  # DeepMind reads no date from the converted files
            assert str(entry.release_date) == reference["release_date"], name
        assert entry.seqres == {c: r["seqres"] for c, r in reference["chains"].items()}, name
        for chain_id, ref in reference["chains"].items():
            positions, mask = entry.atom37(chain_id)
            assert hashlib.sha256(positions.tobytes()).hexdigest() == ref["positions_sha256"], name
            assert hashlib.sha256(mask.tobytes()).hexdigest() == ref["mask_sha256"], (name, chain_id)


HHSEARCH_DB = FILES / "hhsearch" / "pdb_seqres"


def test_hhsearch_templates_equal_deepminds_featurizer(hbb_msa):
    """AF2's monomer path: hhsearch on the HH-suite version of the test database, hits ranked by
    Sum_probs, repeats kept (DeepMind's HhsearchHitFeaturizer); identical arrays (tolerance 0)."""
    reference = dict(np.load(FILES / "af2_templates_hbb_hhsearch.npz"))
    date = str(reference.pop("max_template_date"))
    searcher = TemplateSearcher(None, MMCIF, date, tool="hhsearch", hhsearch_db=HHSEARCH_DB)
    features, hits = searcher.search(hbb_msa[0], hbb_msa)
    for key, expected in reference.items():
        assert features[key].shape == expected.shape, key
        assert features[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(features[key], expected, err_msg=key)
    assert list(features["template_domain_names"]) == [b"2hhb_B", b"2hhb_D", b"2hhb_A", b"2hhb_C"]
    sum_probs = features["template_sum_probs"].ravel()
    assert np.all(np.diff(sum_probs) <= 0) and sum_probs[0] > 100


def test_hhsearch_database_build_and_bad_database(tmp_path, hbb_msa):
    from alphafold.data import hhsearch

    fasta = tmp_path / "seqres.txt"
    records = SEQRES.read_text().split(">")[1:]
    fasta.write_text("".join(">" + r for r in records if r.startswith(("2hhb_A", "5pti_A", "1ppg_E"))))
    hhsearch.build_database(fasta, tmp_path / "db")
    features, _ = TemplateSearcher(None, MMCIF, "2020-01-01", tool="hhsearch",
                                   hhsearch_db=tmp_path / "db").search(hbb_msa[0], hbb_msa)
    assert list(features["template_domain_names"]) == [b"2hhb_A"]
    with pytest.raises(UserError, match="missing.*nowhere_hhm.ffdata"):
        TemplateSearcher(None, MMCIF, "2020-01-01", tool="hhsearch", hhsearch_db=tmp_path / "nowhere")


def test_hhr_parsing_maps_query_to_template_residues():
    from alphafold.data import hhsearch

    hhr = """Query         q
 No Hit                             Prob E-value P-value  Score    SS Cols Query HMM  Template HMM
  1 1abc_A mol:protein length:9     99.0 1E-10 1E-12  50.0   0.0    5    2-6     3-8 (9)

No 1
>1abc_A mol:protein length:9  TEST
Probab=99.00  E-value=1e-10  Score=50.00  Aligned_cols=5  Identities=60%  Sum_probs=4.5  Template_Neff=1.0

Q q                 2 CD-EF    6 (7)
Q Consensus         2 cd-ef    6 (7)
T Consensus         3 cdgef    7 (9)
T 1abc_A            3 CDGEF    7 (9)
T ss_dssp             CCCCC
"""
    (hit,) = hhsearch.parse_hhr(hhr)
    assert hit["name"] == "1abc_A" and hit["sum_probs"] == 4.5 and hit["aligned_cols"] == 5
    sequence, mapping = hhsearch.hit_mapping(hit)
    # Query residues 2..6 (1-based) against template residues 3..7; the template's G is an insertion.
    assert sequence == "CDGEF"
    assert mapping == {1: 0, 2: 1, 3: 3, 4: 4}


@pytest.mark.parametrize("edit", ["substitution", "deletion"])
def test_hit_differing_from_the_mmcif_sequence_is_realigned(tmp_path, hbb_msa, edit):
    """A database sequence that is not the file's (an older/other version of the entry) is realigned to
    the chain's SEQRES, as AF2 does: the template is then read from the file exactly as before."""
    records = SEQRES.read_text().split(">")[1:]
    hbb = next(r for r in records if r.startswith("2hhb_B"))
    header, seq = hbb.split("\n", 1)
    seq = seq.strip()
    # Position 70 of HBB (0-based 69): A -> G, or the residue removed.
    changed = seq[:69] + ("G" if edit == "substitution" else "") + seq[70:]
    fasta = tmp_path / "seqres.txt"
    fasta.write_text(f">{header}\n{changed}\n")
    original, _ = TemplateSearcher(SEQRES, MMCIF, "2020-01-01", max_hits=1).search(hbb_msa[0], hbb_msa)
    realigned, hits = TemplateSearcher(fasta, MMCIF, "2020-01-01", max_hits=1).search(hbb_msa[0], hbb_msa)
    assert hits[0]["used"] and realigned["template_domain_names"][0] == b"2hhb_B"
    if edit == "substitution":
        assert realigned["template_sequence"][0] == original["template_sequence"][0]  # the file's residues
        for key in ("template_all_atom_positions", "template_all_atom_masks", "template_aatype"):
            np.testing.assert_array_equal(realigned[key], original[key], err_msg=key)
    else:
        # Every query residue the realigned template covers carries the file's coordinates for it.
        covered = realigned["template_all_atom_masks"][0].any(-1)
        assert covered.sum() >= len(seq) - 2 and not covered[69]  # the removed residue is not aligned
        letters = np.frombuffer(realigned["template_sequence"][0], "S1")
        np.testing.assert_array_equal(letters[covered],
                                      np.frombuffer(original["template_sequence"][0], "S1")[covered])
        np.testing.assert_array_equal(realigned["template_all_atom_positions"][0][covered],
                                      original["template_all_atom_positions"][0][covered])


def test_nucleic_acid_records_are_searched_but_never_used(tmp_path, hbb_msa, searcher):
    """pdb_seqres.txt also lists DNA/RNA chains (`mol:na`); like AF2 they stay in the searched set (so
    they count in the E-values) and their hits are dropped. The two `mol:na` records below are format
    examples, not PDB entries: an HBB gene fragment, and the HBB protein sequence mislabelled as NA so
    that it does hit."""
    fasta = tmp_path / "seqres.txt"
    na = "GTGCACCTGACTCCTGAGGAGAAGTCTGCCGTTACTGCCCTGTGGGGCAAGGTGAACGTGGATGAAGTTGGTGGTGAGGCC"
    fasta.write_text(SEQRES.read_text() + f">9xyz_B mol:na length:{len(na)}  HBB GENE FRAGMENT\n{na}\n"
                     + f">9xyz_C mol:na length:{len(hbb_msa[0])}  MISLABELLED\n{hbb_msa[0]}\n")
    features, hits = TemplateSearcher(fasta, MMCIF, "2020-01-01").search(hbb_msa[0], hbb_msa)
    assert not any(h["name"].startswith("9xyz") for h in hits)
    assert list(features["template_domain_names"]) == [b"2hhb_B", b"2hhb_A", b"2gtl_A", b"2gtl_C"]
    # E-values scale with the number of records searched: 26 instead of 24.
    _, alone = searcher.search(hbb_msa[0], hbb_msa)
    assert hits[0]["name"] == alone[0]["name"] == "2hhb_B"
    assert hits[0]["e_value"] / alone[0]["e_value"] == pytest.approx(26 / 24, rel=1e-4)
