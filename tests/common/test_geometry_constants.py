"""Rigid-group geometry tables of residue_constants: proper frames, chi definitions, atom placement."""

from __future__ import annotations

import numpy as np

from alphafold.common import residue_constants as rc


def test_default_frames_are_rigid_transforms():
    frames = rc.restype_rigid_group_default_frame
    assert frames.shape == (21, 8, 4, 4)
    # groups a residue lacks (chi_k beyond its chis) stay zero, as in AlphaFold; all others are rigid
    used = np.concatenate([np.ones((20, 4), bool), rc.chi_angles_mask[:20] > 0], axis=1)
    rot = frames[:20, :, :3, :3].astype(np.float64)[used]
    eye = np.broadcast_to(np.eye(3), rot.shape)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), eye, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    np.testing.assert_array_equal(frames[:20][used][:, 3], np.broadcast_to([0, 0, 0, 1], (used.sum(), 4)))
    assert np.all(frames[:20][~used] == 0)
    assert np.all(frames[20] == 0)  # unknown residues have no frames


def test_chi_tables():
    counts = {"A": 0, "G": 0, "S": 1, "C": 1, "V": 1, "T": 1, "D": 2, "N": 2, "H": 2, "I": 2, "L": 2, "F": 2,
              "P": 2, "W": 2, "Y": 2, "E": 3, "Q": 3, "M": 3, "K": 4, "R": 4}
    for letter, n in counts.items():
        r = rc.restype_order[letter]
        assert rc.chi_angles_mask[r].sum() == n == len(rc.chi_angles_atoms[rc.restype_1to3[letter]])
    assert rc.chi_pi_periodic.sum() == 4 and rc.chi_pi_periodic[rc.restype_order["E"], 2] == 1
    # consecutive chis share three atoms: chi_{k+1} = chi_k shifted by one atom
    for chis in rc.chi_angles_atoms.values():
        for a, b in zip(chis, chis[1:], strict=False):
            assert a[1:] == b[:3]


def test_group_frames_place_atoms_at_their_parents_coordinates():
    """A chi1 frame's origin is the axis-end atom (e.g. CB) at its backbone-group position, and each
    group's torsion-defining atom lies in the group's xy-plane with y > 0."""
    for r, name in enumerate(rc.resnames[:20]):
        pos = {a: (g, np.array(x)) for a, g, x in rc.rigid_group_atom_positions[name]}
        chis = rc.chi_angles_atoms[name]
        if chis:
            np.testing.assert_allclose(rc.restype_rigid_group_default_frame[r, 4, :3, 3], pos[chis[0][2]][1],
                                       atol=1e-6)
        for k, chi in enumerate(chis):
            group, xyz = pos[chi[3]]
            assert group == 4 + k, (name, chi)
            assert xyz[1] > 0 and abs(xyz[2]) < 0.01, (name, chi)
        # atom14 / atom37 tables agree
        for a, g, x in rc.rigid_group_atom_positions[name]:
            slot = rc.residue_atom14_names[name].index(a)
            assert rc.restype_atom14_to_rigid_group[r, slot] == g
            assert rc.restype_atom37_to_rigid_group[r, rc.atom_order[a]] == g
            np.testing.assert_allclose(rc.restype_atom14_rigid_group_positions[r, slot], x, atol=1e-6)
            assert rc.restype_atom37_to_atom14[r, rc.atom_order[a]] == slot
    np.testing.assert_array_equal(rc.restype_atom14_mask.sum(1)[:20], rc.restype_atom37_mask.sum(1)[:20])
