"""The sharded trunk: embeddings, template and extra-MSA stacks, and the Evoformer on P ranks.

Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 5-18, run with the weights of the model's
:class:`~alphafold.model.embeddings.EmbeddingsAndEvoformer` and the same order of operations, but with each
rank holding only its rows of the pair representation z (and of each template's pair representation), its
sequences of the MSA and of the extra MSA:

* the input embedding (Alg. 3) and relpos (Alg. 4) are computed for the local rows only;
* recycling (Alg. 32): the previous pair representation is kept as row shards between recycles; the
  previous structure's distogram (15 channels) is computed whole and its rows taken;
* templates (Alg. 16, 17): each template's pair features are built, its rows embedded, the template pair
  stack run sharded; the pointwise attention is per pair (i, j) and runs on the local rows;
* extra-MSA stack (Alg. 18) and Evoformer (Alg. 6): :func:`alphafold.parallel.evoformer.evoformer_block`.

At the end every rank keeps its shards: its rows of z (for the structure module's row-sharded attention and
the next recycle) and its sequences of m; only the first MSA row and the single representation ([N, c_m],
[N, c_s]) are broadcast from rank 0, which holds sequence 0. :func:`assemble` gathers the whole MSA and pair
representations on rank 0 when an output needs them (after the last recycle).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from alphafold.model.attention import mask_to_bias
from alphafold.model.embeddings import EmbeddingsAndEvoformer
from alphafold.model.template import TemplateEmbedding, dgram_from_positions, present_templates, pseudo_beta
from alphafold.model.torsion_features import template_torsion_features
from alphafold.parallel import comm
from alphafold.parallel.evoformer import evoformer_block, template_pair_block
from alphafold.parallel.group import ShardGroup


def sharded_trunk(
    module: EmbeddingsAndEvoformer, batch: Mapping[str, torch.Tensor], group: ShardGroup,
    chunk_size: int | None = None, prev_pair_rows: torch.Tensor | None = None,
) -> dict[str, torch.Tensor | None]:
    """Alg. 2 lines 5-18 on shards. Same inputs as ``EmbeddingsAndEvoformer.forward``, except that the
    recycled pair may be given as this rank's rows (``prev_pair_rows`` [R, N, c_z]) instead of whole.

    Returns on every rank: ``pair_rows`` [R, N, c_z] this rank's rows of z; ``msa_rows`` [S_r, N, c_m]
    this rank's sequences of m (the template torsion rows included: S_total = ``num_msa_rows``, of which the
    first ``num_seq`` are the MSA's); ``msa_first_row`` [N, c_m] and ``single`` [N, c_s], identical on every
    rank. :func:`assemble` turns this into the forward's outputs (``msa``, ``msa_first_row``, ``pair``,
    ``single``) on rank 0.
    """
    c = module.config
    dtype = module.preprocess_1d.weights.dtype
    target_feat = batch["target_feat"].to(dtype)
    msa_feat = batch["msa_feat"].to(dtype)
    num_seq, n = msa_feat.shape[:2]
    r0, r1 = comm.local_range(n, group)
    seq_mask = batch["seq_mask"].to(dtype)
    pair_mask = seq_mask[:, None] * seq_mask[None, :]

    # Alg. 3 "InputEmbedder" on the local rows: z_ij = a_i + b_j; [R, N, c_z]
    z = module.left_single(target_feat[r0:r1])[:, None, :] + module.right_single(target_feat)[None, :, :]
    # Alg. 32 "RecyclingEmbedder" (summed in the model's order)
    z_update = torch.zeros((), dtype=dtype)
    m1_update = None
    if c.recycle_pos:
        x = pseudo_beta(batch["aatype"], batch["prev_pos"].float())
        # [N, N, 15]: narrow; its local rows are embedded
        d = dgram_from_positions(x, c.prev_pos_num_bins, c.prev_pos_min_bin, c.prev_pos_max_bin)
        z_update = z_update + module.prev_pos_linear(d[r0:r1].to(dtype))
        del d
    if c.recycle_features:
        m1_update = module.prev_msa_first_row_norm(batch["prev_msa_first_row"].to(dtype))
        if prev_pair_rows is None:
            prev_pair_rows = comm.shard(batch["prev_pair"], 0, group)
        z_update = z_update + module.prev_pair_norm(prev_pair_rows.to(dtype))
    z += z_update
    del z_update
    # Alg. 4 "relpos" for the local rows
    z += module.relpos(batch["residue_index"], batch["residue_index"][r0:r1])

    # Alg. 2 lines 9-13: templates
    if c.template.enabled:
        template_batch = {k: v for k, v in batch.items() if k.startswith("template_")}
        z += _template_update(module.template_embedding, z, template_batch, pair_mask, group, chunk_size)

    # Alg. 2 lines 14-16: extra MSA, sequence-sharded
    extra_mask = batch["extra_msa_mask"].to(dtype)
    e0, e1 = comm.local_range(extra_mask.shape[0], group)
    extra_feat = torch.cat([
        F.one_hot(batch["extra_msa"][e0:e1].long(), 23).to(dtype),
        batch["extra_has_deletion"][e0:e1].to(dtype).unsqueeze(-1),
        batch["extra_deletion_value"][e0:e1].to(dtype).unsqueeze(-1),
    ], dim=-1)
    e = module.extra_msa_activations(extra_feat)
    del extra_feat
    for block in module.extra_msa_stack:
        e, z = evoformer_block(block, e, z, extra_mask, pair_mask, group, chunk_size)
    del e

    # Alg. 2 lines 5, 7-8: the MSA, with the template torsion rows appended, sequence-sharded
    msa_mask = batch["msa_mask"].to(dtype)
    torsion_rows = None
    if c.template.enabled and c.template.embed_torsion_angles:
        feats, row_mask = template_torsion_features(
            batch["template_aatype"], batch["template_all_atom_positions"].float(),
            batch["template_all_atom_masks"].float(),
        )
        torsion_rows = module.template_projection(
            torch.relu(module.template_single_embedding(feats.to(dtype))))
        msa_mask = torch.cat([msa_mask, row_mask.to(dtype)], dim=0)
    s0, s1 = comm.local_range(msa_mask.shape[0], group)
    parts = []
    if s0 < num_seq:
        # [S_local, N, c_m]
        parts.append(module.preprocess_msa(msa_feat[s0:min(s1, num_seq)])
                     + module.preprocess_1d(target_feat).unsqueeze(0))
    if torsion_rows is not None and s1 > num_seq:
        parts.append(torsion_rows[max(s0 - num_seq, 0):s1 - num_seq])
    m = torch.cat(parts, dim=0) if parts else msa_feat.new_zeros(0, n, c.evoformer.c_m)
    if m1_update is not None and s0 == 0 and s1 > 0:
        m[0] += m1_update

    # Alg. 2 lines 17-18: the Evoformer
    for block in module.evoformer_iteration:
        m, z = evoformer_block(block, m, z, msa_mask, pair_mask, group, chunk_size)

    # sequence 0 lives on rank 0 (the first piece of a split is never empty); [N, c_m]
    first_row = m[0].clone() if group.rank == 0 else m.new_empty(n, c.evoformer.c_m)
    comm.broadcast_from(first_row, group)
    return {"pair_rows": z, "msa_rows": m, "msa_first_row": first_row,
            "single": module.single_activations(first_row),
            "num_seq": num_seq, "num_msa_rows": msa_mask.shape[0]}


def assemble(trunk: Mapping, group: ShardGroup, msa: bool = True) -> dict[str, torch.Tensor] | None:
    """The forward's outputs of :class:`EmbeddingsAndEvoformer` on rank 0 (None elsewhere), from the shards
    :func:`sharded_trunk` returned: ``pair`` [N, N, c_z] and (``msa=True``) ``msa`` [num_seq, N, c_m] are
    gathered (the two large tensors: call it only when they are needed whole), ``msa_first_row`` and
    ``single`` taken as they are.
    """
    z = trunk["pair_rows"]
    m_all = comm.gather_to(trunk["msa_rows"], 0, trunk["num_msa_rows"], group) if msa else None
    z_all = comm.gather_to(z, 0, z.shape[1], group)
    if group.rank != 0:
        return None
    out = {"msa_first_row": trunk["msa_first_row"], "pair": z_all, "single": trunk["single"]}
    if msa:
        out["msa"] = m_all[:trunk["num_seq"]]
    return out


def _template_update(
    module: TemplateEmbedding, z: torch.Tensor, batch: Mapping[str, torch.Tensor], pair_mask: torch.Tensor,
    group: ShardGroup, chunk_size: int | None,
) -> torch.Tensor:
    """Alg. 2 lines 9-13 for the local rows z [R, N, c_z]: template pair stacks, pointwise attention."""
    embed = module.single_template_embedding
    template_mask = batch["template_mask"].to(z.dtype)
    # the same slots on every rank (the mask is replicated), so every rank joins the same collectives
    present = present_templates(template_mask)
    if not present:
        # no template slot, or none present (e.g. --max-templates 0): no update, as in the model
        return torch.zeros_like(z)
    r0, r1 = comm.local_range(pair_mask.shape[0], group)
    # DeepMind's mask bias per template; [T]
    bias = mask_to_bias(template_mask)
    state = None
    for i in present:
        # [R, N, 88] -> [R, N, c_t]: the template's pair features and representation, local rows only
        t = embed.embedding2d(embed.pair_features(
            batch["template_aatype"][i], batch["template_all_atom_positions"][i].to(z.dtype),
            batch["template_all_atom_masks"][i].to(z.dtype), batch["template_pseudo_beta"][i].float(),
            batch["template_pseudo_beta_mask"][i].to(z.dtype), slice(r0, r1),
        ))
        for block in embed.template_pair_stack:
            t = template_pair_block(block, t, pair_mask, group, chunk_size)
        # Alg. 17 accumulated one template at a time on the local rows, as the single-device model does
        state = module.accumulate(z, embed.output_layer_norm(t), bias[i], state, chunk_size)
        del t
    return module.attention_output(state, chunk_size)
