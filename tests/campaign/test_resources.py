"""Per-batch resources: length-aware, device-aware, escalating on retry, capped."""

from __future__ import annotations

import pytest

from alphafold.campaign.plan import Batch, Tier
from alphafold.campaign.resources import StageResources, batch_resources, memory_mb, runtime_min, scaled_work

PREDICT = StageResources(mem_mb_base=6000, mem_mb_per_residue2=0.004, minutes_per_target=2,
                         length_exponent=2.0, max_mem_mb=200_000, max_runtime_min=600)
FEATURES = StageResources(mem_mb_base=2000, mem_mb_per_residue=4, minutes_per_target=10)


def batch(lengths, devices=1):
    return Batch("s-01", Tier("s", 5000, 4), tuple(f"k{i}" for i in range(len(lengths))),
                 max(lengths), sum(lengths), devices)


def test_memory_grows_with_length_squared_for_prediction():
    m400, m800 = memory_mb(PREDICT, 400), memory_mb(PREDICT, 800)
    assert m400 == 6000 + 640
    assert m800 - 6000 == pytest.approx(4 * (m400 - 6000), abs=1)


def test_sharding_divides_the_pair_term_per_device():
    one, four = memory_mb(PREDICT, 2000, devices=1), memory_mb(PREDICT, 2000, devices=4)
    assert one - 6000 == pytest.approx(4 * (four - 6000), abs=1)


def test_memory_doubles_per_attempt_and_is_capped():
    assert [memory_mb(FEATURES, 500, a) for a in (1, 2, 3)] == [4000, 8000, 16000]
    assert memory_mb(PREDICT, 5000, attempt=5) == 200_000


def test_runtime_scales_with_work_and_attempt():
    b = batch([400, 400, 200])
    assert scaled_work(b, 1.0) == pytest.approx(2.5)
    assert runtime_min(FEATURES, scaled_work(b, 1.0), 1) == 10 + 25  # start-up + the targets
    assert runtime_min(FEATURES, scaled_work(b, 1.0), 3) == 3 * 35
    assert runtime_min(PREDICT, 100.0, 9) == 600  # capped
    assert runtime_min(FEATURES, 0.001) == 11  # tiny targets still get the job's start-up time
    assert runtime_min(StageResources(1, minutes_base=0), 0.001) == 1  # and never less than a minute


def test_quadratic_work_bounds_by_longest_member():
    b = batch([800, 100])
    assert scaled_work(b, 2.0) == pytest.approx(2 * 4.0)


def test_batch_resources_escalate_on_retry():
    b = batch([300, 1200], devices=2)
    r1, r2 = batch_resources(PREDICT, b, 1, devices=2), batch_resources(PREDICT, b, 2, devices=2)
    assert r2["mem_mb"] == 2 * r1["mem_mb"] and r2["runtime"] >= 2 * r1["runtime"] - 1
    assert set(r1) == {"mem_mb", "runtime"}


def test_from_config_ignores_nothing_it_knows():
    s = StageResources.from_config({"mem_mb_base": 10, "minutes_per_target": 3})
    assert (s.mem_mb_base, s.minutes_per_target, s.mem_mb_per_residue) == (10, 3, 0.0)
