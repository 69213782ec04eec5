"""Triangle updates of a sharded pair representation, on the model's own modules and weights.

The pair tensor lives in one of two layouts on each rank of a :class:`~alphafold.parallel.group.ShardGroup`:

* rows: ``z[r0:r1, :, :]``, shape [R, N_res, c_z] (rank r holds rows ``local_range(N_res)``);
* cols: ``z[:, r0:r1, :]``, shape [N_res, R, c_z] (the same index range, along columns).

:func:`to_cols` / :func:`to_rows` change layout with one all-to-all. Each update below runs in the layout
where its sum or attention runs along the whole (unsharded) axis, and only narrow tensors cross ranks:

* triangle multiplication outgoing (Alg. 11), rows: x_ij = sum_k a_ik b_jk needs every row j of b, streamed
  one rank's piece at a time (:func:`alphafold.parallel.comm.stream`), so no rank ever holds all of b;
* triangle multiplication incoming (Alg. 12), cols: the same with the roles of rows and columns swapped;
* triangle attention starting node (Alg. 13), rows: each row attends along its own columns; the bias
  b_jk [H, N_res, N_res] (H = 4 channels) is gathered;
* triangle attention ending node (Alg. 14), cols: starting-node attention on z^T, whose rows are this rank's
  columns; its bias is gathered likewise;
* transitions (Alg. 15) are pointwise and run in either layout.

The functions return the *update* for the local shard, like the model's modules, and call only the modules'
public pieces (``projections``/``contract``/``output``, ``triangle_bias``/``attend``), so the math is the
model's own and the model code knows nothing of ranks.
"""

from __future__ import annotations

import torch

from alphafold.model.triangle import TriangleAttention, TriangleMultiplication
from alphafold.parallel import comm
from alphafold.parallel.group import ShardGroup


def to_cols(z_rows: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """[R, N, c] row shard -> [N, R, c] column shard (one all-to-all; identity at P = 1)."""
    return comm.reshard(z_rows, 0, 1, group, n_src=z_rows.shape[1])


def to_rows(z_cols: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """[N, R, c] column shard -> [R, N, c] row shard."""
    return comm.reshard(z_cols, 1, 0, group, n_src=z_cols.shape[0])


def local_rows(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """This rank's rows of a full [N, ...] tensor (masks are small and kept whole on every rank)."""
    return comm.shard(x, 0, group)


def local_cols(x: torch.Tensor, group: ShardGroup) -> torch.Tensor:
    """This rank's columns of a full [N, N, ...] tensor."""
    return comm.shard(x, 1, group)


def triangle_multiplication(
    module: TriangleMultiplication, z: torch.Tensor, pair_mask: torch.Tensor, group: ShardGroup
) -> torch.Tensor:
    """Update of Alg. 11 (outgoing; ``z`` row shard [R, N, c_z]) or Alg. 12 (incoming; column shard).

    Outgoing, rows i local: x_ij = sum_k left_ik right_jk, with right's rows j streamed from their owners.
    Incoming, columns j local: x_ij = sum_k left_kj right_ki, with right's columns i streamed.
    """
    n = pair_mask.shape[0]
    mask = local_rows(pair_mask, group) if module.outgoing else local_cols(pair_mask, group)
    z_ln = module.layer_norm_input(z)
    left, right = module.projections(z_ln, mask)
    # [R, N, c] (outgoing: rows i x all j) or [N, R, c] (incoming: all i x columns j)
    x = left.new_empty(z.shape[:2] + left.shape[-1:])
    if module.outgoing:
        for start, right_j in comm.stream(right, 0, n, group):  # right_j [n_j, N_k, c]
            x[:, start:start + right_j.shape[0]] = module.contract(left, right_j)
    else:
        for start, right_i in comm.stream(right, 1, n, group):  # right_i [N_k, n_i, c]
            x[start:start + right_i.shape[1]] = module.contract(left, right_i)
    del left, right
    return module.output(x, z_ln)


def triangle_attention(
    module: TriangleAttention, z: torch.Tensor, pair_mask: torch.Tensor, group: ShardGroup,
    chunk_size: int | None,
) -> torch.Tensor:
    """Update of Alg. 13 (starting node; ``z`` row shard) or Alg. 14 (ending node; column shard).

    The ending node is the starting node on z^T, whose rows are this rank's columns.
    """
    n = pair_mask.shape[0]
    if module.starting:
        z_t, mask_t = z, local_rows(pair_mask, group)
    else:
        # [R, N, c_z]: rows of z^T
        z_t, mask_t = z.transpose(0, 1), local_cols(pair_mask, group).transpose(0, 1)
    z_ln = module.query_norm(z_t)
    # Alg. 13 line 3 on the local rows, then gathered: [H, N, N] (the only pair-sized tensor that moves,
    # H = 4 channels against c_z = 128)
    b = comm.gather(module.triangle_bias(z_ln), 1, n, group)
    update = module.attend(z_ln, mask_t, b, chunk_size)
    return update if module.starting else update.transpose(0, 1)
