"""All-atom coordinates from frames and torsions (Suppl. Alg. 24, 25): ideal geometry, equivariance, and
reconstruction of a real structure (ubiquitin, PDB 1UBI) from its own backbone frames and torsions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from alphafold.common import residue_constants as rc
from alphafold.model.all_atom import (
    atom14_to_atom37,
    atom37_mask,
    frames_to_atom14_positions,
    make_rot_x,
    torsion_angles_to_frames,
)
from alphafold.model.rigid import QuatAffine, Rigid

FILES = Path(__file__).parent / "files"
ALL_TYPES = torch.arange(21)


def _atoms37(aatype: torch.Tensor, backbone: Rigid, sin_cos: torch.Tensor) -> torch.Tensor:
    frames = torsion_angles_to_frames(aatype, backbone, sin_cos)
    return atom14_to_atom37(frames_to_atom14_positions(aatype, frames), aatype)


def _zero_torsions(n: int) -> torch.Tensor:
    return torch.stack([torch.zeros(n, 7), torch.ones(n, 7)], dim=-1).double()


def _dist(x: torch.Tensor, a: str, b: str) -> torch.Tensor:
    return (x[:, rc.atom_order[a]] - x[:, rc.atom_order[b]]).norm(dim=-1)


def test_rot_x():
    theta = torch.tensor([0.3, -2.0], dtype=torch.float64)
    r = make_rot_x(torch.stack([theta.sin(), theta.cos()], dim=-1))
    v = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    out = torch.einsum("nij,j->ni", r, v)
    torch.testing.assert_close(out, torch.stack([torch.ones(2), theta.cos(), theta.sin()], -1).double())


def test_ideal_bond_lengths():
    aatype = ALL_TYPES[:20]
    x = _atoms37(aatype, Rigid.identity((20,), dtype=torch.float64), _zero_torsions(20))
    # Engh & Huber (1991): N-CA 1.458, CA-C 1.525, C=O 1.231, CA-CB 1.530 Å
    np.testing.assert_allclose(_dist(x, "N", "CA"), 1.458, atol=0.02)
    np.testing.assert_allclose(_dist(x, "CA", "C"), 1.525, atol=0.01)
    np.testing.assert_allclose(_dist(x, "C", "O"), 1.231, atol=0.01)
    has_cb = aatype != rc.restype_order["G"]
    np.testing.assert_allclose(_dist(x, "CA", "CB")[has_cb], 1.530, atol=0.02)  # 1.540 if beta-branched
    # only atoms the residue has are non-zero; unknown residues get nothing
    mask = atom37_mask(aatype)
    assert torch.all(x.norm(dim=-1)[mask == 0] == 0)
    not_ca = mask.clone()
    not_ca[:, rc.atom_order["CA"]] = 0
    assert torch.all(x.norm(dim=-1)[not_ca == 1] > 0.1)  # every atom but CA is placed off the origin
    unk = _atoms37(torch.tensor([20]), Rigid.identity((1,), dtype=torch.float64), _zero_torsions(1))
    assert torch.all(unk == 0)


def test_a_torsion_moves_only_its_group_and_keeps_bond_lengths():
    aatype = torch.full((12,), rc.restype_order["K"])  # lysine: chi1..chi4
    backbone = Rigid.identity((12,), dtype=torch.float64)
    base = _atoms37(aatype, backbone, _zero_torsions(12))
    sin_cos = _zero_torsions(12)
    angle = torch.linspace(-3, 3, 12, dtype=torch.float64)
    sin_cos[:, 4] = torch.stack([angle.sin(), angle.cos()], dim=-1)  # chi2 (index 4 = chi2)
    moved = _atoms37(aatype, backbone, sin_cos)
    fixed = ["N", "CA", "C", "O", "CB", "CG"]
    rotating = ["CE", "NZ"]
    for a in fixed:
        torch.testing.assert_close(moved[:, rc.atom_order[a]], base[:, rc.atom_order[a]])
    assert (moved[:, rc.atom_order["NZ"]] - base[:, rc.atom_order["NZ"]]).norm(dim=-1).max() > 1.0
    for a, b in [("CG", "CD"), ("CD", "CE"), ("CE", "NZ"), ("CG", "CE")]:
        torch.testing.assert_close(_dist(moved, a, b), _dist(base, a, b))
    for a in rotating:
        assert (moved[:, rc.atom_order[a]] - base[:, rc.atom_order[a]]).norm(dim=-1).max() > 0.5


def test_atoms_transform_with_the_backbone_frame():
    g = torch.Generator().manual_seed(0)
    aatype = ALL_TYPES
    n = aatype.shape[0]
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    backbone = QuatAffine.from_quaternion(q, 20 * torch.randn(n, 3, generator=g, dtype=torch.float64))
    angles = torch.randn(n, 7, 2, generator=g, dtype=torch.float64)
    sin_cos = angles / angles.norm(dim=-1, keepdim=True)
    x = _atoms37(aatype, backbone.to_rigid(), sin_cos)
    glob = QuatAffine.from_quaternion(torch.tensor([0.2, 0.9, -0.3, 0.4], dtype=torch.float64).expand(n, 4),
                                      torch.tensor([3.0, -8.0, 1.0], dtype=torch.float64).expand(n, 3))
    x_moved = _atoms37(aatype, glob.to_rigid().compose(backbone.to_rigid()), sin_cos)
    mask = atom37_mask(aatype).bool()
    torch.testing.assert_close(x_moved[mask], glob.to_rigid().unsqueeze(-1).apply(x)[mask])


def _read_pdb(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """aatype [L], atom37 positions [L, 37, 3] and mask [L, 37] of the first model's ATOM records."""
    residues: dict[tuple[str, int], tuple[str, dict[str, list[float]]]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("ENDMDL"):
            break
        if line.startswith("ATOM"):
            name, resname, key = line[12:16].strip(), line[17:20], (line[21], int(line[22:26]))
            xyz = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
            residues.setdefault(key, (resname, {}))[1][name] = xyz
    aatype = torch.tensor([rc.resnames.index(r) for r, _ in residues.values()])
    pos = torch.zeros(len(residues), 37, 3, dtype=torch.float64)
    mask = torch.zeros(len(residues), 37, dtype=torch.float64)
    for i, (_, atoms) in enumerate(residues.values()):
        for name, xyz in atoms.items():
            if name in rc.atom_order:
                pos[i, rc.atom_order[name]] = torch.tensor(xyz, dtype=torch.float64)
                mask[i, rc.atom_order[name]] = 1
    return aatype, pos, mask


def _frame_from_3_points(origin: torch.Tensor, on_x: torch.Tensor, in_xy: torch.Tensor) -> Rigid:
    e0 = on_x - origin
    e0 = e0 / e0.norm(dim=-1, keepdim=True)
    e1 = in_xy - origin
    e1 = e1 - (e1 * e0).sum(-1, keepdim=True) * e0
    e1 = e1 / e1.norm(dim=-1, keepdim=True)
    return Rigid(torch.stack([e0, e1, torch.cross(e0, e1, dim=-1)], dim=-1), origin)


def _true_torsions(aatype: torch.Tensor, pos: torch.Tensor, backbone: Rigid) -> torch.Tensor:
    """(sin, cos) [L, 7, 2] that rotate each group's default frame onto the group's real defining atom.

    Group f's frame at angle alpha is parent ∘ default_f ∘ rotX(alpha); the defining atom (psi: O, chi_k:
    the 4th chi atom) sits at y > 0, z = 0 in it, so alpha = atan2(z, y) of that atom in parent ∘ default_f.
    """
    n = aatype.shape[0]
    sin_cos = _zero_torsions(n)
    table = torch.as_tensor(rc.restype_rigid_group_default_frame, dtype=torch.float64)
    default = Rigid.from_tensor_4x4(table)
    for i in range(n):
        name = rc.resnames[aatype[i]]
        previous = backbone[i]
        defining = [(3, "O")] + [(4 + k, chi[3]) for k, chi in enumerate(rc.chi_angles_atoms[name])]
        for group, atom in defining:
            # psi and chi1 hang off the backbone frame, chi2..chi4 off the previous chi group
            base = (backbone[i] if group <= 4 else previous).compose(default[aatype[i], group])
            y, z = base.invert_apply(pos[i, rc.atom_order[atom]])[1:]
            sin_cos[i, group - 1] = torch.stack([z, y]) / torch.hypot(y, z)
            previous = base.compose_rot(make_rot_x(sin_cos[i, group - 1]))
    return sin_cos


def test_reconstructs_ubiquitin_from_its_frames_and_torsions():
    aatype, pos, mask = _read_pdb(FILES / "pdb1ubi.pdb")
    assert aatype.shape == (76,) and int(mask.sum()) == 602
    backbone = _frame_from_3_points(pos[:, 1], pos[:, 2], pos[:, 0])  # CA origin, C on x, N in xy-plane
    sin_cos = _true_torsions(aatype, pos, backbone)
    x = _atoms37(aatype, backbone, sin_cos)
    present = (mask * atom37_mask(aatype)).bool()
    assert int(present.sum()) == 602 - 1  # all atoms but the C-terminal OXT, which atom14 lacks
    err = (x - pos).norm(dim=-1)[present]
    # idealised bond lengths and angles against a 1.8 Å crystal structure: measured max 0.76 Å (GLU 16 OE2),
    # RMS 0.13 Å; lever arms of side chains amplify the deviations of real bond angles from ideal ones
    assert err.max() < 1.0, float(err.max())
    assert err.pow(2).mean().sqrt() < 0.2, float(err.pow(2).mean().sqrt())
    # CA is the frame origin; N and C only differ from the real atoms by ideal bond lengths and N-CA-C angle
    torch.testing.assert_close(x[:, 1], pos[:, 1], atol=1e-9, rtol=0)
    assert (x[:, [0, 2]] - pos[:, [0, 2]]).norm(dim=-1).max() < 0.2  # measured 0.16 Å
    # the torsions carry the information: with all torsions zero the side chains land elsewhere
    x_zero = _atoms37(aatype, backbone, _zero_torsions(76))
    assert (x_zero - pos).norm(dim=-1)[present].pow(2).mean().sqrt() > 1.0
