"""Expected raw features from DeepMind's own numpy pipeline, for tests/data/test_msa_features.py.

Runs ONCE in the reference venv (its import name ``alphafold`` collides with ours):

    cd /tmp && env -u PYTHONPATH /work/refvenv/bin/python <repo>/tests/data/make_expected_raw_features.py

and writes ``tests/data/files/expected_raw_features.npz`` with keys ``<case>/<feature>``. It uses DeepMind's
``parsers.parse_stockholm``/``parse_a3m``, ``pipeline.make_sequence_features`` and
``pipeline.make_msa_features`` on the real alignments in ``tests/data/files``; object arrays are stored as
``S`` arrays (no pickle).

The reference venv holds ColabFold's fork of AF2 2.3, whose ``make_msa_features`` has the deduplication of
DeepMind's v2.3 commented out. DeepMind's rule (skip a row whose aligned string was already seen, across all
MSAs in order) is therefore applied here to the parsed MSAs before calling it, for the ``*_dedup`` cases;
the ``*_nodedup`` cases call the fork unchanged.
"""

import os

import numpy as np

from alphafold.data import parsers, pipeline

FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "files")


def read(name):
    with open(os.path.join(FILES, name)) as fh:
        return fh.read()


def dedup(msas):
    seen = set()
    out = []
    for msa in msas:
        keep = [i for i, s in enumerate(msa.sequences) if not (s in seen or seen.add(s))]
        out.append(parsers.Msa(sequences=[msa.sequences[i] for i in keep],
                               deletion_matrix=[msa.deletion_matrix[i] for i in keep],
                               descriptions=[msa.descriptions[i] for i in keep]))
    return [m for m in out if len(m)]


def storable(features):
    out = {}
    for k, v in features.items():
        v = np.asarray(v)
        if v.dtype == object:
            v = np.array([bytes(x) for x in v.ravel()], dtype=np.bytes_).reshape(v.shape)
        out[k] = v
    return out


def case(msas, description, use_dedup):
    query = msas[0].sequences[0]
    feats = dict(pipeline.make_sequence_features(query, description, len(query)))
    feats.update(pipeline.make_msa_features(dedup(msas) if use_dedup else msas))
    return storable(feats)


def main():
    ubi_sto = parsers.parse_stockholm(read("1UBI_A_jackhmmer.sto"))
    ubi_a3m = parsers.parse_a3m(read("1UBI_A_mmseqs.a3m"))
    pti_sto = parsers.parse_stockholm(read("5PTI_A_jackhmmer.sto"))
    hh_a3m = parsers.parse_a3m(read("hhsuite_query.a3m"))
    cases = {
        "pti_sto_nodedup": case([pti_sto], "5PTI_A", False),
        "pti_sto_dedup": case([pti_sto], "5PTI_A", True),
        "hhsuite_a3m_nodedup": case([hh_a3m], "FA69B_HUMAN", False),
        "ubi_merged_nodedup": case([ubi_sto, ubi_a3m, ubi_sto], "1UBI_A", False),
        "ubi_merged_dedup": case([ubi_sto, ubi_a3m, ubi_sto], "1UBI_A", True),
    }
    arrays = {f"{name}/{k}": v for name, feats in cases.items() for k, v in feats.items()}
    out = os.path.join(FILES, "expected_raw_features.npz")
    np.savez_compressed(out, **arrays)
    for name, feats in cases.items():
        print(name, {k: v.shape for k, v in feats.items() if k in ("msa", "aatype")})
    print("wrote", out)


if __name__ == "__main__":
    main()
