"""Batch targets: a directory of processed features, sized from .npy headers; predict-batch input errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from alphafold.errors import UserError
from alphafold.io_utils import save_npz_atomic
from alphafold.runtime.targets import discover_targets, npz_shapes


def _features(path, n_res, n_seq, n_extra):
    save_npz_atomic(path, {"aatype": np.zeros((2, n_res), np.int32),
                           "msa_feat": np.zeros((2, n_seq, n_res, 49), np.float32),
                           "extra_msa": np.zeros((2, n_extra, n_res), np.int32)})


def test_targets_are_sized_from_headers_and_named_by_file(tmp_path):
    _features(tmp_path / "b.npz", 17, 5, 9)
    _features(tmp_path / "a.npz", 12, 3, 4)
    (tmp_path / ".a.npz.tmp.npz").write_bytes(b"partial")  # an unfinished write is not a target
    targets = discover_targets(tmp_path, tmp_path / "out")
    assert [(t.name, t.n_res, t.n_seq, t.n_extra) for t in targets] == [("a", 12, 3, 4), ("b", 17, 5, 9)]
    assert targets[0].output_path == str(tmp_path / "out" / "a.npz")
    assert npz_shapes(tmp_path / "b.npz")["msa_feat"] == (2, 5, 17, 49)


def test_bad_batch_directories_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="is not a directory"):
        discover_targets(tmp_path / "missing", tmp_path)
    with pytest.raises(UserError, match="no processed-feature files"):
        discover_targets(tmp_path, tmp_path)
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="x.npz: not a readable"):
        discover_targets(tmp_path, tmp_path)
    (tmp_path / "x.npz").unlink()
    # raw features (aatype [L, 21] one-hot, no msa_feat) are not a batch target
    save_npz_atomic(tmp_path / "raw.npz", {"aatype": np.zeros((5, 21), np.float32)})
    with pytest.raises(UserError, match="not processed features"):
        discover_targets(tmp_path, tmp_path)


def test_predict_batch_reports_bad_input_in_one_line(tmp_path, cli):
    (tmp_path / "features").mkdir()
    _features(tmp_path / "features" / "t.npz", 12, 3, 4)
    (tmp_path / "params").mkdir()
    proc = cli("predict-batch", tmp_path / "features", "--output-dir", tmp_path / "out", "--params-dir",
               tmp_path / "params", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds 0 params_*.npz files" in proc.stderr
    assert not (tmp_path / "out").exists()
    # an unreadable params file, before any Ray work
    (tmp_path / "params" / "params_model_1_ptm.npz").write_bytes(b"not a zip archive")
    proc = cli("predict-batch", tmp_path / "features", "--output-dir", tmp_path / "out", "--params-dir",
               tmp_path / "params", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"alphafold predict-batch: error: {tmp_path / 'params' / 'params_model_1_ptm.npz'}: not a readable "
        ".npz archive (File is not a zip file)"]
    assert not (tmp_path / "out").exists()
    # a connect timeout of 0 would give up on any cluster at once
    proc = cli("predict-batch", tmp_path / "features", "--output-dir", tmp_path / "out", "--params-dir",
               tmp_path / "params", "--ray-address", "127.0.0.1:9", "--connect-timeout", "0", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--connect-timeout" in proc.stderr.strip().splitlines()[-1]


def test_ranks_never_reserve_more_cpus_than_a_local_ray_has_for_the_largest_gang():
    from alphafold.cli.predict_batch import cpus_per_rank

    assert cpus_per_rank(1.0, None, 4) == 1.0  # an existing cluster: as requested
    assert cpus_per_rank(1.0, 2, 2) == 1.0
    assert cpus_per_rank(1.0, 1, 2) == 0.5  # 2-device batch on a 1-CPU job: both ranks fit
    assert cpus_per_rank(2.0, 8, 3) == 2.0


def test_only_local_ray_temp_dirs_of_ended_commands_are_removed(tmp_path):
    """A predict-batch killed with -9 leaves its local Ray's /tmp/afray-<pid>-* behind; the next run removes
    such directories, and only those: a live command's, foreign names' and a plain file stay."""
    import subprocess
    import sys

    from alphafold.cli.predict_batch import local_ray_temp_dir, remove_stale_ray_temp_dirs

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    pid = int(ended.stdout)
    dead = tmp_path / f"afray-{pid}-k3x9q"
    (dead / "session_latest" / "logs").mkdir(parents=True)
    (dead / "session_latest" / "logs" / "raylet.out").write_text("log")
    live = tmp_path / f"afray-{os.getpid()}-a8b7c6"
    live.mkdir()
    # plain mkdtemp(prefix="afray") names (e.g. the Ray test session's, in use): not ours to judge, even
    # when their random part happens to read like a pid of an ended process
    foreign = [tmp_path / "afrayq1w2e3r4", tmp_path / f"afray{pid}_kq81m"]
    for path in foreign:
        path.mkdir()
    plain = tmp_path / f"afray-{pid}-file"
    plain.write_text("")
    assert remove_stale_ray_temp_dirs(tmp_path) == [dead]
    assert not dead.exists() and live.is_dir() and all(p.is_dir() for p in foreign) and plain.is_file()
    made = Path(local_ray_temp_dir(tmp_path))
    assert made.is_dir() and made.name.startswith(f"afray-{os.getpid()}-")
    assert remove_stale_ray_temp_dirs(tmp_path) == []


def test_routing_reads_recycle_slices_and_templates_from_the_headers(tmp_path):
    """The memory estimate counts every recycle slice the file carries as input (and its templates): a
    target with 9 slices is routed by 9, not by process-features' default of 4."""
    from alphafold.runtime.routing import RoutingPolicy, estimated_peak
    from alphafold.runtime.targets import target_shape

    for name, slices, templates in (("few", 1, 0), ("many", 9, 3)):
        save_npz_atomic(tmp_path / f"{name}.npz", {
            "aatype": np.zeros((slices, 19), np.int32),
            "msa_feat": np.zeros((slices, 5, 19, 49), np.float32),
            "extra_msa": np.zeros((slices, 7, 19), np.int32),
            "template_aatype": np.zeros((slices, templates, 19), np.int32)})
    few, many = discover_targets(tmp_path, tmp_path / "out")
    assert (few.n_slices, few.n_templ, many.n_slices, many.n_templ) == (1, 0, 9, 3)
    assert (target_shape(many).n_res, target_shape(many).n_seq, target_shape(many).n_extra) == (19, 5, 7)
    assert (target_shape(few).n_slices, target_shape(few).n_templ) == (1, 0)
    assert (target_shape(many).n_slices, target_shape(many).n_templ) == (9, 3)
    policy = RoutingPolicy(budget_bytes=2**30)
    assert estimated_peak(target_shape(few), 1, policy) < estimated_peak(target_shape(many), 1, policy)
    # A file with no recycle slice is bad input, named, before any Ray work.
    save_npz_atomic(tmp_path / "empty.npz", {"aatype": np.zeros((0, 19), np.int32),
                                             "msa_feat": np.zeros((0, 5, 19, 49), np.float32)})
    with pytest.raises(UserError, match="empty.npz: aatype has shape"):
        discover_targets(tmp_path, tmp_path / "out")


def test_predict_batch_routes_with_the_process_base_and_the_chunking_the_workers_run(tmp_path):
    """The router plans with what a worker holds: its process base (with which the memory model is
    calibrated) and, for --chunk-size none, unchunked operations."""
    import argparse

    from alphafold.cli.predict_batch import routing_policy
    from alphafold.parallel.cost import TargetShape
    from alphafold.runtime.routing import PROCESS_BASE_BYTES, choose_tp, estimated_peak

    params = tmp_path / "params_model_1_ptm.npz"
    params.write_bytes(b"\0" * 1000)

    def policy(budget_gb: float, chunk) -> object:
        return routing_policy(argparse.Namespace(memory_budget_gb=budget_gb, max_tp=2, chunk_size=chunk),
                              params)

    assert PROCESS_BASE_BYTES > 0
    shape = TargetShape(300, n_seq=64, n_extra=128, n_templ=0, n_slices=1)
    auto = policy(1.0, "auto")
    assert (auto.base_bytes, auto.weights_bytes, auto.chunk_size) == (PROCESS_BASE_BYTES, 1000, 4)
    # a budget that one rank fits only without the base: the target goes to a gang of 2
    alone = estimated_peak(shape, 1, auto) - PROCESS_BASE_BYTES
    fits_without_base = policy((alone + PROCESS_BASE_BYTES // 2) / 1e9, "auto")
    assert choose_tp(shape, fits_without_base) == 2
    # unchunked workers are planned unchunked (their transients are larger than at chunk size 4)
    unchunked = policy(1.0, None)
    assert unchunked.chunk_size is None
    assert estimated_peak(shape, 1, unchunked) > estimated_peak(shape, 1, auto)
    assert policy(1.0, 7).chunk_size == 7


def test_a_local_ray_runs_with_the_loopback_environment_over_the_users(monkeypatch):
    """A site proxy in the user's environment would carry Ray's metadata probe off the machine."""
    import argparse

    import ray

    from alphafold.cli import predict_batch

    for key in predict_batch.LOCAL_RAY_ENV:  # restored after the test, whatever _with_ray sets
        monkeypatch.setenv(key, os.environ.get(key, ""))
    monkeypatch.setenv("http_proxy", "http://10.1.2.3:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://10.1.2.3:3128")
    monkeypatch.setenv("no_proxy", ".site.example")
    seen = {}
    monkeypatch.setattr(ray, "init", lambda **kw: seen.update(
        {k: os.environ.get(k) for k in predict_batch.LOCAL_RAY_ENV}))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    args = argparse.Namespace(ray_address=None, num_cpus=1)
    assert predict_batch._with_ray(args, lambda: "served") == "served"
    assert seen == predict_batch.LOCAL_RAY_ENV
