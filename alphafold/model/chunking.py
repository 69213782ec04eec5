"""Chunked application of a module over a batch-like axis, and the choice of chunk size.

Attention logits, the outer product and transition hidden layers grow with (rows x N_res x ...). Applying
the module to a few rows at a time keeps the peak at one chunk's intermediates while the result is written
into one preallocated output. The chunk size is a runtime option (`RuntimeOptions.chunk_size`): an int, None
(one chunk) or "auto", resolved once per forward pass by :func:`resolve_chunk_size` from free memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import psutil
import torch

ChunkSize = int | None | Literal["auto"]

# "auto" lets the largest chunk intermediate take this fraction of the free memory: the rest holds the
# representations themselves, the weights and the allocator's slack.
AUTO_MEMORY_FRACTION = 0.25
# Below this many rows the overhead of Python-level chunking outweighs its saving.
MIN_AUTO_CHUNK = 4


def chunk_layer(
    fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor], chunk_size: int | None
) -> torch.Tensor:
    """Apply ``fn(*inputs)`` over chunks of the leading axis and assemble the result.

    Args:
        fn: maps tensors whose leading axis has n rows to one tensor whose leading axis has n rows; rows must
            be independent of each other.
        inputs: tensors sharing the leading axis; a tensor of size 1 there is broadcast to every chunk.
        chunk_size: rows per chunk; None (or >= the number of rows) runs ``fn`` once.

    Returns:
        The same tensor as ``fn(*inputs)``.
    """
    num_rows = max(x.shape[0] for x in inputs)
    if chunk_size is None or chunk_size >= num_rows:
        return fn(*inputs)
    out = None
    for start in range(0, num_rows, chunk_size):
        end = min(start + chunk_size, num_rows)
        part = fn(*(x if x.shape[0] == 1 else x[start:end] for x in inputs))
        if out is None:
            out = part.new_empty((num_rows, *part.shape[1:]))
        out[start:end] = part
    return out


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's own count on a GPU, the host's available memory otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def resolve_chunk_size(
    chunk_size: ChunkSize,
    num_res: int,
    num_seq: int,
    num_heads: int,
    device: torch.device,
    bytes_per_element: int,
    free_bytes: int | None = None,
) -> int | None:
    """Turn the runtime option into a concrete chunk size for one forward pass.

    "auto" bounds the largest per-row intermediate of the trunk: triangle-attention logits,
    num_heads x N_res x N_res per pair row, and MSA column-attention logits, num_heads x N_seq x N_seq per
    column. It returns None (no chunking) when every module's whole intermediate fits. ``free_bytes``
    replaces the device's free memory (a budget, see ``RuntimeOptions.memory_budget_gb``).
    """
    if chunk_size != "auto":
        return chunk_size
    # two logit-sized buffers live at once (logits and softmax weights)
    per_row = 2 * num_heads * max(num_res * num_res, num_seq * num_seq) * bytes_per_element
    free = free_memory_bytes(device) if free_bytes is None else free_bytes
    budget = AUTO_MEMORY_FRACTION * free
    rows = int(budget // max(per_row, 1))
    if rows >= max(num_res, num_seq):
        return None
    return max(MIN_AUTO_CHUNK, rows)
