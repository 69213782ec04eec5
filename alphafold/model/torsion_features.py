"""Torsion angles of template residues from atom37 coordinates, and the template features built from them
(Jumper et al. (2021) Suppl. Alg. 2 "Inference" lines 7-8; torsion definitions of Suppl. 1.8.1 and
Alg. 24 "computeAllAtomCoordinates" read backwards).

Seven torsions per residue, in the order (pre-omega, phi, psi, chi1..chi4). Each is the angle of its
fourth atom in the frame built from its first three (Alg. 21 "rigidFrom3Points"), encoded as (sin, cos).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from alphafold.common import residue_constants as rc


def _chi_atom_indices() -> np.ndarray:
    """Atom37 indices of the four atoms of each chi angle: [21 restypes (UNK last), 4 chis, 4 atoms].

    Chi angles a residue lacks point at atom 0 and are masked by ``rc.chi_angles_mask``.
    """
    indices = np.zeros((rc.restype_num + 1, 4, 4), dtype=np.int64)
    for r, name in enumerate(rc.resnames[: rc.restype_num]):
        for k, atoms in enumerate(rc.chi_angles_atoms[name]):
            indices[r, k] = [rc.atom_order[a] for a in atoms]
    return indices


CHI_ATOM_INDICES = _chi_atom_indices()


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / torch.sqrt((v**2).sum(-1, keepdim=True) + 1e-8)


def atom37_to_torsion_angles(
    aatype: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The 7 torsions of each residue as (sin, cos), their pi-shifted alternatives, and their masks.

    Args:
        aatype: [*, N] residue types (values above 20 count as unknown).
        pos: [*, N, 37, 3] atom37 positions; mask: [*, N, 37].

    Returns:
        ``torsion_angles_sin_cos`` [*, N, 7, 2], ``alt_torsion_angles_sin_cos`` [*, N, 7, 2],
        ``torsion_angles_mask`` [*, N, 7].
    """
    aatype = torch.clamp(aatype.long(), max=20)
    # the previous residue's atoms (zeros before the first residue); [*, N, 37, 3] and [*, N, 37]
    prev_pos = torch.cat([torch.zeros_like(pos[..., :1, :, :]), pos[..., :-1, :, :]], dim=-3)
    prev_mask = torch.cat([torch.zeros_like(mask[..., :1, :]), mask[..., :-1, :]], dim=-2)
    # atom37 order starts N, CA, C, CB, O
    pre_omega_pos = torch.cat([prev_pos[..., 1:3, :], pos[..., 0:2, :]], dim=-2)
    phi_pos = torch.cat([prev_pos[..., 2:3, :], pos[..., 0:3, :]], dim=-2)
    psi_pos = torch.cat([pos[..., 0:3, :], pos[..., 4:5, :]], dim=-2)
    pre_omega_mask = prev_mask[..., 1:3].prod(-1) * mask[..., 0:2].prod(-1)
    phi_mask = prev_mask[..., 2] * mask[..., 0:3].prod(-1)
    psi_mask = mask[..., 0:3].prod(-1) * mask[..., 4]

    idx = torch.as_tensor(CHI_ATOM_INDICES, device=pos.device)[aatype]  # [*, N, 4, 4]
    # [*, N, 16, 3] gathered along the atom axis, then [*, N, 4, 4, 3]
    flat = idx.reshape(*idx.shape[:-2], 16)
    chis_pos = torch.gather(pos, -2, flat.unsqueeze(-1).expand(*flat.shape, 3)).reshape(*idx.shape, 3)
    chis_atom_mask = torch.gather(mask, -1, flat).reshape(idx.shape).prod(-1)
    chis_mask = (
        torch.as_tensor(rc.chi_angles_mask, device=pos.device, dtype=pos.dtype)[aatype] * chis_atom_mask
    )

    # [*, N, 7, 4, 3]
    atoms = torch.cat(
        [pre_omega_pos.unsqueeze(-3), phi_pos.unsqueeze(-3), psi_pos.unsqueeze(-3), chis_pos], dim=-3
    )
    torsion_mask = torch.cat(
        [pre_omega_mask.unsqueeze(-1), phi_mask.unsqueeze(-1), psi_mask.unsqueeze(-1), chis_mask], dim=-1
    )

    # Alg. 21: frame with origin at atom 2, x axis from atom 1 to atom 2, atom 0 in the xy plane
    origin = atoms[..., 2, :]
    e0 = _normalize(origin - atoms[..., 1, :])
    e1_raw = atoms[..., 0, :] - origin
    e1 = _normalize(e1_raw - (e1_raw * e0).sum(-1, keepdim=True) * e0)
    e2 = torch.linalg.cross(e0, e1)
    # the fourth atom in that frame; only its y and z components are needed
    rel = atoms[..., 3, :] - origin
    y = (rel * e1).sum(-1)
    z = (rel * e2).sum(-1)
    sin_cos = torch.stack([z, y], dim=-1)
    sin_cos = sin_cos / torch.sqrt((sin_cos**2).sum(-1, keepdim=True) + 1e-8)
    # psi is defined with the opposite sign convention by the frame above
    sin_cos = sin_cos * sin_cos.new_tensor([1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0])[:, None]

    periodic = torch.as_tensor(rc.chi_pi_periodic, device=pos.device, dtype=pos.dtype)[aatype]
    mirror = torch.cat([periodic.new_ones(*periodic.shape[:-1], 3), 1.0 - 2.0 * periodic], dim=-1)
    return {
        "torsion_angles_sin_cos": sin_cos,
        "alt_torsion_angles_sin_cos": sin_cos * mirror.unsqueeze(-1),
        "torsion_angles_mask": torsion_mask,
    }


def template_torsion_features(
    aatype: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Template features of the extra MSA rows (Suppl. Table 1: 57 per residue) and their row mask.

    Args:
        aatype: [T, N] template residue types (0-21); pos: [T, N, 37, 3]; mask: [T, N, 37].

    Returns:
        features [T, N, 57] = (aatype one-hot 22, sin/cos 14, alternative sin/cos 14, torsion mask 7) and
        the MSA mask of the template rows [T, N]: the psi mask, which only depends on one residue's backbone.
    """
    t = atom37_to_torsion_angles(aatype, pos, mask)
    num_templates, num_res = aatype.shape
    feats = torch.cat(
        [
            F.one_hot(aatype.long(), 22).to(pos.dtype),
            # [T, N, 14]
            t["torsion_angles_sin_cos"].reshape(num_templates, num_res, 14),
            t["alt_torsion_angles_sin_cos"].reshape(num_templates, num_res, 14),
            t["torsion_angles_mask"],
        ],
        dim=-1,
    )
    return feats, t["torsion_angles_mask"][..., 2]
