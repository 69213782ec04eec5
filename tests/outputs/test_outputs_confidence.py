"""Confidence scores from logits, ranking as AF2 (and the issue) asks, and the AlphaFold DB JSON layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alphafold.outputs import confidence


def test_plddt_of_a_certain_bin_is_its_centre():
    logits = np.full((3, 50), -1e4)
    logits[0, 0] = logits[1, 24] = logits[2, 49] = 0.0
    np.testing.assert_allclose(confidence.plddt_from_logits(logits), [1.0, 49.0, 99.0], atol=1e-9)


def test_uniform_plddt_logits_give_fifty():
    np.testing.assert_allclose(confidence.plddt_from_logits(np.zeros((7, 50))), 50.0)


def test_pae_bins_end_with_the_catch_all_bin_at_31_75():
    num_res = 5
    logits = np.full((num_res, num_res, 64), -1e4)
    logits[..., 63] = 0.0
    pae, max_pae = confidence.pae_from_logits(logits, confidence.DEFAULT_PAE_BREAKS)
    assert max_pae == pytest.approx(31.75)
    np.testing.assert_allclose(pae, 31.75)
    logits = np.full((num_res, num_res, 64), -1e4)
    logits[..., 0] = 0.0
    pae, _ = confidence.pae_from_logits(logits, confidence.DEFAULT_PAE_BREAKS)
    np.testing.assert_allclose(pae, 0.25, rtol=1e-9)  # first centre: 0 + (31 / 62) / 2


def test_ptm_is_tm_score_of_the_expected_error():
    num_res = 40
    d0 = 1.24 * (num_res - 15) ** (1 / 3) - 1.8
    for bin_index in (0, 10, 63):
        logits = np.full((num_res, num_res, 64), -1e4)
        logits[..., bin_index] = 0.0
        centre = 0.25 + 0.5 * bin_index
        expected = 1 / (1 + (centre / d0) ** 2)
        assert confidence.ptm_from_logits(logits, confidence.DEFAULT_PAE_BREAKS) == pytest.approx(expected)


def test_ptm_clips_short_chains_to_19_residues():
    logits = np.zeros((12, 12, 64))
    logits[..., 4] = 50.0
    d0 = 1.24 * (19 - 15) ** (1 / 3) - 1.8
    assert confidence.ptm_from_logits(logits, confidence.DEFAULT_PAE_BREAKS) == pytest.approx(
        1 / (1 + (2.25 / d0) ** 2), rel=1e-6
    )


def test_ranking_by_ptm_when_every_model_has_one_else_by_plddt():
    ptm_models = {
        "model_1_ptm": {"mean_plddt": 90.0, "ptm": 0.5},
        "model_2_ptm": {"mean_plddt": 60.0, "ptm": 0.8},
    }
    ranking = confidence.rank_models(ptm_models)
    assert ranking == {
        "ptm": {"model_1_ptm": 0.5, "model_2_ptm": 0.8},
        "order": ["model_2_ptm", "model_1_ptm"],
    }
    mixed = {"model_1": {"mean_plddt": 70.0}, "model_2_ptm": {"mean_plddt": 80.0, "ptm": 0.1}}
    ranking = confidence.rank_models(mixed)
    assert ranking == {"plddts": {"model_1": 70.0, "model_2_ptm": 80.0}, "order": ["model_2_ptm", "model_1"]}


def test_ranking_ties_keep_run_order():
    ranking = confidence.rank_models({"b": {"mean_plddt": 50.0}, "a": {"mean_plddt": 50.0}})
    assert ranking["order"] == ["b", "a"]


def test_pae_json_is_alphafold_db_layout_rounded_to_one_decimal():
    pae = np.array([[0.04, 1.26], [12.349, 31.75]])
    data = json.loads(confidence.pae_json(pae, 31.75))
    assert data == [
        {"predicted_aligned_error": [[0.0, 1.3], [12.3, 31.8]], "max_predicted_aligned_error": 31.75}
    ]


def test_plddt_json_bands():
    data = json.loads(confidence.plddt_json(np.array([95.123, 75.0, 55.5, 10.0, 90.0, 70.0, 50.0])))
    assert data["residueNumber"] == [1, 2, 3, 4, 5, 6, 7]
    assert data["confidenceScore"][0] == 95.12
    assert data["confidenceCategory"] == ["H", "M", "L", "D", "H", "M", "L"]


def test_model_confidence_prefers_the_models_own_values():
    outputs = {
        "plddt": np.array([10.0, 30.0]),
        "predicted_lddt/logits": np.zeros((2, 50)),
        "ptm": np.array(0.42),
        "predicted_aligned_error": np.ones((2, 2)),
        "max_predicted_aligned_error": np.array(31.75),
    }
    conf = confidence.model_confidence(outputs)
    assert conf["mean_plddt"] == 20.0 and conf["ptm"] == 0.42 and conf["max_pae"] == 31.75
    computed = confidence.model_confidence(
        {"predicted_lddt/logits": np.zeros((2, 50)), "predicted_aligned_error/logits": np.zeros((2, 2, 64))}
    )
    assert computed["mean_plddt"] == pytest.approx(50.0) and 0 < computed["ptm"] < 1
    assert computed["pae"].shape == (2, 2)


def test_msa_identity_rows_and_depth():
    from alphafold.outputs.plots import GAP_ID, msa_identity_rows

    query = np.array([0, 1, 2, 3, 4, 5])
    msa = np.stack(
        [
            query,
            np.array([0, 1, 2, 9, GAP_ID, GAP_ID]),  # 3 of 4 aligned identical
            np.array([GAP_ID, 7, 7, 7, 7, 5]),  # 1 of 5
        ]
    )
    rows, depth = msa_identity_rows(msa)
    np.testing.assert_array_equal(depth, [2, 3, 3, 3, 2, 2])
    np.testing.assert_allclose(rows[:, 0], [1.0, 0.75, np.nan])
    np.testing.assert_allclose(rows[2, 1:], 0.2)
    deep = np.repeat(msa, 5000, axis=0)
    capped, deep_depth = msa_identity_rows(deep, max_rows=300)
    assert capped.shape == (300, 6) and deep_depth[1] == 15000
