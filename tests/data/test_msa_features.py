"""Raw features from real alignments equal DeepMind's numpy pipeline exactly (no JAX imported).

Expected arrays come from tests/data/make_expected_raw_features.py run in the reference venv; tolerance is
exact equality (integer and byte arrays).
"""

from __future__ import annotations

import numpy as np
import pytest

from alphafold.data import msa_features, parsers
from alphafold.errors import UserError
from tests.conftest import DATA

FILES = DATA / "files"


@pytest.fixture(scope="module")
def expected():
    with np.load(FILES / "expected_raw_features.npz", allow_pickle=False) as data:
        out: dict[str, dict[str, np.ndarray]] = {}
        for key in data.files:
            case, feature = key.split("/", 1)
            out.setdefault(case, {})[feature] = data[key]
    return out


def _msa(name: str) -> parsers.Msa:
    text = (FILES / name).read_text()
    return parsers.parse_a3m(text, name) if name.endswith(".a3m") else parsers.parse_stockholm(text, name)


UBI_MSAS = ["1UBI_A_jackhmmer.sto", "1UBI_A_mmseqs.a3m", "1UBI_A_jackhmmer.sto"]
CASES = {
    "pti_sto_nodedup": (["5PTI_A_jackhmmer.sto"], "5PTI_A", False),
    "pti_sto_dedup": (["5PTI_A_jackhmmer.sto"], "5PTI_A", True),
    "hhsuite_a3m_nodedup": (["hhsuite_query.a3m"], "FA69B_HUMAN", False),
    "ubi_merged_nodedup": (UBI_MSAS, "1UBI_A", False),
    "ubi_merged_dedup": (UBI_MSAS, "1UBI_A", True),
}


@pytest.mark.reference
@pytest.mark.parametrize("case", sorted(CASES))
def test_raw_features_equal_deepminds(case, expected):
    files, description, dedup = CASES[case]
    msas = [_msa(f) for f in files]
    ours = msa_features.make_sequence_features(msas[0].query, description)
    ours.update(msa_features.make_msa_features(msas, deduplicate=dedup))
    ref = expected[case]
    assert sorted(ours) == sorted(ref)
    for key, value in ref.items():
        assert ours[key].dtype.kind == value.dtype.kind, key
        assert ours[key].shape == value.shape, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_dedup_keeps_query_first_and_counts_rows(expected):
    msas = [_msa("1UBI_A_jackhmmer.sto"), _msa("1UBI_A_mmseqs.a3m")]
    merged = msa_features.merge_msas(msas)
    assert merged.sequences[0] == msas[0].query
    assert len(set(merged.sequences)) == len(merged)
    assert len(merged) < len(msas[0]) + len(msas[1])


def test_species_identifiers_from_uniprot_names():
    assert parsers.species_identifier("tr|B4K6Z6|B4K6Z6_DROMO/1699-1749") == "DROMO"
    assert parsers.species_identifier("sp|P69905|HBA_HUMAN some text") == "HUMAN"
    assert parsers.species_identifier("UniRef90_Q9H5Z4/4-78") == ""
    assert parsers.species_identifier("I3SQ41\t146\t0.960") == ""


def test_hhblits_ids_follow_af2_ambiguity_rules():
    ids = msa_features.encode_msa_rows(["ACDBZUOJX-"])
    assert ids.tolist() == [[0, 1, 2, 2, 3, 1, 20, 20, 20, 21]]
    with pytest.raises(UserError, match="unknown letter '1'"):
        msa_features.encode_msa_rows(["AC1"])


def test_query_aatype_maps_ambiguous_letters_to_x():
    feats = msa_features.make_sequence_features("ABZX", "q")
    assert feats["aatype"].argmax(-1).tolist() == [0, 20, 20, 20]
    assert feats["aatype"].shape == (4, 21)


def test_empty_templates_have_contract_shapes():
    feats = msa_features.make_sequence_features("MKV", "q")
    feats.update(msa_features.make_msa_features([msa_features.query_only_msa("MKV")]))
    feats.update(msa_features.empty_template_features(3))
    msa_features.check_raw_features(feats)
    assert feats["template_all_atom_positions"].shape == (0, 3, 37, 3)
    feats["msa"] = feats["msa"][:, :2]
    with pytest.raises(UserError, match="feature msa has shape"):
        msa_features.check_raw_features(feats)
