"""MSA feature processing of AF2 v2.3: cluster sampling, BERT masking, cluster profiles, `msa_feat`.

Jumper et al. (2021) Suppl. 1.2.6 "MSA clustering" and 1.2.7 "Residue cropping"/BERT (Suppl. 1.9.9
"Masked MSA prediction"), as DeepMind's input pipeline runs them (`model/tf/data_transforms.py`). Every
random draw is separated from the arithmetic: the random functions return indices or masks drawn from a
`numpy.random.Generator`, and the deterministic functions take them as arguments, so the arithmetic can be
checked exactly against DeepMind's outputs for the same draws.

Residue ids here are ours (`residue_constants.restypes` order, 20 = X, 21 = gap, 22 = BERT mask token).
All float arithmetic is float32 with DeepMind's operation order, so results are bitwise equal.
"""

from __future__ import annotations

import numpy as np

MSA_GAP = 21
MSA_MASK_TOKEN = 22
NUM_MSA_CLASSES = 23  # 20 residues, X, gap, mask

# The per-row MSA features that sampling moves between the cluster centres and the extra MSA.
MSA_ROW_FEATURES = ("msa", "deletion_matrix", "msa_mask", "msa_row_mask", "bert_mask", "true_msa")


def one_hot(indices: np.ndarray, depth: int) -> np.ndarray:
    """float32 one-hot along a new last axis; indices >= depth give an all-zero row."""
    out = np.zeros(indices.shape + (depth,), np.float32)
    valid = indices < depth
    np.put_along_axis(out, np.where(valid, indices, 0)[..., None], valid[..., None].astype(np.float32), -1)
    return out


def hhblits_profile(msa: np.ndarray) -> np.ndarray:
    """[N, L] -> [L, 22]: frequency of each residue/gap class per column over all MSA rows."""
    num_seq, num_res = msa.shape
    counts = np.bincount((np.arange(num_res)[None, :] * 22 + msa).ravel(), minlength=num_res * 22)
    return counts.reshape(num_res, 22).astype(np.float32) / np.float32(num_seq)


def sample_cluster_order(num_seq: int, rng: np.random.Generator) -> np.ndarray:
    """Random row order that keeps the query first: [0, permutation of 1..N-1]."""
    return np.concatenate([[0], rng.permutation(np.arange(1, num_seq))]).astype(np.int64)


def split_clusters(features: dict[str, np.ndarray], order: np.ndarray, max_clusters: int) -> None:
    """The first `max_clusters` rows of `order` become the cluster centres; the rest `extra_*` rows.

    Modifies `features` in place (AF2's `sample_msa(keep_extra=True)`).
    """
    num_sel = min(max_clusters, len(order))
    selected, rest = order[:num_sel], order[num_sel:]
    for key in MSA_ROW_FEATURES:
        if key in features:
            features["extra_" + key] = features[key][rest]
            features[key] = features[key][selected]


def sample_bert_mask(shape: tuple[int, ...], replace_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Positions to corrupt: each independently with probability `replace_fraction` (0.15)."""
    return rng.random(shape) < replace_fraction


def bert_probabilities(msa: np.ndarray, profile: np.ndarray, uniform_prob: float, profile_prob: float,
                       same_prob: float) -> np.ndarray:
    """[N, L, 23] replacement distribution at each position (Suppl. 1.9.9).

    uniform_prob over the 20 residues, profile_prob by the column profile, same_prob the residue itself,
    and the rest (0.7 with AF2's numbers) the mask token.
    """
    random_aa = np.array([0.05] * 20 + [0.0, 0.0], np.float32)
    probs = (np.float32(uniform_prob) * random_aa + np.float32(profile_prob) * profile
             + np.float32(same_prob) * one_hot(msa, 22))
    mask_prob = 1.0 - profile_prob - same_prob - uniform_prob
    return np.concatenate([probs, np.full(probs.shape[:-1] + (1,), mask_prob, np.float32)], axis=-1)


def sample_bert_replacements(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per position from [..., 23] probabilities (inverse CDF)."""
    cdf = np.cumsum(probs.astype(np.float64), axis=-1)
    u = rng.random(probs.shape[:-1])[..., None] * cdf[..., -1:]
    return np.minimum((cdf <= u).sum(-1), probs.shape[-1] - 1).astype(np.int32)


def apply_bert_mask(features: dict[str, np.ndarray], mask_position: np.ndarray,
                    replacement: np.ndarray) -> None:
    """Corrupt the cluster-centre MSA at `mask_position` (in place): `true_msa`, `bert_mask`, new `msa`."""
    features["bert_mask"] = mask_position.astype(np.float32)
    features["true_msa"] = features["msa"]
    features["msa"] = np.where(mask_position, replacement, features["msa"]).astype(np.int32)


def nearest_cluster(msa: np.ndarray, msa_mask: np.ndarray, extra_msa: np.ndarray,
                    extra_mask: np.ndarray, chunk_rows: int = 1024) -> np.ndarray:
    """Assign each extra row to the centre it agrees with most (Suppl. 1.2.6).

    Agreement counts positions with the same residue among the 21 residue classes (gap and mask token
    carry no weight), both masked in; ties go to the first centre. Computed as a float32 one-hot product
    (BLAS, multi-threaded; exact, the counts are integers below 2^24), over chunks of `chunk_rows` extra
    rows so memory stays O(chunk · L · 21) for deep MSAs.
    """
    assignment = np.zeros((len(extra_msa),), np.int32)
    if len(extra_msa) == 0:
        return assignment
    # [L*21, N_clust]
    centre = (msa_mask[..., None] * one_hot(msa, 21)).reshape(len(msa), -1).T.copy()
    for start in range(0, len(extra_msa), chunk_rows):
        rows = extra_msa[start:start + chunk_rows]
        # [chunk, L*21]
        extra = (extra_mask[start:start + chunk_rows, :, None] * one_hot(rows, 21)).reshape(len(rows), -1)
        assignment[start:start + len(rows)] = np.argmax(extra @ centre, axis=1)
    return assignment


def summarize_clusters(features: dict[str, np.ndarray], assignment: np.ndarray) -> None:
    """`cluster_profile` [N_clust, L, 23] and `cluster_deletion_mean` [N_clust, L] over each centre and
    the extra rows assigned to it (in place)."""
    msa, msa_mask = features["msa"], features["msa_mask"]
    extra_msa, extra_mask = features["extra_msa"], features["extra_msa_mask"]
    num_clusters, num_res = msa.shape
    # Sums of 0/1 masks and integer deletion counts: exact in float64 and in the float32 cast.
    row_col = assignment[:, None].astype(np.int64) * num_res + np.arange(num_res)[None, :]
    size = num_clusters * num_res
    counts = np.bincount(row_col.ravel(), weights=extra_mask.ravel(), minlength=size)
    counts = counts.astype(np.float32).reshape(num_clusters, num_res)
    msa_sum = np.bincount((row_col * NUM_MSA_CLASSES + extra_msa).ravel(), weights=extra_mask.ravel(),
                          minlength=size * NUM_MSA_CLASSES)
    msa_sum = msa_sum.astype(np.float32).reshape(num_clusters, num_res, NUM_MSA_CLASSES)
    msa_sum += one_hot(msa, NUM_MSA_CLASSES)
    del_sum = np.bincount(row_col.ravel(), weights=(extra_mask * features["extra_deletion_matrix"]).ravel(),
                          minlength=size)
    del_sum = del_sum.astype(np.float32).reshape(num_clusters, num_res)
    del_sum += features["deletion_matrix"]
    # The centre counts itself (msa_mask); 1e-6 guards empty padding columns.
    mask_counts = 1e-6 + msa_mask + counts
    features["cluster_profile"] = msa_sum / mask_counts[..., None]
    features["cluster_deletion_mean"] = del_sum / mask_counts


def sample_extra_rows(num_extra: int, max_extra: int, rng: np.random.Generator) -> np.ndarray:
    """A random subset (random order) of at most `max_extra` extra rows."""
    return rng.permutation(num_extra)[:max_extra].astype(np.int64)


def crop_extra(features: dict[str, np.ndarray], select: np.ndarray) -> None:
    for key in MSA_ROW_FEATURES:
        if "extra_" + key in features:
            features["extra_" + key] = features["extra_" + key][select]


def deletion_value(deletions: np.ndarray) -> np.ndarray:
    """Deletion counts squashed to [0, 1): 2/π · arctan(d/3) (Suppl. Table 1)."""
    return np.arctan(deletions / 3.0) * (2.0 / np.pi)


def make_msa_feat(features: dict[str, np.ndarray]) -> None:
    """`msa_feat` [N_clust, L, 49] and `target_feat` [L, 22] (Suppl. Table 1), plus the extra-MSA
    deletion features (in place).

    msa_feat channels: one-hot residue (23), has deletion (1), deletion value (1), cluster profile (23),
    cluster deletion mean (1). target_feat: domain break flag (1), one-hot query residue (21).
    """
    has_break = np.clip(features["between_segment_residues"].astype(np.float32), 0.0, 1.0)
    features["target_feat"] = np.concatenate(
        [has_break[..., None], one_hot(features["aatype"], 21)], axis=-1)
    deletions = features["deletion_matrix"]
    parts = [one_hot(features["msa"], NUM_MSA_CLASSES), np.clip(deletions, 0.0, 1.0)[..., None],
             deletion_value(deletions)[..., None]]
    if "cluster_profile" in features:
        parts += [features["cluster_profile"],
                  deletion_value(features["cluster_deletion_mean"])[..., None]]
    features["msa_feat"] = np.concatenate(parts, axis=-1).astype(np.float32)
    if "extra_deletion_matrix" in features:
        extra = features["extra_deletion_matrix"]
        features["extra_has_deletion"] = np.clip(extra, 0.0, 1.0)
        features["extra_deletion_value"] = deletion_value(extra)
