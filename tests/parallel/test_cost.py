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
    shape = TargetShape(17, n_seq=19, n_extra=14, n_slices=1)
    est = rank_memory(shape, 3, weights_bytes=1000, base_bytes=300)
    ev, ex = BASE.evoformer, BASE.extra_msa
    # worst rank: ceil(17/3)=6 pair rows, ceil(19/3)=7 MSA rows, ceil(14/3)=5 extra rows, float32; the
    # input features of the one slice: per (sequence, residue) msa_feat (49) + mask, as given and as a
    # tensor; per extra (row, residue) 9 four-byte units (int32 + int64 extra_msa, 3 float channels)
    shards = 4 * (6 * 17 * ev.c_z + 7 * 17 * ev.c_m + 5 * 17 * ex.c_e)
    inputs = 4 * 17 * (2 * 50 * 19 + 9 * 14)
    assert est.resident == shards + inputs
    assert est.peak == 300 + 1000 + est.resident + est.peak_transient[1]


def test_recycling_keeps_every_slices_inputs_and_on_one_device_the_previous_outputs():
    shape = dict(n_res=17, n_seq=19, n_extra=14)
    inputs_per_slice = 4 * 17 * (2 * 50 * 19 + 9 * 14)
    h = BASE.heads
    # the single-device predictor keeps z, the distogram and PAE logits [N, N, *] and the masked-MSA logits
    # [S, N, 23] of a pass while the next one runs
    held = 4 * (17 * 17 * (BASE.evoformer.c_z + h.distogram_num_bins + h.pae_num_bins)
                + 19 * 17 * h.masked_msa_num_output)
    one, four = (rank_memory(TargetShape(**shape, n_slices=k), 1) for k in (1, 4))
    assert four.resident - one.resident == held + 3 * inputs_per_slice
    # sharded, the outputs are assembled only after the last pass
    one, four = (rank_memory(TargetShape(**shape, n_slices=k), 3) for k in (1, 4))
    assert four.resident - one.resident == 3 * inputs_per_slice


def test_the_extra_msa_outer_product_mean_dominates_a_deep_msa_when_chunked():
    # measured in benchmarks/parallel_full_memory.py: the extra-MSA block sets the peak at L = 400
    est = rank_memory(TargetShape(400, n_slices=2), 2, chunk_size=4)
    assert est.peak_transient[0] == "extra_msa_outer_product_mean"
    # its gathered b [N_extra, N, c_o] does not shrink with P
    assert rank_memory(TargetShape(400), 3, chunk_size=4).transients["extra_msa_outer_product_mean"] >= (
        4 * 2 * 5120 * 400 * BASE.evoformer.c_hidden_outer)


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
