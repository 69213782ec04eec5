"""Template embedding: the template pair stack and pointwise attention (Jumper et al. (2021) Suppl.
Alg. 2 lines 9-13, Alg. 16 "TemplatePairStack", Alg. 17 "TemplatePointwiseAttention").

The template torsion-angle rows appended to the MSA (Alg. 2 lines 7-8) live in
:mod:`alphafold.model.torsion_features` and are embedded by the root embedder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from alphafold.common import residue_constants as rc
from alphafold.model.attention import Attention, has_values, mask_to_bias
from alphafold.model.config import TemplateConfig
from alphafold.model.msa import Transition
from alphafold.model.primitives import LayerNorm, Linear
from alphafold.model.triangle import TriangleAttention, TriangleMultiplication

# dgram bins + pseudo-beta mask + two aatype one-hots (22 each) + unit vector (3) + backbone mask
TEMPLATE_PAIR_FEAT_DIM_EXTRA = 1 + 22 + 22 + 3 + 1


def dgram_from_positions(x: torch.Tensor, num_bins: int, min_bin: float, max_bin: float,
                         rows: slice = slice(None)) -> torch.Tensor:
    """One-hot distogram of pairwise distances ([N, 3] -> [R, N, num_bins] for the residues ``rows``, all N
    by default); the last bin is open-ended.

    Bins compare squared distances with squared edges, as DeepMind does (so edge cases bin identically).
    """
    lower = torch.linspace(min_bin, max_bin, num_bins, device=x.device, dtype=torch.float32) ** 2
    upper = torch.cat([lower[1:], lower.new_tensor([1e8])])
    x = x.float()
    # [R, N, 1]
    d2 = ((x[rows, None, :] - x[None, :, :]) ** 2).sum(-1, keepdim=True)
    return ((d2 > lower) & (d2 < upper)).float()


def pseudo_beta(aatype: torch.Tensor, atom37: torch.Tensor) -> torch.Tensor:
    """CB position, CA for glycine: [*, N, 37, 3] -> [*, N, 3]."""
    is_gly = (aatype == rc.restype_order["G"]).unsqueeze(-1)
    return torch.where(is_gly, atom37[..., rc.atom_order["CA"], :], atom37[..., rc.atom_order["CB"], :])


class TemplatePairBlock(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 16 "TemplatePairStack" lines 2-6 (one block)."""

    def __init__(self, c: TemplateConfig):
        super().__init__()
        self.triangle_attention_starting_node = TriangleAttention(c.c_t, c.num_heads_tri, starting=True)
        self.triangle_attention_ending_node = TriangleAttention(c.c_t, c.num_heads_tri, starting=False)
        self.triangle_multiplication_outgoing = TriangleMultiplication(
            c.c_t, c.c_hidden_tri_mul, outgoing=True
        )
        self.triangle_multiplication_incoming = TriangleMultiplication(
            c.c_t, c.c_hidden_tri_mul, outgoing=False
        )
        self.pair_transition = Transition(c.c_t, c.transition_factor)

    def forward(self, t: torch.Tensor, pair_mask: torch.Tensor, chunk_size: int | None) -> torch.Tensor:
        t += self.triangle_attention_starting_node(t, pair_mask, chunk_size)
        t += self.triangle_attention_ending_node(t, pair_mask, chunk_size)
        t += self.triangle_multiplication_outgoing(t, pair_mask, chunk_size)
        t += self.triangle_multiplication_incoming(t, pair_mask, chunk_size)
        t += self.pair_transition(t, chunk_size)
        return t


def present_templates(template_mask: torch.Tensor) -> list[int]:
    """The template slots whose pair stacks can change the update: those with a nonzero mask.

    DeepMind runs the pair stack of every slot (inputs are padded to 4). In Alg. 17 an absent slot's logit
    carries the -1e9 mask bias, so its weight exp(-1e9 - max) is exactly 0 in float32 next to any present
    slot, and with no present slot the update is zero: skipping absent slots gives the same result and
    saves their pair stacks (3 of the 4 stacks for a target with one template). Tensors without values
    (memory tracer) keep every slot.
    """
    present = template_mask != 0
    if not has_values(present):
        return list(range(template_mask.shape[0]))
    return [i for i, kept in enumerate(present.tolist()) if kept]


class SingleTemplateEmbedding(nn.Module):
    """Embeds one template's pair features and runs the template pair stack
    (Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 9 and 11, Alg. 16).
    """

    def __init__(self, c: TemplateConfig):
        super().__init__()
        self.config = c
        self.embedding2d = Linear(c.dgram_num_bins + TEMPLATE_PAIR_FEAT_DIM_EXTRA, c.c_t)
        self.template_pair_stack = nn.ModuleList([TemplatePairBlock(c) for _ in range(c.num_blocks)])
        self.output_layer_norm = LayerNorm(c.c_t)

    def pair_features(
        self,
        aatype: torch.Tensor,
        atom37: torch.Tensor,
        atom37_mask: torch.Tensor,
        pb: torch.Tensor,
        pb_mask: torch.Tensor,
        rows: slice = slice(None),
    ) -> torch.Tensor:
        """The 88 template pair features of Suppl. Table 1 for one template, rows i of ``rows`` (all N by
        default): [R, N, 88]. Each row needs only residue i's and every j's features, so a row block is
        exactly those rows of the whole.

        Args:
            aatype: [N] (0-21); atom37: [N, 37, 3]; atom37_mask: [N, 37]; pb: [N, 3] pseudo-beta positions
            (float32: the distogram bins them at full precision, as DeepMind does; bfloat16 positions are
            off by up to 0.5 Å, a good part of a 1.25 Å bin); pb_mask: [N].
        """
        c = self.config
        if c.use_template_unit_vector:
            raise NotImplementedError(
                "template unit vectors are a multimer feature; no monomer preset uses them"
            )
        n = aatype.shape[0]
        r = len(range(n)[rows])
        dtype = atom37.dtype
        dgram = dgram_from_positions(pb, c.dgram_num_bins, c.dgram_min_bin, c.dgram_max_bin, rows).to(dtype)
        pb_mask_2d = (pb_mask[rows, None] * pb_mask[None, :]).unsqueeze(-1)
        onehot = F.one_hot(aatype.long(), 22).to(dtype)
        # backbone frame present: N, CA and C all resolved
        backbone = (
            atom37_mask[:, rc.atom_order["N"]]
            * atom37_mask[:, rc.atom_order["CA"]]
            * atom37_mask[:, rc.atom_order["C"]]
        )
        backbone_2d = (backbone[rows, None] * backbone[None, :]).unsqueeze(-1)
        # [R, N, 88]: (distogram, pseudo-beta mask, aatype of j, aatype of i, unit vector, backbone mask)
        act = torch.cat(
            [
                dgram,
                pb_mask_2d,
                onehot[None, :, :].expand(r, n, 22),
                onehot[rows, None, :].expand(r, n, 22),
                atom37.new_zeros(r, n, 3),
                backbone_2d,
            ],
            dim=-1,
        )
        # masked in place: act is this call's own tensor
        return act.mul_(backbone_2d)

    def forward(
        self,
        aatype: torch.Tensor,
        atom37: torch.Tensor,
        atom37_mask: torch.Tensor,
        pb: torch.Tensor,
        pb_mask: torch.Tensor,
        pair_mask: torch.Tensor,
        chunk_size: int | None,
    ) -> torch.Tensor:
        """Returns the template pair representation t [N, N, c_t].

        With ``chunk_size`` the 88 pair features are made and embedded a block of rows at a time: the
        [N, N, 88] features (1.4x the size of t) never exist whole.
        """
        n = aatype.shape[0]
        step = n if chunk_size is None else max(1, chunk_size)
        t = None
        for start in range(0, n, step):
            rows = slice(start, min(start + step, n))
            # [R, N, c_t]
            part = self.embedding2d(self.pair_features(aatype, atom37, atom37_mask, pb, pb_mask, rows))
            if step >= n:
                t = part
                break
            if t is None:
                t = part.new_empty(n, n, part.shape[-1])
            t[rows] = part
            del part
        for block in self.template_pair_stack:
            t = block(t, pair_mask, chunk_size)
        return self.output_layer_norm(t)


class TemplateEmbedding(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 17 "TemplatePointwiseAttention" over per-template pair stacks
    (Alg. 2 lines 9-13). Returns the update to the pair representation.

    The softmax over the T templates is accumulated one template at a time (a running maximum, sum of
    weights and weighted values per pair and head), so only one template's pair representation is alive at
    once instead of all T of them plus their stacked copy. Same result up to float reassociation.
    """

    def __init__(self, c: TemplateConfig, c_z: int):
        super().__init__()
        self.single_template_embedding = SingleTemplateEmbedding(c)
        head_dim = c.c_hidden_pointwise // c.num_heads_pointwise
        self.attention = Attention(c_z, c.c_t, c.num_heads_pointwise, head_dim, head_dim, c_z, gating=False)

    def forward(
        self, z: torch.Tensor, batch: dict[str, torch.Tensor], pair_mask: torch.Tensor, chunk_size: int | None
    ) -> torch.Tensor:
        """Args:
        z: [N, N, c_z] pair representation (queries).
        batch: template features with a leading template axis T: ``template_aatype`` [T, N],
            ``template_all_atom_positions`` [T, N, 37, 3], ``template_all_atom_masks`` [T, N, 37],
            ``template_pseudo_beta`` [T, N, 3], ``template_pseudo_beta_mask`` [T, N],
            ``template_mask`` [T].
        pair_mask: [N, N] residue padding mask.
        """
        template_mask = batch["template_mask"].to(z.dtype)
        present = present_templates(template_mask)
        if not present:
            # no template slot (e.g. --max-templates 0) or none present: no update
            return torch.zeros_like(z)
        # DeepMind's mask bias per template; [T]
        bias = mask_to_bias(template_mask)
        state = None
        for i in present:
            t = self.single_template_embedding(
                batch["template_aatype"][i],
                batch["template_all_atom_positions"][i].to(z.dtype),
                batch["template_all_atom_masks"][i].to(z.dtype),
                # float32 positions: binned as DeepMind bins them, before any cast to the trunk's dtype
                batch["template_pseudo_beta"][i].float(),
                batch["template_pseudo_beta_mask"][i].to(z.dtype),
                pair_mask,
                chunk_size,
            )
            state = self.accumulate(z, t, bias[i], state, chunk_size)
            del t
        return self.attention_output(state, chunk_size)

    def accumulate(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        bias: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        chunk_size: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Alg. 17 lines 1-4 for one more template t [R, N, c_t] with mask bias ``bias`` (a scalar):
        updates the running (maximum logit [R, N, H], sum of weights [R, N, H], weighted values
        [R, N, H, D]) per pair (i, j) and head, chunk by chunk of rows (``None``: at once). R = N, or a
        rank's rows of z [R, N, c_z] in the sharded trunk."""
        a = self.attention
        num_heads, head_dim = a.query_w.shape[1], a.query_w.shape[2]
        r, n = z.shape[:2]
        if state is None:
            state = (
                z.new_full((r, n, num_heads), float("-inf")),
                z.new_zeros(r, n, num_heads),
                z.new_zeros(r, n, num_heads, head_dim),
            )
        run_max, denom, acc = state
        step = max(1, r if chunk_size is None else chunk_size)
        for start in range(0, r, step):
            rows = slice(start, min(start + step, r))
            # [r, N, H, D]: the pair's query from z, the template's key and value from t
            q = torch.einsum("ijc,chd->ijhd", z[rows], a.query_w)
            k = torch.einsum("ijc,chd->ijhd", t[rows], a.key_w)
            v = torch.einsum("ijc,chd->ijhd", t[rows], a.value_w)
            # [r, N, H]
            logit = (q * k).sum(-1) * head_dim**-0.5 + bias
            new_max = torch.maximum(run_max[rows], logit)
            rescale = torch.exp(run_max[rows] - new_max)
            w = torch.exp(logit - new_max)
            denom[rows] = denom[rows] * rescale + w
            acc[rows] = acc[rows] * rescale.unsqueeze(-1) + w.unsqueeze(-1) * v
            run_max[rows] = new_max
        return state

    def attention_output(
        self, state: tuple[torch.Tensor, torch.Tensor, torch.Tensor], chunk_size: int | None
    ) -> torch.Tensor:
        """Alg. 17 lines 4-5 from the accumulated softmax: normalise, project; [R, N, c_z]."""
        a = self.attention
        _run_max, denom, acc = state
        r, n = acc.shape[:2]
        update = acc.new_empty(r, n, a.output_w.shape[-1])
        step = max(1, r if chunk_size is None else chunk_size)
        for start in range(0, r, step):
            rows = slice(start, min(start + step, r))
            o = acc[rows] / denom[rows].unsqueeze(-1)
            update[rows] = torch.einsum("ijhd,hdo->ijo", o, a.output_w) + a.output_b
        return update
