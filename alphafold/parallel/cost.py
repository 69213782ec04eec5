"""Analytic memory and communication model of the axially sharded trunk (pure functions).

Used by the driver to route a target to one device or a gang of P, and by the benchmark to compare measured
traffic with what the sharding scheme should send. All counts are per rank, for P ranks sharing one target:
the pair representation z [N_res, N_res, c_z] split by rows (R = ceil(N_res / P) rows per rank), the MSA
m [N_seq, N_res, c_m] split by sequences or by residues, the extra MSA likewise.

The memory model is the process's own footprint (``base_bytes``: interpreter, torch, communication
library), the weights, the resident data (z, m, extra MSA shards, and the input features of every recycle
slice, held both as given and as tensors) plus the largest transient of any one operation (attention
logits, gathered biases, triangle-multiplication projections, the extra MSA's outer product mean, all-to-all
buffers). The structure module runs on every rank with its attention split by query rows, and only after
the last pass does rank 0 assemble the outputs (the pair and the head logits). It is an estimate of the
process's peak, checked against measurement in ``benchmarks/parallel_memory.py`` (one block) and
``benchmarks/parallel_full_memory.py`` (the whole network).
"""

from __future__ import annotations

import dataclasses

from alphafold.model.config import BASE, ModelConfig


@dataclasses.dataclass(frozen=True)
class TargetShape:
    """The sizes of one target that drive memory.

    Attributes:
      n_res: N_res, residues.
      n_seq: N_seq, clustered MSA rows the Evoformer sees (512 for model_1_ptm: 508 clusters + 4 template
        torsion rows).
      n_extra: N_extra_seq, extra-MSA rows (5120 in DeepMind's config; fewer when the MSA is shallower).
      n_templ: templates embedded by the template pair stack.
      n_slices: recycle slices the features carry (num_recycle + 1; process-features makes 4).
    """

    n_res: int
    n_seq: int = 512
    n_extra: int = 5120
    n_templ: int = 4
    n_slices: int = 4

    def __post_init__(self):
        if self.n_res < 1 or self.n_seq < 1 or self.n_extra < 0 or self.n_templ < 0 or self.n_slices < 1:
            raise ValueError(f"invalid target shape {self}")


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one rank needs: process base + weights + resident data + the largest single transient."""

    weights: int
    resident: int
    transients: dict[str, int]
    base: int = 0

    @property
    def peak_transient(self) -> tuple[str, int]:
        name = max(self.transients, key=self.transients.get)
        return name, self.transients[name]

    @property
    def peak(self) -> int:
        return self.base + self.weights + self.resident + self.peak_transient[1]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def rank_memory(shape: TargetShape, p: int, config: ModelConfig = BASE, chunk_size: int | None = None,
                weights_bytes: int = 0, dtype_bytes: int = 4, base_bytes: int = 0) -> MemoryEstimate:
    """Estimated per-rank memory of running the sharded network on ``shape`` with ``p`` ranks.

    ``chunk_size`` bounds the rows (of z or m) handled at once by attention, transitions and the outer
    product mean; None is unchunked. The estimate counts the worst rank (the one holding ceil(n / p)).
    ``base_bytes`` is the process's footprint before any model or data (on CPU here: 0.24 GiB).
    """
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    ev, ex, tp = config.evoformer, config.extra_msa, config.template
    n, s, e = shape.n_res, shape.n_seq, shape.n_extra
    r, s_r, e_r = _ceil_div(n, p), _ceil_div(s, p), _ceil_div(e, p)

    def rows(k: int) -> int:
        return k if chunk_size is None else min(chunk_size, k)

    c_z, c_m, c_o, c_tm = ev.c_z, ev.c_m, ev.c_hidden_outer, ev.c_hidden_tri_mul
    resident = r * n * c_z + s_r * n * c_m + e_r * n * ex.c_e
    # The input features of every recycle slice, as given (numpy) and as tensors, on every rank: per
    # (sequence, residue) 49 msa_feat channels + the mask, per extra (row, residue) extra_msa (int32 as
    # given, int64 as a tensor) + 3 float channels; 4-byte units.
    inputs = shape.n_slices * n * (2 * (config.msa_feat_dim + 1) * s + 9 * e)
    comm_factor = 0 if p == 1 else 1  # collectives and their buffers vanish at P = 1
    # Every update holds two copies of its operand shard besides the operand (its layer-normed input and
    # the update itself), plus the intermediates of one chunk of rows.
    t = {}
    # Triangle attention (Alg. 13/14): bias [H, N, N] (gathered), q/k/v/gate/out of a chunk, logits and
    # softmax [H, rows, N, N].
    t["triangle_attention"] = (2 * r * n * c_z + n * n * ev.num_heads_pair + 5 * rows(r) * n * c_z
                               + 2 * ev.num_heads_pair * rows(r) * n * n)
    # Triangle multiplication (Alg. 11/12): normed input, left/right projections and gates, x, its norm,
    # the output and its gate, one streamed partner piece.
    t["triangle_multiplication"] = 6 * r * n * c_tm + 3 * r * n * c_z
    # All-to-all of z between row and column sharding: send and receive buffers.
    t["pair_reshard"] = comm_factor * 2 * r * n * c_z
    t["pair_transition"] = 2 * r * n * c_z + rows(r) * n * (ev.transition_factor + 1) * c_z
    # MSA row attention with pair bias (Alg. 7), sequence-sharded.
    t["msa_row_attention"] = (2 * s_r * n * c_m + n * n * ev.num_heads_msa + 5 * rows(s_r) * n * c_m
                              + 2 * ev.num_heads_msa * rows(s_r) * n * n)
    # MSA column attention (Alg. 8), residue-sharded (the residue shard of m is S x R).
    t["msa_column_attention"] = (2 * s * r * c_m + 5 * s * rows(r) * c_m
                                 + 2 * ev.num_heads_msa * rows(r) * s * s)
    t["msa_reshard"] = comm_factor * 2 * s_r * n * c_m
    t["msa_transition"] = 2 * s * r * c_m + rows(r) * s * (ev.transition_factor + 1) * c_m
    # Outer product mean (Alg. 10): normed m, local a and b [S, R, c], gathered b [S, N, c], the outer
    # products of a chunk of rows and their projection, the update [R, N, c_z].
    t["outer_product_mean"] = (s * r * (c_m + 2 * c_o) + s * n * c_o + rows(r) * n * (c_o * c_o + c_z)
                               + r * n * c_z)
    # Extra-MSA stack (Alg. 18): row attention with pair bias on sequence shards, global column attention.
    t["extra_msa_row_attention"] = (2 * e_r * n * ex.c_e + n * n * ex.num_heads_row
                                    + 5 * rows(e_r) * n * ex.c_e + 2 * ex.num_heads_row * rows(e_r) * n * n)
    t["extra_msa_column_attention"] = 2 * e * r * ex.c_e + 3 * e * rows(r) * ex.c_e
    # Its outer product mean (Alg. 10 on the extra MSA, the largest transient of a deep MSA): the residue
    # shard [E, R, c_e] beside the caller's sequence shard, its layer norm, a and b [E, R, c_o], b of every
    # residue gathered [E, N, c_o] with its receive buffers, one chunk of outer products, the update.
    t["extra_msa_outer_product_mean"] = (e * r * ((1 + comm_factor) * ex.c_e + 2 * c_o)
                                         + 2 * comm_factor * e * n * c_o
                                         + rows(r) * n * (c_o * c_o + c_z) + r * n * c_z)
    t["extra_msa_reshard"] = comm_factor * (2 * e_r * n * ex.c_e + e * r * ex.c_e)
    if tp.enabled and shape.n_templ:
        # Template pair stack (Alg. 16), one template at a time: its pair tensor and triangle attention.
        t["template_pair_stack"] = (3 * r * n * tp.c_t + n * n * tp.num_heads_tri
                                    + 2 * tp.num_heads_tri * rows(r) * n * n + 5 * rows(r) * n * tp.c_t)
        # Alg. 17 pointwise attention: the T stacks' outputs [R, N, c_t] each, stacked into one copy, and
        # the update [R, N, c_z].
        t["template_pointwise_attention"] = 2 * shape.n_templ * r * n * tp.c_t + r * n * c_z
    # Structure module on every rank (row-sharded IPA): the layer-normed copy of its z rows, and IPA's
    # logits, bias, softmax and point-distance temporaries, ~10 x [H, R, N] (benchmarks/structure_module.py
    # measures the whole-pair case).
    t["structure_module"] = r * n * c_z + 10 * config.structure_module.num_heads * r * n
    # Rank 0 assembles the outputs: z [N, N, c_z] (with its gathered pieces when sharded), the distogram and
    # PAE logits [N, N, 64] each, the masked-MSA logits [S, N, 23]. Sharded, only after the last pass; on
    # one device (P = 1) after every pass, and the single-device predictor keeps a pass's outputs while the
    # next pass runs (they are replaced only when it returns).
    h = config.heads
    outputs = n * n * (c_z + h.distogram_num_bins + h.pae_num_bins) + s * n * h.masked_msa_num_output
    t["heads_rank0"] = outputs + comm_factor * n * n * c_z
    held = outputs if p == 1 and shape.n_slices > 1 else 0
    return MemoryEstimate(
        weights=weights_bytes,
        resident=(resident + held) * dtype_bytes + inputs * 4,
        transients={k: max(v, 0) * dtype_bytes for k, v in t.items()},
        base=base_bytes,
    )


def evoformer_block_bytes_sent(shape: TargetShape, p: int, config: ModelConfig = BASE,
                               dtype_bytes: int = 4) -> dict[str, int]:
    """Bytes rank 0 (holding the most rows and sequences) sends in one sharded Evoformer block.

    Counts what this package issues: an all_gather sends the rank's padded piece to each of the P - 1 others;
    an all-to-all sends everything but the part the rank keeps; a broadcast of the rank's own piece sends it
    to the P - 1 others. Zero at P = 1.
    """
    if p == 1:
        return {}
    ev = config.evoformer
    n, s = shape.n_res, shape.n_seq
    r, s_r = _ceil_div(n, p), _ceil_div(s, p)
    sent = {
        # 4 reshards of z per block: row->col before the incoming triangle ops, back after, twice.
        # Rank 0 holds R rows and keeps its own R columns of them.
        "pair_reshard": 4 * r * (n - r) * ev.c_z,
        # triangle multiplication outgoing + incoming: own partner-projection piece to P - 1 ranks.
        "triangle_multiplication_stream": 2 * (p - 1) * r * n * ev.c_hidden_tri_mul,
        # triangle attention start + end: own bias piece [R, N, H] to P - 1 ranks.
        "triangle_attention_bias": 2 * (p - 1) * r * n * ev.num_heads_pair,
        # MSA row attention pair bias [R, N, H_m].
        "msa_row_attention_bias": (p - 1) * r * n * ev.num_heads_msa,
        # MSA sequence -> residue sharding and back.
        "msa_reshard": (s_r * (n - r) + r * (s - s_r)) * ev.c_m,
        # outer product mean: own b piece [S, R, c_o] to P - 1 ranks.
        "outer_product_mean_gather": (p - 1) * s * r * ev.c_hidden_outer,
    }
    return {k: v * dtype_bytes for k, v in sent.items()}
