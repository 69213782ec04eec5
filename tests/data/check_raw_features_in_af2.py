"""Acceptance check: DeepMind's own processing takes the raw features `alphafold features` writes.

Runs in the reference venv (its import name `alphafold` collides with ours), on feature files our CLI made:

    cd /tmp && env -u PYTHONPATH /work/refvenv/bin/python <repo>/tests/data/check_raw_features_in_af2.py \\
        OUT/HBB_HUMAN/features.npz OUT/1UBI_A/features.npz ...

For each file: checks the keys and dtypes against DeepMind's `pipeline.make_sequence_features` /
`make_msa_features` on the same sequence, then runs `features.np_example_to_features` (preset model_1,
small sizes) and prints the processed shapes. Exits non-zero on the first failure. Never imported by tests.
"""

import sys

import numpy as np

from alphafold.data import pipeline
from alphafold.model import config as af_config
from alphafold.model import features


def check(path: str) -> None:
    with np.load(path, allow_pickle=False) as data:
        raw = {k: data[k] for k in data.files}
    sequence = raw["sequence"][0].decode()
    reference = {**pipeline.make_sequence_features(sequence, "x", len(sequence))}
    one_row = pipeline.parsers.Msa([sequence], [[0] * len(sequence)], ["x"])
    reference.update(pipeline.make_msa_features([one_row]))
    for key, value in reference.items():
        ours = raw[key]
        if np.asarray(value).dtype == object:
            assert ours.dtype.kind == "S", (key, ours.dtype)
        else:
            assert ours.dtype == value.dtype, (key, ours.dtype, value.dtype)
            assert ours.shape[1:] == value.shape[1:], (key, ours.shape, value.shape)
    np.testing.assert_array_equal(raw["aatype"], reference["aatype"])
    cfg = af_config.model_config("model_1")
    cfg.data.eval.max_msa_clusters = 8
    cfg.data.common.max_extra_msa = 16
    cfg.data.common.num_recycle = 1
    cfg.model.num_recycle = 1
    processed = features.np_example_to_features(dict(raw), cfg, random_seed=0)
    print(path, "OK:", len(processed), "processed features;",
          {k: tuple(np.asarray(v).shape) for k, v in processed.items()
           if k in ("msa_feat", "template_aatype", "extra_msa", "seq_length")})


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        check(arg)
