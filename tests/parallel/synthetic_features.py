"""Synthetic processed features (AF2 v2.3 layout, leading recycle axis) for tests of whole predictions."""

from __future__ import annotations

import numpy as np

from alphafold.common import residue_constants as rc


def synthetic_features(n_res: int, n_clust: int = 5, n_extra: int = 7, n_templ: int = 2, n_slices: int = 2,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Random but well-formed processed features; the last residue is padding (seq_mask 0)."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    aatype = rng.integers(0, 20, n_res)
    aatype[1] = rc.restype_order["G"]
    seq_mask = np.ones(n_res, f32)
    seq_mask[-1] = 0
    one = {
        "aatype": aatype,
        "residue_index": np.arange(n_res),
        "seq_mask": seq_mask,
        "target_feat": np.eye(22, dtype=f32)[aatype],
        "msa_feat": rng.normal(size=(n_clust, n_res, 49)).astype(f32),
        "msa_mask": (rng.random((n_clust, n_res)) > 0.1).astype(f32),
        "extra_msa": rng.integers(0, 23, (n_extra, n_res)),
        "extra_msa_mask": np.ones((n_extra, n_res), f32),
        "extra_has_deletion": (rng.random((n_extra, n_res)) > 0.8).astype(f32),
        "extra_deletion_value": rng.random((n_extra, n_res)).astype(f32),
    }
    # templates: a random walk of CA positions with atoms scattered around them
    ca = np.cumsum(rng.normal(size=(n_templ, n_res, 3)) * 2.2, axis=1)
    pos = (ca[:, :, None, :] + rng.normal(size=(n_templ, n_res, 37, 3))).astype(f32)
    t_aatype = rng.integers(0, 21, (n_templ, n_res))
    mask = (rng.random((n_templ, n_res, 37)) > 0.3).astype(f32)
    cb = np.where(t_aatype == rc.restype_order["G"], rc.atom_order["CA"], rc.atom_order["CB"])
    one.update({
        "template_aatype": t_aatype,
        "template_all_atom_positions": pos,
        "template_all_atom_masks": mask,
        "template_mask": np.ones(n_templ, f32),
        "template_pseudo_beta": np.take_along_axis(pos, cb[:, :, None, None], axis=2)[:, :, 0],
        "template_pseudo_beta_mask": np.take_along_axis(mask, cb[:, :, None], axis=2)[:, :, 0],
    })
    # each recycle slice its own MSA draw, as process-features resamples per recycle
    out = {k: np.stack([v] * n_slices) for k, v in one.items()}
    out["msa_feat"] = rng.normal(size=(n_slices, n_clust, n_res, 49)).astype(f32)
    return out
