"""The structure module, Jumper et al. (2021) Suppl. Alg. 20, as DeepMind's monomer v2.3 runs it.

API for the root module::

    sm = StructureModule(config.structure_module)          # attribute name: ``structure_module``
    out = sm(s, z, aatype, seq_mask)
    # s [N_res, c_s] = representations["single"], z [N_res, N_res, c_z] = representations["pair"],
    # aatype [N_res] int (0-20), seq_mask [N_res] float

``out`` holds (no batch axis, float32, Angstrom):

* ``act`` [N_res, c_s]: final single activations (``representations/structure_module``, pLDDT input);
* ``final_atom_positions`` [N_res, 37, 3], ``final_atom_mask`` [N_res, 37];
* ``final_atom14_positions`` [N_res, 14, 3], ``final_atom14_mask`` [N_res, 14];
* ``traj`` [num_layers, N_res, 7]: backbone frames after each layer as (quaternion, translation in Å);
  ``final_affines`` [N_res, 7] is its last entry;
* ``angles_sin_cos`` / ``unnormalized_angles_sin_cos`` [num_layers, N_res, 7, 2] (omega, phi, psi,
  chi1-4); ``sidechain_frames`` [N_res, 8, 4, 4] of the last layer.

Precision: the module always runs in float32 (inputs are cast, autocast is switched off inside), as
DeepMind casts the Evoformer's bfloat16 outputs to float32 before the structure module and heads; keep
its parameters float32 when the trunk runs in bfloat16.

Parameter names follow DeepMind's haiku modules: ``single_layer_norm``, ``initial_projection``,
``pair_layer_norm`` and one ``fold_iteration`` whose weights all ``num_layers`` layers share.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from alphafold.model import all_atom
from alphafold.model.config import StructureModuleConfig
from alphafold.model.ipa import InvariantPointAttention
from alphafold.model.primitives import LayerNorm, Linear
from alphafold.model.rigid import QuatAffine, Rigid

# How a layer runs its invariant point attention: ``attention(ipa, s, z, mask, frames) -> [N_res, c_s]``.
# The default calls ``ipa`` on the whole pair; a caller that holds only some rows of z (e.g. sharded
# execution, :mod:`alphafold.parallel.structure`) passes its own, which runs ``ipa`` on those query rows
# (``query_start``) and assembles the update of every residue.
Attention = Callable[[InvariantPointAttention, torch.Tensor, torch.Tensor, torch.Tensor, Rigid], torch.Tensor]


def whole_pair_attention(ipa: InvariantPointAttention, s: torch.Tensor, z: torch.Tensor, mask: torch.Tensor,
                         frames: Rigid) -> torch.Tensor:
    """IPA with every residue as a query (z [N_res, N_res, c_z])."""
    return ipa(s, z, mask, frames)


class AngleResnet(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 20 lines 11-14 (torsion angles) with Alg. 24 (all-atom coordinates).

    DeepMind's ``rigid_sidechain`` module: a two-block residual MLP on ``s`` and ``s_initial`` predicts
    7 torsion angles as unnormalised (sin, cos) pairs, which place the 8 rigid groups and their atoms.
    """

    def __init__(self, c_s: int, c_resnet: int, num_blocks: int) -> None:
        super().__init__()
        self.num_blocks = num_blocks
        # DeepMind applies one haiku Linear twice (to s and to s_initial): names input_projection(_1)
        self.input_projection = Linear(c_s, c_resnet)
        self.input_projection_1 = Linear(c_s, c_resnet)
        for i in range(num_blocks):
            suffix = f"_{i}" if i else ""
            setattr(self, f"resblock1{suffix}", Linear(c_resnet, c_resnet, init="relu"))
            setattr(self, f"resblock2{suffix}", Linear(c_resnet, c_resnet, init="zeros"))
        self.unnormalized_angles = Linear(c_resnet, 14)

    def forward(self, s: torch.Tensor, s_initial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (normalised, unnormalised) (sin, cos) of the 7 torsions, each [N_res, 7, 2]."""
        # line 11: a = Linear(s) + Linear(s_initial), both after a ReLU
        a = self.input_projection(F.relu(s)) + self.input_projection_1(F.relu(s_initial))
        # line 12: residual blocks
        for i in range(self.num_blocks):
            suffix = f"_{i}" if i else ""
            hidden = getattr(self, f"resblock1{suffix}")(F.relu(a))
            a = a + getattr(self, f"resblock2{suffix}")(F.relu(hidden))
        # line 13: alpha_f = Linear(relu(a)), then normalised to the unit circle (line 14 of Alg. 20 / 24)
        # [N_res, 14] -> [N_res, 7, 2]
        alpha = self.unnormalized_angles(F.relu(a)).view(a.shape[0], 7, 2)
        norm = torch.sqrt(torch.clamp(torch.sum(torch.square(alpha), dim=-1, keepdim=True), min=1e-12))
        return alpha / norm, alpha


class FoldIteration(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 20 "StructureModule" lines 6-10 and Alg. 23 "BackboneUpdate".

    One layer of the structure module; DeepMind's ``fold_iteration``, shared by all layers.
    """

    def __init__(self, config: StructureModuleConfig) -> None:
        super().__init__()
        c = config
        self.num_transition_layers = c.num_transition_layers
        self.invariant_point_attention = InvariantPointAttention(c)
        self.attention_layer_norm = LayerNorm(c.c_s)
        for i in range(c.num_transition_layers):
            last = i == c.num_transition_layers - 1
            setattr(self, f"transition_{i}" if i else "transition",
                    Linear(c.c_s, c.c_s, init="zeros" if last else "relu"))
        self.transition_layer_norm = LayerNorm(c.c_s)
        self.affine_update = Linear(c.c_s, 6, init="zeros")
        self.rigid_sidechain = AngleResnet(c.c_s, c.c_resnet, c.num_resnet_blocks)

    def forward(
        self,
        s: torch.Tensor,
        s_initial: torch.Tensor,
        z: torch.Tensor,
        mask: torch.Tensor,
        frames: QuatAffine,
        attention: Attention = whole_pair_attention,
    ) -> tuple[torch.Tensor, QuatAffine, torch.Tensor, torch.Tensor]:
        """One layer: returns the new s, the new frames and the layer's (normalised, raw) torsion angles."""
        # lines 6-7: s += IPA(s, z, T); LayerNorm (dropout is off at inference)
        s = self.attention_layer_norm(s + attention(self.invariant_point_attention, s, z, mask, frames))
        # lines 8-9: transition, Linear-ReLU-...-Linear, residual, LayerNorm
        t = s
        for i in range(self.num_transition_layers):
            t = getattr(self, f"transition_{i}" if i else "transition")(t)
            if i < self.num_transition_layers - 1:
                t = F.relu(t)
        s = self.transition_layer_norm(s + t)
        # line 10 / Alg. 23: T_i <- T_i ∘ BackboneUpdate(s_i)
        frames = frames.pre_compose(self.affine_update(s))
        angles, unnormalized_angles = self.rigid_sidechain(s, s_initial)
        return s, frames, angles, unnormalized_angles


class StructureModule(nn.Module):
    """Jumper et al. (2021) Suppl. Alg. 20 "StructureModule" (DeepMind's ``structure_module``)."""

    def __init__(self, config: StructureModuleConfig) -> None:
        super().__init__()
        self.config = config
        self.single_layer_norm = LayerNorm(config.c_s)
        self.initial_projection = Linear(config.c_s, config.c_s)
        self.pair_layer_norm = LayerNorm(config.c_z)
        self.fold_iteration = FoldIteration(config)

    def forward(
        self, s: torch.Tensor, z: torch.Tensor, aatype: torch.Tensor, seq_mask: torch.Tensor,
        attention: Attention = whole_pair_attention,
    ) -> dict[str, torch.Tensor]:
        """Args:
            s: [N_res, c_s] single representation from the Evoformer.
            z: [N_res, N_res, c_z] pair representation (or the rows of it that ``attention`` expects;
              z enters only through the pair layer norm, which is per pair, and the attention).
            aatype: [N_res] residue types.
            seq_mask: [N_res] 1 for real residues.
            attention: how each layer runs its IPA (default: on the whole pair).

        Returns:
            The dict described in the module docstring.
        """
        with torch.autocast(device_type=s.device.type, enabled=False):
            return self._forward(s.float(), z.float(), aatype.long(), seq_mask.float(), attention)

    def _forward(
        self, s: torch.Tensor, z: torch.Tensor, aatype: torch.Tensor, seq_mask: torch.Tensor,
        attention: Attention,
    ) -> dict[str, torch.Tensor]:
        c = self.config
        n = s.shape[0]
        # lines 1-3: s_initial = LN(s); s = Linear(s_initial); z = LN(z)
        s_initial = self.single_layer_norm(s)
        s = self.initial_projection(s_initial)
        z = self.pair_layer_norm(z)
        # line 4: identity backbone frames
        frames = QuatAffine.identity_affine((n,), dtype=s.dtype, device=s.device)

        traj, angles, unnormalized = [], [], []
        for _ in range(c.num_layers):
            s, frames, alpha, alpha_raw = self.fold_iteration(s, s_initial, z, seq_mask, frames, attention)
            traj.append(frames.to_tensor())
            angles.append(alpha)
            unnormalized.append(alpha_raw)
            # the stop-gradient on the rotation between layers only matters for training

        # Alg. 24 on the last layer only: DeepMind computes every layer's atoms but only outputs the last
        backbone = frames.scale_translation(c.position_scale).to_rigid()
        group_frames = all_atom.torsion_angles_to_frames(aatype, backbone, angles[-1])
        atom14 = all_atom.frames_to_atom14_positions(aatype, group_frames)
        atom37_mask = all_atom.atom37_mask(aatype)
        atom37 = all_atom.atom14_to_atom37(atom14, aatype) * atom37_mask[..., None]

        # translations of the trajectory in Angstrom
        traj_scale = s.new_tensor([1.0] * 4 + [c.position_scale] * 3)
        traj_tensor = torch.stack(traj) * traj_scale
        return {
            "act": s,
            "final_atom_positions": atom37,
            "final_atom_mask": atom37_mask,
            "final_atom14_positions": atom14,
            "final_atom14_mask": all_atom.atom14_mask(aatype),
            "traj": traj_tensor,
            "final_affines": traj_tensor[-1],
            "angles_sin_cos": torch.stack(angles),
            "unnormalized_angles_sin_cos": torch.stack(unnormalized),
            "sidechain_frames": group_frames.to_tensor_4x4(),
        }
