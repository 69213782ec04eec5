"""Structure-side feature processing of AF2 v2.3: residue-id remapping, template masks and pseudo-beta
atoms, and the atom14 <-> atom37 index maps (DeepMind's `data_transforms.py`, deterministic parts).

Raw features use the HHblits alphabet order (A C D E F G H I K L M N P Q R S T V W Y X -); the model uses
ours (`residue_constants.restypes`, ordered by three-letter code, then X and the gap).
"""

from __future__ import annotations

import numpy as np

from alphafold.common import residue_constants as rc

_HHBLITS_ORDER = "ACDEFGHIKLMNPQRSTVWYX-"
_OUR_ORDER = "".join(rc.restypes) + "X-"
# index in the HHblits alphabet -> our residue id (both 22 long).
HHBLITS_TO_OURS = np.array([_OUR_ORDER.index(c) for c in _HHBLITS_ORDER], dtype=np.int32)


def hhblits_to_ours(ids: np.ndarray) -> np.ndarray:
    """Map residue ids in the HHblits order to ours (int32)."""
    return HHBLITS_TO_OURS[ids]


def template_aatype(one_hot_hhblits: np.ndarray) -> np.ndarray:
    """[T, L, 22] one-hot in HHblits order -> [T, L] int32 ids in our order."""
    return hhblits_to_ours(np.argmax(one_hot_hhblits, axis=-1).astype(np.int32))


def pseudo_beta(aatype: np.ndarray, positions: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CB position (CA for glycine) and its mask: [..., L, 3], [..., L] (Suppl. 1.2.9 / Alg. 2)."""
    is_gly = aatype == rc.restype_order["G"]
    ca, cb = rc.atom_order["CA"], rc.atom_order["CB"]
    beta = np.where(is_gly[..., None], positions[..., ca, :], positions[..., cb, :])
    beta_mask = np.where(is_gly, mask[..., ca], mask[..., cb]).astype(np.float32)
    return beta, beta_mask


def _atom14_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per restype (21, unknown last): atom14->atom37 index [21,14], atom37->atom14 index [21,37] (0 where
    absent, masked elsewhere), atom14 existence [21,14]."""
    to37 = np.zeros((rc.restype_num + 1, 14), np.int32)
    to14 = np.zeros((rc.restype_num + 1, rc.atom_type_num), np.int32)
    exists14 = np.zeros((rc.restype_num + 1, 14), np.float32)
    for r, letter in enumerate(rc.restypes):
        for slot, atom in enumerate(rc.residue_atom14_names[rc.restype_1to3[letter]]):
            to37[r, slot] = rc.atom_order[atom]
            to14[r, rc.atom_order[atom]] = slot
            exists14[r, slot] = 1.0
    return to37, to14, exists14


_TO37, _TO14, _EXISTS14 = _atom14_tables()


def atom14_maps(aatype: np.ndarray) -> dict[str, np.ndarray]:
    """Per-residue atom maps of the structure module: `atom14_atom_exists` [L,14], `residx_atom14_to_atom37`
    [L,14], `residx_atom37_to_atom14` [L,37], `atom37_atom_exists` [L,37]."""
    return {
        "atom14_atom_exists": _EXISTS14[aatype],
        "residx_atom14_to_atom37": _TO37[aatype],
        "residx_atom37_to_atom14": _TO14[aatype],
        "atom37_atom_exists": rc.restype_atom37_mask[aatype],
    }
