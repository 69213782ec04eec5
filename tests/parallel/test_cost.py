"""The analytic memory and communication model: its shape in N_res, P and chunking, and its bookkeeping."""

from __future__ import annotations

import pytest

from alphafold.model.config import BASE
from alphafold.parallel.cost import TargetShape, evoformer_block_bytes_sent, rank_memory


def test_memory_grows_with_length_and_shrinks_with_ranks():
    peaks = {(n, p): rank_memory(TargetShape(n), p).peak for n in (100, 400, 800) for p in (1, 2, 3)}
    for p in (1, 2, 3):
        assert peaks[(100, p)] < peaks[(400, p)] < peaks[(800, p)]
    for n in (400, 800):
        assert peaks[(n, 1)] > peaks[(n, 2)] > peaks[(n, 3)]


def test_unchunked_triangle_attention_is_cubic_and_dominates_long_targets_with_shallow_msas():
    small = rank_memory(TargetShape(400, n_seq=128, n_extra=256), 1)
    large = rank_memory(TargetShape(800, n_seq=128, n_extra=256), 1)
    assert large.peak_transient[0] == "triangle_attention"
    # 4 heads x 2 (logits + softmax) x N^3 floats dominate: doubling N multiplies it by ~8.
    ratio = large.transients["triangle_attention"] / small.transients["triangle_attention"]
    assert 7.0 < ratio < 8.0
    assert large.transients["triangle_attention"] >= 2 * 4 * 800**3 * 4


def test_unchunked_extra_msa_row_attention_dominates_deep_msas():
    assert rank_memory(TargetShape(800), 1).peak_transient[0] == "extra_msa_row_attention"


def test_chunking_bounds_the_attention_transient():
    full = rank_memory(TargetShape(800), 2)
    chunked = rank_memory(TargetShape(800), 2, chunk_size=16)
    assert chunked.transients["triangle_attention"] < full.transients["triangle_attention"] / 10
    assert chunked.resident == full.resident
    assert chunked.peak < full.peak


def test_weights_and_resident_shards_are_counted():
    shape = TargetShape(17, n_seq=19, n_extra=14)
    est = rank_memory(shape, 3, weights_bytes=1000)
    ev, ex = BASE.evoformer, BASE.extra_msa
    # worst rank: ceil(17/3)=6 pair rows, ceil(19/3)=7 MSA rows, ceil(14/3)=5 extra rows, float32
    assert est.resident == 4 * (6 * 17 * ev.c_z + 7 * 17 * ev.c_m + 5 * 17 * ex.c_e)
    assert est.peak == 1000 + est.resident + est.peak_transient[1]


def test_traffic_is_zero_on_one_rank_and_follows_the_scheme():
    shape = TargetShape(17, n_seq=19)
    assert evoformer_block_bytes_sent(shape, 1) == {}
    sent = evoformer_block_bytes_sent(shape, 2)
    ev = BASE.evoformer
    # rank 0 of 2: 9 of 17 pair rows, 10 of 19 sequences
    assert sent["pair_reshard"] == 4 * 4 * 9 * 8 * ev.c_z
    assert sent["msa_reshard"] == 4 * (10 * 8 + 9 * 9) * ev.c_m
    assert sent["triangle_attention_bias"] == 4 * 2 * 9 * 17 * ev.num_heads_pair


@pytest.mark.parametrize("bad", [dict(n_res=0), dict(n_res=5, n_seq=0), dict(n_res=5, n_extra=-1)])
def test_invalid_shapes_are_refused(bad):
    with pytest.raises(ValueError):
        TargetShape(**bad)
