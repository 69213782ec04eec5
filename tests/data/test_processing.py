"""AF2 v2.3 feature processing against DeepMind's pipeline (tests/data/files/af2_processed_*.npz, made by
tests/data/reference/make_af2_processed.py in the reference venv; no JAX here).

Everything is compared bit for bit (tolerance 0): the whole output for the same seed (our TF-Philox draws
are DeepMind's), the arithmetic alone with DeepMind's draws replayed from its outputs, and the features
that involve no randomness with numpy's draws. The numpy draws are checked by their statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alphafold.data import processing_msa as pm
from alphafold.data import processing_structure as ps
from alphafold.data.processing import ProcessingConfig, process_features

FILES = Path(__file__).parent / "files"
CASES = ("hbb_templates", "ubi_notemplates", "ubi_single_t0", "ubi_one_sample", "ubi_seed7")
DETERMINISTIC = (
    "aatype", "residue_index", "seq_length", "seq_mask", "is_distillation", "target_feat",
    "atom14_atom_exists", "residx_atom14_to_atom37", "residx_atom37_to_atom14", "atom37_atom_exists",
    "msa_mask", "msa_row_mask", "extra_msa_mask", "extra_msa_row_mask", "template_aatype",
    "template_all_atom_masks", "template_all_atom_positions", "template_sum_probs", "template_mask",
    "template_pseudo_beta", "template_pseudo_beta_mask",
)


def _load(case: str):
    data = dict(np.load(FILES / f"af2_processed_{case}.npz"))
    raw = {k[4:]: v for k, v in data.items() if k.startswith("raw/")}
    ref = {k[10:]: v for k, v in data.items() if k.startswith("processed/")}
    meta = {k[7:]: v for k, v in data.items() if k.startswith("config/")}
    config = ProcessingConfig.from_preset(
        str(meta["preset"]), max_msa_clusters=int(meta["max_msa_clusters"]),
        max_extra_msa=int(meta["max_extra_msa"]), num_recycle=int(meta["num_recycle"]))
    return raw, ref, config, int(meta["seed"])


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return _load(request.param)


class ReplaySampler:
    """DeepMind's random draws, read back from its processed outputs (raw MSA rows are distinct)."""

    def __init__(self, raw, ref):
        self.ref = ref
        msa = ps.hhblits_to_ours(raw["msa"])
        self.row_of = {row.tobytes(): i for i, row in enumerate(msa)}
        assert len(self.row_of) == len(msa), "replay needs distinct raw MSA rows"
        self.r = -1

    def crop_seed(self):
        return self.ref["random_crop_to_size_seed"][0]

    def cluster_order(self, num_seq):
        self.r += 1
        num_sel = int(self.ref["msa_row_mask"][self.r].sum())
        selected = [self.row_of[row.tobytes()] for row in self.ref["true_msa"][self.r][:num_sel]]
        self.rest = [i for i in range(num_seq) if i not in set(selected)]
        return np.array(selected + self.rest)

    def bert(self, msa, profile, config):
        n = len(msa)
        mask = self.ref["bert_mask"][self.r][:n] > 0
        corrupted = np.argmax(self.ref["msa_feat"][self.r][:n, :, :23], axis=-1).astype(np.int32)
        return mask, corrupted

    def extra_rows(self, num_extra, max_extra):
        num = int(self.ref["extra_msa_row_mask"][self.r].sum())
        position = {i: k for k, i in enumerate(self.rest)}
        return np.array([position[self.row_of[row.tobytes()]] for row in self.ref["extra_msa"][self.r][:num]],
                        dtype=np.int64)


def test_same_seed_gives_deepminds_processed_features_exactly(case):
    """Same raw features, preset sizes and seed: every array identical to DeepMind's, random ones too."""
    raw, ref, config, seed = case
    ours = process_features(raw, config, seed=seed)
    assert set(ours) == set(ref)
    for key, expected in ref.items():
        assert ours[key].dtype == expected.dtype, key
        assert ours[key].shape == expected.shape, key
        np.testing.assert_array_equal(ours[key], expected, err_msg=key)


def test_replayed_draws_give_deepminds_features_exactly(case):
    raw, ref, config, _ = case
    ours = process_features(raw, config, sampler=ReplaySampler(raw, ref))
    assert set(ours) == set(ref)
    for key, expected in ref.items():
        assert ours[key].dtype == expected.dtype, key
        assert ours[key].shape == expected.shape, key
        np.testing.assert_array_equal(ours[key], expected, err_msg=key)


def test_deterministic_features_equal_deepminds_with_numpy_draws(case):
    raw, ref, config, _ = case
    ours = process_features(raw, config, seed=7, rng="numpy")
    assert {k: (v.shape, v.dtype) for k, v in ours.items()} == {k: (v.shape, v.dtype) for k, v in ref.items()}
    for key in DETERMINISTIC:
        if key in ref:
            np.testing.assert_array_equal(ours[key], ref[key], err_msg=key)


@pytest.fixture(scope="module")
def many_samples():
    """HBB with templates, 20 recycle samples: enough draws for the statistics below."""
    raw = _load("hbb_templates")[0]
    config = ProcessingConfig.from_preset("model_1", max_msa_clusters=16, max_extra_msa=24, num_recycle=19)
    return raw, config, process_features(raw, config, seed=3, rng="numpy")


def test_query_is_always_the_first_cluster_centre(many_samples):
    raw, _, out = many_samples
    query = ps.hhblits_to_ours(raw["msa"][0])
    assert np.all(out["true_msa"][:, 0] == query)
    # ...and the other centres are resampled per recycle.
    centres = {out["true_msa"][r, 1:12].tobytes() for r in range(20)}
    assert len(centres) == 20


def test_bert_masking_statistics(many_samples):
    _, config, out = many_samples
    real = out["msa_mask"] > 0
    masked = (out["bert_mask"] > 0) & real
    # 20 samples x 12 centres x 146 residues = 35,040 positions; binomial sd of the fraction ~0.0019.
    assert abs(masked.sum() / real.sum() - 0.15) < 0.01
    corrupted = np.argmax(out["msa_feat"][..., :23], axis=-1)
    assert np.all(corrupted[~masked & real] == out["true_msa"][~masked & real])
    # Replacement: 70% mask token, else a residue; about 5,300 masked positions, sd ~0.006.
    assert abs(np.mean(corrupted[masked] == pm.MSA_MASK_TOKEN) - 0.7) < 0.03
    assert np.all(out["bert_mask"][~real] == 0)


def test_replacement_distribution_is_10_10_10_70():
    """The categorical draw follows uniform 10% / profile 10% / same 10% / mask 70%."""
    rng = np.random.default_rng(0)
    profile = np.zeros(22, np.float32)
    profile[[0, 4]] = [0.75, 0.25]  # column profile: A 75%, C 25% (our ids 0 and 4)
    msa = np.full(200_000, 4, np.int32)  # every position holds C
    probs = pm.bert_probabilities(msa, np.broadcast_to(profile, (len(msa), 22)), 0.1, 0.1, 0.1)
    draws = pm.sample_bert_replacements(probs, rng)
    freq = np.bincount(draws, minlength=23) / len(draws)
    expected = np.full(23, 0.1 * 0.05)
    expected[20:22] = 0.0
    expected[0] += 0.1 * 0.75
    expected[4] += 0.1 * 0.25 + 0.1
    expected[22] = 0.7
    np.testing.assert_allclose(freq, expected, atol=0.003)  # sd of each frequency < 0.0011


def test_every_extra_row_joins_its_nearest_centre():
    raw = _load("hbb_templates")[0]
    msa = ps.hhblits_to_ours(raw["msa"])
    rng = np.random.default_rng(1)
    order = pm.sample_cluster_order(len(msa), rng)
    centres, extra = msa[order[:12]], msa[order[12:]]
    extra_mask = (rng.random(extra.shape) > 0.1).astype(np.float32)
    assignment = pm.nearest_cluster(centres, np.ones(centres.shape, np.float32), extra, extra_mask,
                                    chunk_rows=5)
    # Brute force: identical residues (not gap, not mask) at positions where the extra row is unmasked.
    agree = ((extra[:, None] == centres[None]) & (extra[:, None] < 21) & (extra_mask[:, None] > 0)).sum(-1)
    np.testing.assert_array_equal(agreement_of_choice := agree[np.arange(len(extra)), assignment],
                                  agree.max(axis=1))
    first_best = np.argmax(agree == agree.max(axis=1, keepdims=True), axis=1)
    np.testing.assert_array_equal(assignment, first_best)
    assert agreement_of_choice.min() > 0


def test_cluster_profiles_are_distributions(many_samples):
    _, _, out = many_samples
    real = out["msa_mask"] > 0
    profile_sum = out["msa_feat"][..., 25:48].sum(-1)
    np.testing.assert_allclose(profile_sum[real], 1.0, atol=1e-5)
    assert np.all(out["msa_feat"][~real] == 0)


@pytest.mark.parametrize("rng", ["deepmind", "numpy"])
def test_same_seed_same_features_other_seed_other_samples(rng):
    raw, _, config, _ = _load("hbb_templates")
    a = process_features(raw, config, seed=11, rng=rng)
    b = process_features(raw, config, seed=11, rng=rng)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    c = process_features(raw, config, seed=12, rng=rng)
    assert not np.array_equal(a["bert_mask"], c["bert_mask"])


def test_cli_writes_deepminds_processed_features(tmp_path, cli):
    raw, ref, _, _ = _load("hbb_templates")
    raw_path = tmp_path / "features.npz"
    np.savez(raw_path, **raw)
    out = tmp_path / "processed.npz"
    cli("process-features", raw_path, "--preset", "model_1_ptm", "--num-recycle", "2", "--seed", "0",
        "--max-msa-clusters", "16", "--max-extra-msa", "24", "--out", out)
    with np.load(out) as processed:
        assert sorted(processed.files) == sorted(ref)
        for key in ref:
            np.testing.assert_array_equal(processed[key], ref[key], err_msg=key)


def _run(*args: str) -> int:
    from alphafold.cli import main

    return main(["process-features", *map(str, args)])


def test_cli_preset_without_templates_ignores_raw_templates(tmp_path):
    raw = _load("hbb_templates")[0]
    np.savez(tmp_path / "features.npz", **raw)
    assert _run(tmp_path / "features.npz", "--preset", "model_3", "--num-recycle", "0",
                "--max-msa-clusters", "8", "--max-extra-msa", "8", "--out", tmp_path / "m3.npz") == 0
    with np.load(tmp_path / "m3.npz") as processed:
        assert processed["msa_feat"].shape == (1, 8, 146, 49)
        assert processed["extra_msa"].shape == (1, 8, 146)
        assert not any(k.startswith("template_") for k in processed.files)


@pytest.mark.parametrize("problem", ["missing", "shape", "junk", "preset"])
def test_cli_bad_raw_input_is_one_clear_error(tmp_path, capsys, problem):
    raw = _load("hbb_templates")[0]
    path, preset, words = tmp_path / f"{problem}.npz", "model_1", []
    if problem == "missing":
        del raw["template_all_atom_positions"]
        words = ["template_all_atom_positions"]
    elif problem == "shape":
        raw["deletion_matrix_int"] = raw["deletion_matrix_int"][:, :-1]
        words = ["deletion_matrix_int", "shape"]
    elif problem == "preset":
        preset, words = "model_9", ["model_9"]
    if problem == "junk":
        path.write_text("not a zip")
    else:
        np.savez(path, **raw)
    out = tmp_path / "out.npz"
    assert _run(path, "--preset", preset, "--out", out) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert all(w in err for w in words)
    if problem != "preset":
        assert f"{problem}.npz" in err
    assert not out.exists()
