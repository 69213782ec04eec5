"""Input embedding, recycling embedding, template and extra-MSA embedding, and the Evoformer trunk
(Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 5-18, Alg. 3 "InputEmbedder", Alg. 4 "relpos",
Alg. 32 "RecyclingEmbedder", Alg. 18 "ExtraMsaStack", Alg. 6 "EvoformerStack").

This is haiku's ``evoformer`` module: its parameters sit directly on it (``preprocess_1d``,
``pair_activiations``, ...), so the embedders are methods of one class rather than nested modules.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from alphafold.model.config import ModelConfig
from alphafold.model.evoformer import BlockSizes, EvoformerIteration
from alphafold.model.primitives import LayerNorm, Linear
from alphafold.model.template import TemplateEmbedding, dgram_from_positions, pseudo_beta
from alphafold.model.torsion_features import template_torsion_features

TEMPLATE_TORSION_FEAT_DIM = 57  # aatype one-hot 22 + sin/cos 14 + alternative sin/cos 14 + mask 7


class EmbeddingsAndEvoformer(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 5-18: embeddings, extra-MSA stack, Evoformer."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        ev, ex, tp = config.evoformer, config.extra_msa, config.template
        c_m, c_z = ev.c_m, ev.c_z
        # Alg. 3 "InputEmbedder"
        self.preprocess_1d = Linear(config.target_feat_dim, c_m)
        self.preprocess_msa = Linear(config.msa_feat_dim, c_m)
        self.left_single = Linear(config.target_feat_dim, c_z)
        self.right_single = Linear(config.target_feat_dim, c_z)
        # Alg. 4 "relpos" (DeepMind's spelling of the name is part of the params file)
        self.pair_activiations = Linear(2 * config.max_relative_feature + 1, c_z)
        # Alg. 32 "RecyclingEmbedder"
        if config.recycle_pos:
            self.prev_pos_linear = Linear(config.prev_pos_num_bins, c_z)
        if config.recycle_features:
            self.prev_msa_first_row_norm = LayerNorm(c_m)
            self.prev_pair_norm = LayerNorm(c_z)
        # Alg. 2 lines 7-13: templates
        if tp.enabled:
            self.template_embedding = TemplateEmbedding(tp, c_z)
            if tp.embed_torsion_angles:
                self.template_single_embedding = Linear(TEMPLATE_TORSION_FEAT_DIM, c_m)
                self.template_projection = Linear(c_m, c_m)
        # Alg. 2 lines 14-16: extra MSA
        self.extra_msa_activations = Linear(config.extra_msa_feat_dim, ex.c_e)
        self.extra_msa_stack = nn.ModuleList(
            [EvoformerIteration(BlockSizes.extra(ev, ex), is_extra_msa=True) for _ in range(ex.num_blocks)]
        )
        # Alg. 2 lines 17-18: the Evoformer
        self.evoformer_iteration = nn.ModuleList(
            [EvoformerIteration(BlockSizes.main(ev), is_extra_msa=False) for _ in range(ev.num_blocks)]
        )
        self.single_activations = Linear(c_m, ev.c_s)

    def relpos(self, residue_index: torch.Tensor, query_index: torch.Tensor | None = None) -> torch.Tensor:
        """Jumper et al. (2021) Suppl. Alg. 4 "relpos": clipped relative positions, one-hot, linear.

        ``query_index`` (default ``residue_index``) gives the rows i of the result, so a slice of rows can
        be embedded on its own: [N_i] x [N] -> [N_i, N, c_z].
        """
        k = self.config.max_relative_feature
        query_index = residue_index if query_index is None else query_index
        offset = query_index[:, None].long() - residue_index[None, :].long()
        # [N_i, N, 2k+1]
        onehot = F.one_hot(torch.clamp(offset + k, 0, 2 * k), 2 * k + 1).to(
            self.pair_activiations.weights.dtype
        )
        return self.pair_activiations(onehot)

    def recycling(
        self,
        z: torch.Tensor,
        aatype: torch.Tensor,
        prev_pos: torch.Tensor,
        prev_msa_first_row: torch.Tensor,
        prev_pair: torch.Tensor,
        chunk_size: int | None,
    ) -> torch.Tensor | None:
        """Jumper et al. (2021) Suppl. Alg. 32 "RecyclingEmbedder": adds the pair update to ``z`` in place
        (row chunk by row chunk, so that no whole-pair temporary exists besides the [N, N, 15] distogram);
        returns the update to m_1 (or None)."""
        c = self.config
        dtype = z.dtype
        d = None
        if c.recycle_pos:
            x = pseudo_beta(aatype, prev_pos.float())
            d = dgram_from_positions(x, c.prev_pos_num_bins, c.prev_pos_min_bin, c.prev_pos_max_bin)
        n = z.shape[0]
        step = n if chunk_size is None else chunk_size
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            if d is not None:
                z[rows] += self.prev_pos_linear(d[rows].to(dtype))
            if c.recycle_features:
                z[rows] += self.prev_pair_norm(prev_pair[rows].to(dtype))
        if c.recycle_features:
            return self.prev_msa_first_row_norm(prev_msa_first_row.to(dtype))
        return None

    def forward(
        self, batch: Mapping[str, torch.Tensor], chunk_size: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Args:
            batch: one recycle's features (no recycle axis): ``target_feat`` [N, 22], ``msa_feat``
                [S, N, 49], ``msa_mask`` [S, N], ``seq_mask`` [N], ``aatype`` [N], ``residue_index`` [N],
                ``extra_msa`` [E, N], ``extra_msa_mask``, ``extra_has_deletion``, ``extra_deletion_value``
                [E, N], the template features if enabled, and the recycled ``prev_pos`` [N, 37, 3],
                ``prev_msa_first_row`` [N, c_m], ``prev_pair`` [N, N, c_z].

        Returns:
            ``msa`` [S, N, c_m], ``msa_first_row`` [N, c_m], ``pair`` [N, N, c_z], ``single`` [N, c_s].
        """
        c = self.config
        dtype = self.preprocess_1d.weights.dtype
        target_feat = batch["target_feat"].to(dtype)
        msa_feat = batch["msa_feat"].to(dtype)
        num_seq = msa_feat.shape[0]

        # Alg. 3 "InputEmbedder": m_si = Linear(f_si^msa) + Linear(f_i^target); [S, N, c_m]
        m = self.preprocess_msa(msa_feat) + self.preprocess_1d(target_feat).unsqueeze(0)
        # z_ij = a_i + b_j; [N, N, c_z]
        z = self.left_single(target_feat)[:, None, :] + self.right_single(target_feat)[None, :, :]
        seq_mask = batch["seq_mask"].to(dtype)
        pair_mask = seq_mask[:, None] * seq_mask[None, :]

        # Alg. 2 line 6 / Alg. 32: recycled m_1, z and the pseudo-beta distogram of the previous structure
        m1_update = self.recycling(
            z, batch["aatype"], batch["prev_pos"], batch["prev_msa_first_row"], batch["prev_pair"], chunk_size
        )
        if m1_update is not None:
            m[0] += m1_update
        # Alg. 4 "relpos", by row chunks like the recycled terms
        residue_index = batch["residue_index"]
        step = z.shape[0] if chunk_size is None else chunk_size
        for start in range(0, z.shape[0], step):
            rows = slice(start, min(start + step, z.shape[0]))
            z[rows] += self.relpos(residue_index, residue_index[rows])

        # Alg. 2 lines 9-13: template pair embedding
        if c.template.enabled:
            template_batch = {k: v for k, v in batch.items() if k.startswith("template_")}
            z += self.template_embedding(z, template_batch, pair_mask, chunk_size)

        # Alg. 2 lines 14-16: extra-MSA embedding and stack
        extra_feat = torch.cat(
            [
                F.one_hot(batch["extra_msa"].long(), 23).to(dtype),
                batch["extra_has_deletion"].to(dtype).unsqueeze(-1),
                batch["extra_deletion_value"].to(dtype).unsqueeze(-1),
            ],
            dim=-1,
        )
        e = self.extra_msa_activations(extra_feat)
        del extra_feat
        extra_mask = batch["extra_msa_mask"].to(dtype)
        for block in self.extra_msa_stack:
            e, z = block(e, z, extra_mask, pair_mask, chunk_size)
        del e

        # Alg. 2 lines 7-8: template torsion-angle rows appended to the MSA
        msa_mask = batch["msa_mask"].to(dtype)
        if c.template.enabled and c.template.embed_torsion_angles:
            feats, row_mask = template_torsion_features(
                batch["template_aatype"],
                batch["template_all_atom_positions"].float(),
                batch["template_all_atom_masks"].float(),
            )
            rows = self.template_projection(torch.relu(self.template_single_embedding(feats.to(dtype))))
            m = torch.cat([m, rows], dim=0)
            msa_mask = torch.cat([msa_mask, row_mask.to(dtype)], dim=0)

        # Alg. 2 lines 17-18: Evoformer stack, then s_i = Linear(m_1i)
        for block in self.evoformer_iteration:
            m, z = block(m, z, msa_mask, pair_mask, chunk_size)
        s = self.single_activations(m[0])
        return {
            # the template rows are cropped away (the masked-MSA head reads only the real sequences)
            "msa": m[:num_seq],
            "msa_first_row": m[0],
            "pair": z,
            "single": s,
        }
