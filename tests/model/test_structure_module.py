"""Structure module (Suppl. Alg. 20): output contract, shared layer weights, CA = frame origin, masking."""

from __future__ import annotations

import copy

import pytest
import torch

from alphafold.common import residue_constants as rc
from alphafold.model.config import StructureModuleConfig
from alphafold.model.rigid import QuatAffine, quat_multiply
from alphafold.model.structure_module import StructureModule

CONFIG = StructureModuleConfig(num_layers=3, c_s=19, c_z=14, num_heads=3, num_scalar_qk=5, num_point_qk=4,
                               num_scalar_v=6, num_point_v=7, num_transition_layers=3, c_resnet=12,
                               num_resnet_blocks=2)
N_RES = 17


@pytest.fixture(scope="module")
def module_and_inputs():
    torch.manual_seed(0)
    sm = StructureModule(CONFIG)
    with torch.no_grad():
        for p in sm.parameters():  # perturb: no zero-initialised layer may hide a bug
            p.add_(0.1 * torch.randn_like(p))
    s = torch.randn(N_RES, CONFIG.c_s)
    z = torch.randn(N_RES, N_RES, CONFIG.c_z)
    aatype = torch.arange(N_RES) % 21
    mask = torch.ones(N_RES)
    mask[-2:] = 0
    return sm, s, z, aatype, mask


def test_outputs_and_shapes(module_and_inputs):
    sm, s, z, aatype, mask = module_and_inputs
    with torch.no_grad():
        out = sm(s, z, aatype, mask)
    shapes = {
        "act": (N_RES, CONFIG.c_s), "final_atom_positions": (N_RES, 37, 3), "final_atom_mask": (N_RES, 37),
        "final_atom14_positions": (N_RES, 14, 3), "final_atom14_mask": (N_RES, 14),
        "traj": (CONFIG.num_layers, N_RES, 7), "final_affines": (N_RES, 7),
        "angles_sin_cos": (CONFIG.num_layers, N_RES, 7, 2), "sidechain_frames": (N_RES, 8, 4, 4),
    }
    for key, shape in shapes.items():
        assert tuple(out[key].shape) == shape, key
        assert torch.isfinite(out[key]).all(), key
    torch.testing.assert_close(out["final_atom_mask"], torch.as_tensor(rc.restype_atom37_mask)[aatype])
    assert torch.all(out["final_atom_positions"][out["final_atom_mask"] == 0] == 0)
    # CA is the origin of the backbone frame: the trajectory's last translation (in Å)
    known = aatype < 20
    torch.testing.assert_close(out["final_atom_positions"][known, 1], out["final_affines"][known, 4:])
    # quaternions stay unit, angles on the unit circle
    torch.testing.assert_close(out["traj"][..., :4].norm(dim=-1), torch.ones(CONFIG.num_layers, N_RES))
    torch.testing.assert_close(out["angles_sin_cos"].norm(dim=-1), torch.ones(CONFIG.num_layers, N_RES, 7))
    # the frames move away from the identity start (the network is not trivial)
    assert out["final_affines"][:, 4:].abs().max() > 1.0


def test_one_weight_set_for_all_layers():
    n1 = sum(p.numel() for p in StructureModule(CONFIG).parameters())
    deeper = StructureModule(StructureModuleConfig(**{**CONFIG.__dict__, "num_layers": 8}))
    assert sum(p.numel() for p in deeper.parameters()) == n1
    names = {n for n, _ in deeper.named_parameters()}
    for name in ("fold_iteration.invariant_point_attention.trainable_point_weights",
                 "fold_iteration.transition_2.weights", "fold_iteration.rigid_sidechain.resblock1_1.weights",
                 "fold_iteration.rigid_sidechain.input_projection_1.bias", "single_layer_norm.scale",
                 "initial_projection.weights", "pair_layer_norm.offset", "fold_iteration.affine_update.bias"):
        assert name in names, name


def test_padding_does_not_reach_real_residues(module_and_inputs):
    sm, s, z, aatype, mask = module_and_inputs
    with torch.no_grad():
        out = sm(s, z, aatype, mask)
        s2, z2 = s.clone(), z.clone()
        s2[-2:] += 3 * torch.randn(2, CONFIG.c_s)
        z2[:, -2:] += 3 * torch.randn(N_RES, 2, CONFIG.c_z)
        z2[-2:, :] += 3 * torch.randn(2, N_RES, CONFIG.c_z)
        out2 = sm(s2, z2, aatype, mask)
    for key in ("act", "final_atom_positions"):
        torch.testing.assert_close(out2[key][:-2], out[key][:-2], rtol=1e-5, atol=1e-5)
    assert (out2["act"][-2:] - out["act"][-2:]).abs().max() > 1e-2


def test_runs_in_float32_from_bfloat16_inputs(module_and_inputs):
    sm, s, z, aatype, mask = module_and_inputs
    with torch.no_grad():
        out = sm(s.bfloat16(), z.bfloat16(), aatype.int(), mask.bfloat16())
        ref = sm(s.bfloat16().float(), z.bfloat16().float(), aatype, mask)
    assert out["final_atom_positions"].dtype == torch.float32
    torch.testing.assert_close(out["final_atom_positions"], ref["final_atom_positions"])


def test_a_layer_is_equivariant_under_a_global_rigid_motion(module_and_inputs):
    """Moving every input frame by g leaves s and the torsions unchanged and moves the output frames by g
    (IPA is invariant, the backbone update is applied in the local frame)."""
    sm, s, z, aatype, mask = module_and_inputs
    layer = copy.deepcopy(sm.fold_iteration).double()
    s, z, mask = s.double(), z.double(), mask.double()
    g = torch.Generator().manual_seed(3)
    frames = QuatAffine.from_quaternion(torch.randn(N_RES, 4, generator=g, dtype=torch.float64),
                                        torch.randn(N_RES, 3, generator=g, dtype=torch.float64))
    q_g = torch.tensor([0.4, -0.2, 0.7, 0.5], dtype=torch.float64).expand(N_RES, 4)
    t_g = torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64).expand(N_RES, 3)
    motion = QuatAffine.from_quaternion(q_g, t_g)
    moved = QuatAffine.from_quaternion(quat_multiply(motion.quaternion, frames.quaternion),
                                       motion.apply(frames.trans), normalize=False)
    with torch.no_grad():
        s1, f1, a1, _ = layer(s, s, z, mask, frames)
        s2, f2, a2, _ = layer(s, s, z, mask, moved)
    torch.testing.assert_close(s2, s1)
    torch.testing.assert_close(a2, a1)
    expected = motion.to_rigid().compose(f1.to_rigid())
    torch.testing.assert_close(f2.rot, expected.rot)
    torch.testing.assert_close(f2.trans, expected.trans)
