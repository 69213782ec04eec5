"""Ray runtime on a local, loopback-only Ray: fold workers, gangs with a process group, the driver's retries.

The served model is ``ray_models.PairMixer``, a real sharded torch computation (rows of the pair tensor per
rank, the partner projection streamed between ranks); the AlphaFold model is served the same way.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from ray_models import PairMixerFactory, UnloadableFactory

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.parallel.group import ParallelConfig, ShardGroup
from alphafold.runtime.driver import Driver, Target
from alphafold.runtime.gang import Gang, GangOptions, GangUnavailable
from alphafold.runtime.worker import FoldWorker

pytestmark = pytest.mark.distributed

C = 5
OPTIONS = GangOptions(cpus_per_rank=1, timeout_s=60, parallel=ParallelConfig(rendezvous_timeout_s=60))


def _features(path: Path, n: int, hold: str | None = None, fail_on_rank: int | None = None) -> Path:
    rng = np.random.default_rng(n)
    arrays = {"pair": rng.standard_normal((n, n, C)).astype(np.float32)}
    if fail_on_rank is not None:
        arrays["fail_on_rank"] = np.array(fail_on_rank)
    if hold:
        arrays["hold"] = np.array(hold.encode())
    save_npz_atomic(path, arrays)
    return path


def _dense(pair: np.ndarray) -> np.ndarray:
    model = PairMixerFactory(C)(ShardGroup.single())
    return model.predict({"pair": pair})["out"]


def test_fold_worker_serves_many_targets_without_ray(tmp_path):
    worker = FoldWorker(PairMixerFactory(C))
    worker.join()
    for n in (17, 19):
        feats = _features(tmp_path / f"t{n}.npz", n)
        result = worker.serve(f"t{n}", str(feats), str(tmp_path / f"out{n}.npz"))
        assert result.output_path == str(tmp_path / f"out{n}.npz") and result.rank == 0
        out = load_npz(tmp_path / f"out{n}.npz")["out"]
        assert out.shape == (n, n, 6)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary files left"


def test_gang_of_two_matches_single_actor(ray_session, tmp_path):
    feats = _features(tmp_path / "f.npz", 19)
    targets = [Target("single", str(feats), str(tmp_path / "single.npz"), 19),
               Target("gang", str(feats), str(tmp_path / "gang.npz"), 19)]
    reports = Driver(PairMixerFactory(C), lambda t: 2 if t.name == "gang" else 1, OPTIONS).run(targets)
    assert {r.status for r in reports.values()} == {"done"}
    assert reports["gang"].tp == 2 and len(set(reports["gang"].pids)) == 2
    single, gang = load_npz(tmp_path / "single.npz"), load_npz(tmp_path / "gang.npz")
    assert int(single["ranks"]) == 1 and int(gang["ranks"]) == 2
    np.testing.assert_allclose(gang["out"], single["out"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single["out"], _dense(load_npz(feats)["pair"]), rtol=1e-5, atol=1e-6)


def _kill_when_started(hold_dir: Path, name: str, rank: int, killed: list[int]) -> threading.Thread:
    def watch():
        marker = hold_dir / f"{name}.rank{rank}.pid"
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        pid = int(marker.read_text())
        killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("tp,victim", [(1, 0), (2, 1)], ids=["single-actor", "gang-member"])
def test_a_target_whose_worker_is_killed_is_retried_on_a_new_one(ray_session, tmp_path, tp, victim):
    hold = tmp_path / "hold"
    hold.mkdir()
    slow = _features(tmp_path / "slow.npz", 17, hold="slow")
    quick = _features(tmp_path / "quick.npz", 14)
    killed: list[int] = []
    watcher = _kill_when_started(hold, "slow", victim, killed)
    targets = [Target("slow", str(slow), str(tmp_path / "slow_out.npz"), 17),
               Target("quick", str(quick), str(tmp_path / "quick_out.npz"), 14)]
    reports = Driver(PairMixerFactory(C, str(hold)), lambda t: tp, OPTIONS).run(targets)
    watcher.join(timeout=5)
    assert killed, "the watcher killed a worker mid-target"
    assert reports["slow"].status == "done" and reports["slow"].attempts == 2
    assert killed[0] not in reports["slow"].pids, "the retry ran on a different process"
    assert reports["quick"].status == "done"
    np.testing.assert_allclose(load_npz(tmp_path / "slow_out.npz")["out"],
                               _dense(load_npz(slow)["pair"]), rtol=1e-5, atol=1e-6)


def test_a_model_error_fails_that_target_only_without_retry(ray_session, tmp_path):
    bad = tmp_path / "bad.npz"
    save_npz_atomic(bad, {"not_pair": np.zeros(3, np.float32)})
    good = _features(tmp_path / "good.npz", 12)
    targets = [Target("bad", str(bad), str(tmp_path / "bad_out.npz"), 30),
               Target("good", str(good), str(tmp_path / "good_out.npz"), 12)]
    reports = Driver(PairMixerFactory(C), lambda t: 1, OPTIONS).run(targets)
    assert reports["bad"].status == "failed" and reports["bad"].attempts == 1
    assert "KeyError" in reports["bad"].error
    assert not (tmp_path / "bad_out.npz").exists()
    assert reports["good"].status == "done"


def test_a_model_error_on_one_rank_of_a_gang_is_not_taken_for_a_dead_worker(ray_session, tmp_path):
    # rank 1 fails alone; rank 0 waits in a collective for it, so it answers no liveness probe until the
    # gang's timeout: busy, not dead, and the target fails once instead of being retried on new gangs
    bad = _features(tmp_path / "bad.npz", 12, fail_on_rank=1)
    options = GangOptions(cpus_per_rank=1, timeout_s=20, parallel=ParallelConfig(rendezvous_timeout_s=20))
    reports = Driver(PairMixerFactory(C), lambda t: 2, options).run(
        [Target("bad", str(bad), str(tmp_path / "bad_out.npz"), 12)])
    assert reports["bad"].status == "failed" and reports["bad"].attempts == 1, reports["bad"]
    assert "model error on rank 1" in reports["bad"].error


def test_routing_refusal_is_reported(ray_session, tmp_path):
    def route(target):
        raise ValueError("too long for any gang")

    reports = Driver(PairMixerFactory(C), route, OPTIONS).run(
        [Target("huge", str(tmp_path / "none.npz"), str(tmp_path / "o.npz"), 10**5)])
    assert reports["huge"].status == "refused" and "too long" in reports["huge"].error


def test_a_gang_that_cannot_be_placed_times_out(ray_session):
    start = time.monotonic()
    with pytest.raises(GangUnavailable):
        Gang(PairMixerFactory(C), 3, GangOptions(cpus_per_rank=1, timeout_s=3))
    assert time.monotonic() - start < 30


class _NoMoreGangs(Driver):
    """A driver whose gangs after the first ``allowed`` cannot be formed (as when a node is lost)."""

    def __init__(self, *args, allowed: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.allowed, self.formed = allowed, 0

    def _form(self, p):
        if self.formed >= self.allowed:
            raise GangUnavailable("no node can hold another gang")
        self.formed += 1
        return super()._form(p)


def test_a_tier_goes_on_with_the_gangs_it_has_when_no_further_one_forms(ray_session, tmp_path):
    hold = tmp_path / "hold"
    hold.mkdir()
    slow = _features(tmp_path / "slow.npz", 17, hold="slow")
    others = [_features(tmp_path / f"t{n}.npz", n) for n in (14, 13)]
    targets = [Target("slow", str(slow), str(tmp_path / "slow_out.npz"), 17)] + [
        Target(p.stem, str(p), str(tmp_path / f"{p.stem}_out.npz"), n) for p, n in zip(others, (14, 13))]
    # two single actors wanted, only one can be formed: the tier runs on that one
    reports = _NoMoreGangs(PairMixerFactory(C), lambda t: 1, OPTIONS, single_actors=2, allowed=1).run(
        targets[1:])
    assert {r.status for r in reports.values()} == {"done"}
    # two formed; the one serving "slow" is killed and cannot be replaced: the other serves the rest,
    # "slow" included, instead of the tier being abandoned with the healthy actor's work
    killed: list[int] = []
    watcher = _kill_when_started(hold, "slow", 0, killed)
    reports = _NoMoreGangs(PairMixerFactory(C, str(hold)), lambda t: 1, OPTIONS, single_actors=2,
                           allowed=2).run(targets)
    watcher.join(timeout=5)
    assert killed, "the watcher killed a worker mid-target"
    assert {name: r.status for name, r in reports.items()} == {"slow": "done", "t14": "done", "t13": "done"}
    assert reports["slow"].attempts == 2 and killed[0] not in reports["slow"].pids
    np.testing.assert_allclose(load_npz(tmp_path / "slow_out.npz")["out"], _dense(load_npz(slow)["pair"]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tp", [1, 2])
def test_a_model_that_cannot_load_fails_the_targets_in_one_line(ray_session, tmp_path, tp):
    feats = _features(tmp_path / "f.npz", 12)
    targets = [Target(f"t{i}", str(feats), str(tmp_path / f"o{i}.npz"), 12) for i in range(2)]
    reports = Driver(UnloadableFactory(), lambda t: tp, OPTIONS, single_actors=2).run(targets)
    for report in reports.values():
        assert report.status == "failed"
        assert report.error.splitlines() == [report.error]
        assert "params_model_1_ptm.npz: not a readable .npz params file" in report.error
    assert not list(tmp_path.glob("o*.npz"))
