"""The structure module and the pair heads on a row-sharded pair representation.

Jumper et al. (2021) Suppl. Alg. 20 "StructureModule" reads the pair representation only through invariant
point attention (Alg. 22), where each query residue i attends over all j with its own row z_i: the
attention of the rows a rank holds needs no other rank's rows. So every rank runs the structure module
(the model's own :class:`~alphafold.model.structure_module.StructureModule`, same weights) on the whole single
representation, but each layer's IPA only for its query rows; the update [R, c_s] is all-gathered to
[N, c_s] (narrow) and the rest of the layer (transition, backbone update, torsions) runs identically on
every rank. No rank ever holds the whole pair, and its IPA logits are [H, R, N] instead of [H, N, N].

The heads that read z or m (Suppl. 1.9.7-1.9.9) run on the shards as well: the distogram's symmetrised
logits h_ij + h_ji from the row shard of h and its column shard (one all-to-all), the aligned-error logits
per row, the masked-MSA logits per sequence; only the logits (64, 64 and 23 channels against c_z = 128 and
c_m = 256) are gathered, to rank 0, once, for the final outputs.
"""

from __future__ import annotations

import torch

from alphafold.model.ipa import InvariantPointAttention
from alphafold.model.model import AlphaFold
from alphafold.model.rigid import Rigid
from alphafold.parallel import comm
from alphafold.parallel.group import ShardGroup
from alphafold.parallel.pair_ops import to_cols


def sharded_structure_module(
    model: AlphaFold, single: torch.Tensor, pair_rows: torch.Tensor, aatype: torch.Tensor,
    seq_mask: torch.Tensor, group: ShardGroup,
) -> dict[str, torch.Tensor]:
    """Alg. 20 from ``single`` [N, c_s] (whole) and this rank's rows of z ``pair_rows`` [R, N, c_z].

    Returns the structure module's outputs, the same on every rank.
    """
    n = single.shape[0]
    r0, _ = comm.local_range(n, group)

    def attention(ipa: InvariantPointAttention, s: torch.Tensor, z_rows: torch.Tensor, mask: torch.Tensor,
                  frames: Rigid) -> torch.Tensor:
        # Alg. 22 for query rows r0..r1, then every residue's update: [R, c_s] -> [N, c_s]
        return comm.gather(ipa(s, z_rows, mask, frames, query_start=r0), 0, n, group)

    return model.structure_module(single, pair_rows, aatype, seq_mask, attention=attention)


def sharded_large_logits(
    model: AlphaFold, pair_rows: torch.Tensor, msa_rows: torch.Tensor, num_msa_rows: int, num_seq: int,
    group: ShardGroup,
) -> dict[str, torch.Tensor] | None:
    """The logits of the heads that read z and m, computed on shards and gathered to rank 0.

    Args:
      pair_rows: [R, N, c_z] this rank's rows of z; msa_rows: [S_r, N, c_m] this rank's sequences of m
        (of ``num_msa_rows`` in all, the first ``num_seq`` the MSA's).
    Returns:
      on rank 0 ``distogram/logits`` [N, N, B_d], ``masked_msa/logits`` [num_seq, N, 23] and, for models
      with the aligned-error head, ``predicted_aligned_error/logits`` [N, N, B_e]; None on other ranks.
      Pass them to :meth:`AlphaFold.outputs`.
    """
    n = pair_rows.shape[1]
    with torch.autocast(device_type=pair_rows.device.type, enabled=False):
        z, m = pair_rows.float(), msa_rows.float()
        # distogram: l_ij = h_ij + h_ji; the rows i of h^T are the columns i of h, [R, N, B]
        half = model.distogram_head.half_logits(z)
        half_t = to_cols(half, group).transpose(0, 1)
        gathered = {"distogram/logits": comm.gather_to(half + half_t, 0, n, group)}
        del half, half_t
        pae_head = getattr(model, "predicted_aligned_error_head", None)
        if pae_head is not None:
            gathered["predicted_aligned_error/logits"] = comm.gather_to(pae_head.logits(z), 0, n, group)
        # [S_r, N, 23] -> [S_total, N, 23]; the template torsion rows dropped after gathering
        msa_logits = comm.gather_to(model.masked_msa_head(m), 0, num_msa_rows, group)
        gathered["masked_msa/logits"] = None if msa_logits is None else msa_logits[:num_seq]
    if group.rank != 0:
        return None
    return gathered

