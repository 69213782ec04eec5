"""All-atom coordinates from backbone frames and torsion angles (Jumper et al. 2021, Suppl. 1.8.4-1.8.5).

Every residue is 8 rigid groups (backbone, pre-omega, phi, psi, chi1-chi4; see
``residue_constants.rigid_group_names``). A group's frame is its default frame relative to its parent,
rotated about its x-axis by the group's torsion angle (Alg. 25 "makeRotX"); the chi2-chi4 groups hang off
the previous chi group, the others off the backbone. Atoms sit at idealised literature positions in their
group's frame. Tables come from :mod:`alphafold.common.residue_constants`.
"""

from __future__ import annotations

import numpy as np
import torch

from alphafold.common import residue_constants as rc
from alphafold.model.rigid import Rigid


def _table(array: np.ndarray, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.as_tensor(array, dtype=dtype or like.dtype, device=like.device)


def make_rot_x(sin_cos: torch.Tensor) -> torch.Tensor:
    """Jumper et al. (2021) Suppl. Alg. 25 "makeRotX": rotation [*, 3, 3] about x from (sin, cos) [*, 2]."""
    s, c = sin_cos[..., 0], sin_cos[..., 1]
    one, zero = torch.ones_like(s), torch.zeros_like(s)
    rows = ((one, zero, zero), (zero, c, -s), (zero, s, c))
    return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)


def torsion_angles_to_frames(aatype: torch.Tensor, backbone: Rigid, angles_sin_cos: torch.Tensor) -> Rigid:
    """Jumper et al. (2021) Suppl. Alg. 24 "computeAllAtomCoordinates" lines 1-10.

    Args:
        aatype: [N_res] residue types (0-20).
        backbone: [N_res] backbone frames, local -> global (Angstrom).
        angles_sin_cos: [N_res, 7, 2] (sin, cos) of omega, phi, psi, chi1..chi4.

    Returns:
        [N_res, 8] rigid-group frames, local -> global. Unknown residues (20) get all-zero frames, as in
        DeepMind's tables (their atoms are masked out anyway).
    """
    n = aatype.shape[0]
    # [N_res, 8, 4, 4]
    default = Rigid.from_tensor_4x4(_table(rc.restype_rigid_group_default_frame, angles_sin_cos)[aatype])
    # the backbone group has no torsion: prepend (sin, cos) = (0, 1)
    # [N_res, 8, 2]
    backbone_sin_cos = angles_sin_cos.new_tensor([0.0, 1.0]).expand(n, 1, 2)
    sin_cos = torch.cat([backbone_sin_cos, angles_sin_cos], dim=-2)
    # lines 2-8: T_f = T_default_f ∘ makeRotX(alpha_f), each relative to its parent
    local = default.compose_rot(make_rot_x(sin_cos))
    # lines 9-10: chi2..chi4 chain onto the previous chi group, the others are already backbone-relative
    to_backbone = [local[:, f] for f in range(5)]
    for f in range(5, 8):
        to_backbone.append(to_backbone[f - 1].compose(local[:, f]))
    to_backbone_rigid = Rigid(
        torch.stack([t.rot for t in to_backbone], dim=1), torch.stack([t.trans for t in to_backbone], dim=1)
    )
    return backbone.unsqueeze(-1).compose(to_backbone_rigid)


def frames_to_atom14_positions(aatype: torch.Tensor, frames: Rigid) -> torch.Tensor:
    """Jumper et al. (2021) Suppl. Alg. 24 "computeAllAtomCoordinates" line 11: x_i^a = T_i,f(a) x_lit^a.

    Args:
        aatype: [N_res] residue types.
        frames: [N_res, 8] rigid-group frames from :func:`torsion_angles_to_frames`.

    Returns:
        [N_res, 14, 3] atom positions in the atom14 layout, zero where the residue has no such atom.
    """
    group = _table(rc.restype_atom14_to_rigid_group, aatype, torch.long)[aatype]  # [N_res, 14]
    rot = torch.gather(frames.rot, 1, group[..., None, None].expand(-1, -1, 3, 3))  # [N_res, 14, 3, 3]
    trans = torch.gather(frames.trans, 1, group[..., None].expand(-1, -1, 3))  # [N_res, 14, 3]
    lit = _table(rc.restype_atom14_rigid_group_positions, frames.trans)[aatype]  # [N_res, 14, 3]
    positions = Rigid(rot, trans).apply(lit)
    mask = _table(rc.restype_atom14_mask, frames.trans)[aatype]
    return positions * mask[..., None]


def atom14_to_atom37(atom14: torch.Tensor, aatype: torch.Tensor) -> torch.Tensor:
    """Scatter atom14 data [N_res, 14, *] to the atom37 layout [N_res, 37, *] (absent atoms are zero)."""
    index = _table(rc.restype_atom37_to_atom14, aatype, torch.long)[aatype]  # [N_res, 37]
    trailing = atom14.shape[2:]
    # [N_res, 37] -> [N_res, 37, *] to gather whole trailing blocks
    index = index.view(*index.shape, *([1] * len(trailing))).expand(-1, -1, *trailing)
    gathered = torch.gather(atom14, 1, index)
    mask = atom37_mask(aatype).to(atom14.dtype)
    return gathered * mask.view(*mask.shape, *([1] * len(trailing)))


def atom37_mask(aatype: torch.Tensor) -> torch.Tensor:
    """[N_res, 37] float32: 1 where the residue type has the atom (DeepMind's ``atom37_atom_exists``)."""
    return torch.as_tensor(rc.restype_atom37_mask, device=aatype.device)[aatype]


def atom14_mask(aatype: torch.Tensor) -> torch.Tensor:
    """[N_res, 14] float32: 1 where the residue type has an atom in that slot (``atom14_atom_exists``)."""
    return torch.as_tensor(rc.restype_atom14_mask, device=aatype.device)[aatype]
