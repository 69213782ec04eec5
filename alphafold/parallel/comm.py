"""Collectives for axially sharded tensors, each with an exact no-op path at P = 1.

A tensor of global length ``n`` along a sharded axis is split into P contiguous pieces whose sizes differ
by at most one (:func:`split_sizes`): rank r holds indices ``[offsets[r], offsets[r] + sizes[r])``. Nothing
assumes ``n`` divisible by P, and a rank may hold an empty piece when ``n < P``.

* :func:`shard` takes this rank's piece of a full tensor (local, no communication);
* :func:`gather` reassembles a sharded axis on every rank; gloo's all_gather needs equal sizes, so pieces
  are padded to the largest one first and trimmed after. Used only for narrow tensors (attention biases,
  the outer-product-mean projection), never for the pair representation itself;
* :func:`reshard` moves the split from one axis to another with one all_to_all (uneven splits): the pair
  representation goes row-sharded <-> column-sharded, the MSA sequence-sharded <-> residue-sharded;
* :func:`stream` hands every rank each rank's piece in turn (one broadcast per piece), so a consumer can
  use a remote tensor piece by piece instead of holding it whole (triangle multiplication's partner
  projection).

Each function takes the :class:`~alphafold.parallel.group.ShardGroup` explicitly and works on whatever
device its tensors live on (CPU with gloo, CUDA with NCCL).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist

from alphafold.parallel.group import ShardGroup


def split_sizes(n: int, p: int) -> list[int]:
    """Sizes of the P contiguous pieces of an axis of length ``n``: the first ``n % p`` get one extra."""
    if p < 1 or n < 0:
        raise ValueError(f"cannot split length {n} over {p} ranks")
    return [n // p + (1 if r < n % p else 0) for r in range(p)]


def split_offsets(n: int, p: int) -> list[int]:
    """Start index of each rank's piece (see :func:`split_sizes`)."""
    offsets, start = [], 0
    for size in split_sizes(n, p):
        offsets.append(start)
        start += size
    return offsets


def local_range(n: int, group: ShardGroup) -> tuple[int, int]:
    """``(start, stop)`` of this rank's piece of an axis of global length ``n``."""
    start = split_offsets(n, group.size)[group.rank]
    return start, start + split_sizes(n, group.size)[group.rank]


def shard(x: torch.Tensor, dim: int, group: ShardGroup) -> torch.Tensor:
    """This rank's piece of ``x`` along ``dim`` (a view; no communication)."""
    if group.size == 1:
        return x
    start, stop = local_range(x.shape[dim], group)
    return x.narrow(dim, start, stop - start)


def _checked_piece(x: torch.Tensor, dim: int, n: int, group: ShardGroup) -> tuple[int, list[int]]:
    """``dim`` made non-negative and every rank's piece size; refuses a piece that is not this rank's share
    (it would be padded and misplaced silently)."""
    dim = dim % x.dim()
    sizes = split_sizes(n, group.size)
    if x.shape[dim] != sizes[group.rank]:
        raise ValueError(f"rank {group.rank} holds {x.shape[dim]} of {n} along dim {dim}, "
                         f"expected {sizes[group.rank]}")
    return dim, sizes


def gather(x: torch.Tensor, dim: int, n: int, group: ShardGroup) -> torch.Tensor:
    """All ranks' pieces of a tensor sharded along ``dim`` (global length ``n``), concatenated, on every rank.

    Args:
      x: [..., sizes[rank], ...] this rank's piece.
      dim: the sharded axis.
      n: its global length.
    Returns:
      [..., n, ...] the full tensor, identical on every rank.
    """
    if group.size == 1:
        return x
    dim, sizes = _checked_piece(x, dim, n, group)
    padded = _pad_to(x, dim, max(sizes))
    pieces = [torch.empty_like(padded) for _ in range(group.size)]
    dist.all_gather(pieces, padded.contiguous(), group=group.group)
    return torch.cat([piece.narrow(dim, 0, size) for piece, size in zip(pieces, sizes)], dim=dim)


def gather_to(x: torch.Tensor, dim: int, n: int, group: ShardGroup, dst: int = 0) -> torch.Tensor | None:
    """Like :func:`gather`, but only rank ``dst`` receives the full tensor (others get None).

    For the final outputs (the assembled pair representation for the heads), which one rank needs.
    """
    if group.size == 1:
        return x
    dim, sizes = _checked_piece(x, dim, n, group)
    padded = _pad_to(x, dim, max(sizes))
    pieces = [torch.empty_like(padded) for _ in range(group.size)] if group.rank == dst else None
    dist.gather(padded.contiguous(), pieces, dst=group.global_rank(dst), group=group.group)
    if group.rank != dst:
        return None
    return torch.cat([piece.narrow(dim, 0, size) for piece, size in zip(pieces, sizes)], dim=dim)


def broadcast_from(x: torch.Tensor, group: ShardGroup, src: int = 0) -> torch.Tensor:
    """Rank ``src``'s ``x`` on every rank (in place; every rank passes a tensor of the same shape)."""
    if group.size > 1:
        dist.broadcast(x, src=group.global_rank(src), group=group.group)
    return x


def reshard(x: torch.Tensor, src_dim: int, dst_dim: int, group: ShardGroup, n_src: int | None = None
            ) -> torch.Tensor:
    """Move the split of a tensor from axis ``src_dim`` to axis ``dst_dim`` with one all-to-all.

    Args:
      x: this rank's piece, sharded along ``src_dim`` (the rank's share of its global length ``n_src``)
        and whole along ``dst_dim`` (length ``n_dst``).
      n_src: the global length of ``src_dim``; when None the ranks exchange their lengths first.
    Returns:
      this rank's piece of the same global tensor, whole along ``src_dim`` and sharded along ``dst_dim``.
      E.g. a row-sharded pair tensor [rows_r, N, C] becomes column-sharded [N, cols_r, C]
      (``src_dim=0, dst_dim=1``); the layout of the other axes is unchanged.
    """
    if group.size == 1:
        return x
    src_dim, dst_dim = src_dim % x.dim(), dst_dim % x.dim()
    if src_dim == dst_dim:
        raise ValueError("reshard needs two different axes")
    p, r = group.size, group.rank
    n_dst = x.shape[dst_dim]
    dst_sizes = split_sizes(n_dst, p)
    if n_src is None:
        # Every rank must know every rank's share of src_dim; exchange the lengths (p integers).
        src_sizes = _all_sizes(x.shape[src_dim], group, x.device)
    else:
        src_sizes = split_sizes(n_src, p)
        if x.shape[src_dim] != src_sizes[r]:
            raise ValueError(f"rank {r} holds {x.shape[src_dim]} of {n_src} along dim {src_dim}, "
                             f"expected {src_sizes[r]}")
    # Piece j goes to rank j: this rank's rows and rank j's columns, src axis moved to the front so that
    # received pieces concatenate along it; written straight into one send buffer (no extra copies).
    send = x.new_empty(x.numel())
    send_splits, offset = [], 0
    for piece in x.split(dst_sizes, dim=dst_dim):
        # [src_r, *rest with dst = dst_sizes[j]]
        moved = piece.movedim(src_dim, 0)
        send[offset:offset + moved.numel()].view(moved.shape).copy_(moved)
        send_splits.append(moved.numel())
        offset += moved.numel()
    rest = list(x.movedim(src_dim, 0).shape[1:])
    dst_in_rest = dst_dim - (1 if dst_dim > src_dim else 0)
    rest[dst_in_rest] = dst_sizes[r]
    rest_numel = 1
    for s in rest:
        rest_numel *= s
    recv_splits = [src_sizes[j] * rest_numel for j in range(p)]
    received = x.new_empty(sum(recv_splits))
    dist.all_to_all_single(
        received, send, output_split_sizes=recv_splits, input_split_sizes=send_splits, group=group.group,
    )
    del send
    # [n_src, *rest] -> move the src axis back into place
    out = received.reshape(sum(src_sizes), *rest)
    return out.movedim(0, src_dim)


def stream(x: torch.Tensor, dim: int, n: int, group: ShardGroup) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(offset, piece)`` for every rank's piece of a tensor sharded along ``dim``, one at a time.

    Each piece is broadcast from its owner when the consumer asks for it, so at most one remote piece is
    held at once. Every rank must consume the whole iterator (the broadcasts are collective).
    """
    if group.size == 1:
        yield 0, x
        return
    dim = dim % x.dim()
    sizes, offsets = split_sizes(n, group.size), split_offsets(n, group.size)
    for j in range(group.size):
        if j == group.rank:
            piece = x.contiguous()
        else:
            shape = list(x.shape)
            shape[dim] = sizes[j]
            piece = x.new_empty(shape)
        if piece.numel():
            dist.broadcast(piece, src=group.global_rank(j), group=group.group)
        yield offsets[j], piece


def all_reduce_sum(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """Sum of ``x`` over the group, on every rank (in place; returns ``x``)."""
    if group.size > 1:
        dist.all_reduce(x, op=dist.ReduceOp.SUM, group=group.group)
    return x


def _all_sizes(local: int, group: ShardGroup, device: torch.device) -> list[int]:
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(group.size)]
    dist.all_gather(sizes, torch.tensor([local], dtype=torch.int64, device=device), group=group.group)
    return [int(s.item()) for s in sizes]


def _pad_to(x: torch.Tensor, dim: int, width: int) -> torch.Tensor:
    """``x`` zero-padded at the end of ``dim`` to ``width`` (gloo's gathers need equal sizes)."""
    if x.shape[dim] >= width:
        return x
    pad_shape = list(x.shape)
    pad_shape[dim] = width - x.shape[dim]
    return torch.cat([x, x.new_zeros(pad_shape)], dim=dim)
