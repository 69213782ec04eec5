"""TensorFlow's stateful random ops (Philox-4x32-10) in numpy, to draw the same random samples as
DeepMind's feature pipeline for a given seed.

DeepMind's processing ran in TF graph mode: each random op gets (graph seed, op seed), where the op seed
counts the random ops in the order they were created, and draws from the Philox stream keyed by the graph
seed with the op seed in the upper half of the 128-bit counter. Ops re-run by `tf.map_fn` (one run per
recycle sample) skip ahead by the outputs they reserved per run. These functions reproduce the draws as
ColabFold's numpy backend of that pipeline (the reference we test against) makes them.

Salmon et al. (2011) "Parallel random numbers: as easy as 1, 2, 3" define Philox; TF's kernels are
`random_distributions.h` / `philox_random.h`.
"""

from __future__ import annotations

import numpy as np

_ROUND_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
_MAX_INT32 = 2**31 - 1
_UINT32 = 0xFFFFFFFF


def effective_seeds(graph_seed: int, op_seed: int) -> tuple[int, int]:
    """TF's `get_seed` in graph mode with a graph seed set: both reduced mod 2^31-1; (0, 0) is remapped
    so that an all-zero seed still gives a non-degenerate stream."""
    seeds = (graph_seed % _MAX_INT32, op_seed % _MAX_INT32)
    return (0, _MAX_INT32) if seeds == (0, 0) else seeds


def _mul_hi_lo(x: np.ndarray, multiplier: int) -> tuple[np.ndarray, np.ndarray]:
    product = x.astype(np.uint64) * np.uint64(multiplier)
    return (product & np.uint64(_UINT32)).astype(np.uint32), (product >> np.uint64(32)).astype(np.uint32)


def philox_words(graph_seed: int, op_seed: int, num_words: int, first_block: int = 0) -> np.ndarray:
    """`num_words` uint32 from blocks first_block, first_block+1, ... (4 words per block).

    Block b uses counter (b mod 2^32, b >> 32, op_seed lo, op_seed hi) and key (graph_seed lo, hi).
    """
    num_blocks = -(-num_words // 4)
    block = np.arange(num_blocks, dtype=np.uint64) + np.uint64(first_block)
    c = [(block & np.uint64(_UINT32)).astype(np.uint32), (block >> np.uint64(32)).astype(np.uint32),
         np.full(num_blocks, op_seed & _UINT32, np.uint32), np.full(num_blocks, (op_seed >> 32) & _UINT32,
                                                                    np.uint32)]
    k0, k1 = np.uint32(graph_seed & _UINT32), np.uint32((graph_seed >> 32) & _UINT32)
    with np.errstate(over="ignore"):
        for round_ in range(10):
            lo0, hi0 = _mul_hi_lo(c[0], _ROUND_MULTIPLIERS[0])
            lo1, hi1 = _mul_hi_lo(c[2], _ROUND_MULTIPLIERS[1])
            c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
            if round_ < 9:
                k0 = np.uint32(k0 + np.uint32(_KEY_INCREMENTS[0]))
                k1 = np.uint32(k1 + np.uint32(_KEY_INCREMENTS[1]))
    return np.stack(c, axis=1).reshape(-1)[:num_words]


def uniform(seeds: tuple[int, int], shape: tuple[int, ...], run: int = 0) -> np.ndarray:
    """`tf.random.uniform(shape)` float32 in [0, 1): 23 random mantissa bits of a float in [1, 2), minus 1.
    Each run reserves 256 blocks per output."""
    n = int(np.prod(shape))
    words = philox_words(*seeds, n, first_block=run * n * 256)
    floats = (np.uint32(0x3F800000) | (words & np.uint32(0x7FFFFF))).view(np.float32) - np.float32(1.0)
    return floats.reshape(shape)


def uniform_int32(seeds: tuple[int, int], shape: tuple[int, ...], low: int, high: int,
                  run: int = 0) -> np.ndarray:
    """`tf.random.uniform(shape, low, high, tf.int32)`: low + word mod (high - low), in uint32 arithmetic."""
    n = int(np.prod(shape))
    words = philox_words(*seeds, n, first_block=run * n * 256)
    with np.errstate(over="ignore"):
        span = np.uint32((high - low) & _UINT32)
        values = np.uint32(low & _UINT32) + words % span
    return values.astype(np.uint32).view(np.int32).reshape(shape)


def shuffle(seeds: tuple[int, int], values: np.ndarray, run: int = 0) -> np.ndarray:
    """`tf.random_shuffle` along axis 0: Fisher-Yates, step i swaps i with i + word_i mod (n - i)."""
    n = len(values)
    if n <= 1:
        return values.copy()
    words = philox_words(*seeds, n - 1, first_block=run * (-(-(n - 1) // 4)))
    offsets = (words.astype(np.int64) % (n - np.arange(n - 1))).tolist()
    order = list(range(n))
    for i, offset in enumerate(offsets):
        order[i], order[i + offset] = order[i + offset], order[i]
    return values[order]


def categorical(seeds: tuple[int, int], logits: np.ndarray, run: int = 0) -> np.ndarray:
    """`tf.random.categorical(logits, 1)` per row of [rows, classes]: the first class whose cumulative
    (unnormalised) probability exceeds u * total, u a double from two 32-bit words. Each run reserves
    8 · 256 blocks per row."""
    rows = logits.shape[0]
    words = philox_words(*seeds, 2 * rows, first_block=run * rows * 8 * 256)
    mantissa = ((words[0::2] & np.uint32(0xFFFFF)).astype(np.uint64) << np.uint64(32)) | words[1::2].astype(
        np.uint64)
    u = (mantissa | (np.uint64(1023) << np.uint64(52))).view(np.float64) - 1.0
    logits = logits.astype(np.float64)
    cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
    return np.argmax(cdf > (u * cdf[:, -1])[:, None], axis=1).astype(np.int32)
