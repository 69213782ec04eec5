"""Reference processed features from DeepMind's pipeline (run in the reference venv).

    cd /tmp && env -u PYTHONPATH /work/refvenv/bin/python \\
        <repo>/tests/data/reference/make_af2_processed.py <repo>

For each case, builds the raw features with DeepMind's own code (`parsers.parse_a3m`,
`pipeline.make_sequence_features`/`make_msa_features`; template features from `af2_templates_hbb.npz`,
themselves DeepMind's) and runs `features.np_example_to_features` (ColabFold's numpy backend of the TF
input pipeline, whose random ops reproduce TF's) with the preset's data config shrunk to test sizes and
the case's seed. Saves
tests/data/files/af2_processed_<case>.npz with `raw/<key>`, `processed/<key>` and `config/<key>`.
Never imported by the tests (which must not import JAX).
"""

import sys
from pathlib import Path

import numpy as np
from alphafold.model.tf import utils as tf_utils

from alphafold.data import parsers, pipeline
from alphafold.model import config as af_config
from alphafold.model import features

# case -> (preset, msa source, templates, max_msa_clusters, max_extra_msa, num_recycle, seed)
CASES = {
    "hbb_templates": ("model_1", "hbb_globins45.a3m", "all", 16, 24, 2, 0),
    "ubi_notemplates": ("model_3_ptm", "1UBI_A_mmseqs.a3m", None, 4, 3, 1, 0),
    "ubi_single_t0": ("model_2", None, "none", 6, 5, 1, 0),
    "ubi_one_sample": ("model_4", "1UBI_A_mmseqs.a3m", None, 5, 2, 0, 0),
    "ubi_seed7": ("model_5", "1UBI_A_mmseqs.a3m", None, 3, 4, 2, 7),
}
UBI = ("MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG")


def raw_features(files: Path, msa_file, templates) -> dict:
    if msa_file is None:
        msas = [parsers.Msa(sequences=[UBI], deletion_matrix=[[0] * len(UBI)], descriptions=["query"])]
    else:
        msa = parsers.parse_a3m((files / msa_file).read_text())
        # DeepMind's v2.3 make_msa_features drops repeated aligned rows (ColabFold's fork does not).
        seen = set()
        keep = [i for i, s in enumerate(msa.sequences) if not (s in seen or seen.add(s))]
        msas = [parsers.Msa(sequences=[msa.sequences[i] for i in keep],
                            deletion_matrix=[msa.deletion_matrix[i] for i in keep],
                            descriptions=[msa.descriptions[i] for i in keep])]
    query = msas[0].sequences[0]
    raw = {**pipeline.make_sequence_features(query, "query", len(query)),
           **pipeline.make_msa_features(msas)}
    if templates is not None:
        tmpl = dict(np.load(files / "af2_templates_hbb.npz"))
        tmpl.pop("max_template_date")
        if templates == "none":
            tmpl = {k: v[:0, :len(query)] if v.ndim > 2 else v[:0] for k, v in tmpl.items()}
        raw.update(tmpl)
    out = {}
    for k, v in raw.items():
        v = np.asarray(v)
        out[k] = v.astype(np.bytes_) if v.dtype == object else v
    return out


def main(repo: Path) -> None:
    files = repo / "tests/data/files"
    for case, (preset, msa_file, templates, clusters, extra, recycles, seed) in CASES.items():
        raw = raw_features(files, msa_file, templates)
        cfg = af_config.model_config(preset)
        cfg.data.eval.max_msa_clusters = clusters
        cfg.data.common.max_extra_msa = extra
        cfg.data.common.num_recycle = recycles
        cfg.model.num_recycle = recycles
        # The crop-seed op draws its op seed from a process-wide counter: start each case as a fresh
        # process would.
        tf_utils.seed_maker.next_seed = 0
        processed = features.np_example_to_features(dict(raw), cfg, random_seed=seed)
        config = {"preset": np.array(preset), "max_msa_clusters": np.array(clusters),
                  "max_extra_msa": np.array(extra), "num_recycle": np.array(recycles),
                  "max_templates": np.array(cfg.data.eval.max_templates), "seed": np.array(seed)}
        arrays = {f"raw/{k}": v for k, v in raw.items()}
        arrays.update({f"processed/{k}": np.asarray(v) for k, v in processed.items()})
        arrays.update({f"config/{k}": v for k, v in config.items()})
        np.savez_compressed(files / f"af2_processed_{case}.npz", **arrays)
        print(case, {k: (v.shape, str(v.dtype)) for k, v in processed.items()})


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
