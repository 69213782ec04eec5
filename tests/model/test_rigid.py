"""Rotation, quaternion and rigid-transform identities of alphafold.model.rigid."""

from __future__ import annotations

import torch

from alphafold.model.rigid import (
    QuatAffine,
    Rigid,
    quat_multiply,
    quat_multiply_by_vec,
    quat_to_rot,
    rot_matmul,
    rot_transpose_vec_mul,
    rot_vec_mul,
)


def _random_quats(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def _random_affine(n: int, seed: int) -> QuatAffine:
    g = torch.Generator().manual_seed(seed + 1000)
    trans = 10 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    return QuatAffine.from_quaternion(_random_quats(n, seed), trans)


def test_quat_to_rot_is_a_proper_rotation():
    r = quat_to_rot(_random_quats(17, 0))
    eye = torch.eye(3, dtype=torch.float64).expand(17, 3, 3)
    torch.testing.assert_close(rot_matmul(r, r.transpose(-1, -2)), eye)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(17, dtype=torch.float64))
    # q and -q are the same rotation; (1, 0, 0, 0) is the identity
    torch.testing.assert_close(quat_to_rot(-_random_quats(17, 0)), r)
    torch.testing.assert_close(quat_to_rot(torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)), eye[0])


def test_quat_to_rot_matches_axis_angle():
    # rotation by theta about z: q = (cos theta/2, 0, 0, sin theta/2)
    theta = torch.tensor(0.7, dtype=torch.float64)
    q = torch.stack([torch.cos(theta / 2), theta * 0, theta * 0, torch.sin(theta / 2)])
    expected = torch.tensor(
        [[torch.cos(theta), -torch.sin(theta), 0], [torch.sin(theta), torch.cos(theta), 0], [0, 0, 1]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(quat_to_rot(q), expected)


def test_quaternion_product_is_rotation_product_and_keeps_unit_norm():
    p, q = _random_quats(12, 1), _random_quats(12, 2)
    pq = quat_multiply(p, q)
    torch.testing.assert_close(pq.norm(dim=-1), torch.ones(12, dtype=torch.float64))
    torch.testing.assert_close(quat_to_rot(pq), rot_matmul(quat_to_rot(p), quat_to_rot(q)))
    v = torch.randn(12, 3, dtype=torch.float64)
    pure = torch.cat([torch.zeros(12, 1, dtype=torch.float64), v], dim=-1)
    torch.testing.assert_close(quat_multiply_by_vec(p, v), quat_multiply(p, pure))


def test_rotation_application_component_wise_equals_matmul():
    r = quat_to_rot(_random_quats(19, 3))
    v = torch.randn(19, 3, dtype=torch.float64)
    torch.testing.assert_close(rot_vec_mul(r, v), torch.einsum("nij,nj->ni", r, v))
    torch.testing.assert_close(rot_transpose_vec_mul(r, v), torch.einsum("nji,nj->ni", r, v))


def test_compose_invert_round_trips():
    a, b = _random_affine(14, 4), _random_affine(14, 5)
    x = torch.randn(14, 3, dtype=torch.float64)
    torch.testing.assert_close(a.invert_apply(a.apply(x)), x)
    torch.testing.assert_close(a.invert().apply(x), a.invert_apply(x))
    torch.testing.assert_close(a.compose(b).apply(x), a.apply(b.apply(x)))
    ident = a.compose(a.invert())
    torch.testing.assert_close(ident.rot, torch.eye(3, dtype=torch.float64).expand(14, 3, 3))
    torch.testing.assert_close(ident.trans, torch.zeros(14, 3, dtype=torch.float64))
    m = a.to_tensor_4x4()
    back = Rigid.from_tensor_4x4(m)
    torch.testing.assert_close(back.rot, a.rot)
    torch.testing.assert_close(back.trans, a.trans)


def test_pre_compose_applies_the_update_first():
    a = _random_affine(13, 6)
    update = torch.randn(13, 6, dtype=torch.float64)
    new = a.pre_compose(update)
    # the update as a rigid transform: rotation of the normalised quaternion (1, b, c, d), translation t
    q_update = torch.cat([torch.ones(13, 1, dtype=torch.float64), update[:, :3]], dim=-1)
    t_update = QuatAffine.from_quaternion(q_update, update[:, 3:])
    expected = a.compose(t_update)
    torch.testing.assert_close(new.rot, expected.rot)
    torch.testing.assert_close(new.trans, expected.trans)
    torch.testing.assert_close(new.quaternion.norm(dim=-1), torch.ones(13, dtype=torch.float64))
    torch.testing.assert_close(quat_to_rot(new.quaternion), new.rot)
    # a zero update is the identity
    same = a.pre_compose(torch.zeros(13, 6, dtype=torch.float64))
    torch.testing.assert_close(same.rot, a.rot)
    torch.testing.assert_close(same.trans, a.trans)


def test_affine_tensor_round_trip_and_identity():
    a = _random_affine(12, 7)
    b = QuatAffine.from_tensor(a.to_tensor())
    torch.testing.assert_close(b.rot, a.rot)
    torch.testing.assert_close(b.trans, a.trans)
    ident = QuatAffine.identity_affine((17,))
    assert ident.to_tensor().shape == (17, 7)
    x = torch.randn(17, 3)
    torch.testing.assert_close(ident.apply(x), x)
    torch.testing.assert_close(a.scale_translation(10.0).trans, 10 * a.trans)


def test_frame_broadcasting_over_points():
    a = _random_affine(12, 8)
    pts = torch.randn(12, 5, 3, dtype=torch.float64)
    out = a.unsqueeze(-1).apply(pts)
    for k in range(5):
        torch.testing.assert_close(out[:, k], a.apply(pts[:, k]))
    assert a.unsqueeze(1).rot.shape == (12, 1, 3, 3) and a.unsqueeze(1).trans.shape == (12, 1, 3)
