"""Routing a target to one actor or a gang by its length and the memory model (pure functions)."""

from __future__ import annotations

import pytest

from alphafold.parallel.cost import TargetShape
from alphafold.runtime.routing import (
    RoutingPolicy,
    TargetTooLarge,
    choose_tp,
    estimated_peak,
    longest_fitting_length,
    plan_tiers,
)

GIB = 2**30
# Chunk size 4 (DeepMind's subbatch), 4 recycle slices; 12 GiB per rank fits ~1170 residues on 1 rank,
# ~1775 on 2, ~2130 on 3.
POLICY = RoutingPolicy(budget_bytes=12 * GIB, max_tp=3, weights_bytes=400 * 2**20)


def test_short_targets_get_one_device_long_ones_a_gang():
    assert choose_tp(TargetShape(200), POLICY) == 1
    p = choose_tp(TargetShape(1500), POLICY)
    assert p > 1
    # the choice is the smallest fitting P: one rank fewer would not fit
    assert estimated_peak(TargetShape(1500), p, POLICY) <= POLICY.budget_bytes
    assert estimated_peak(TargetShape(1500), p - 1, POLICY) > POLICY.budget_bytes


def test_gang_size_never_decreases_with_length():
    sizes = [choose_tp(TargetShape(n), POLICY) for n in range(100, 2000, 50)]
    assert sizes == sorted(sizes)
    assert sizes[0] == 1 and sizes[-1] == 3


def test_a_target_that_fits_nowhere_is_refused_with_its_need():
    with pytest.raises(TargetTooLarge, match="4000 residues need"):
        choose_tp(TargetShape(4000), POLICY)


def test_longest_fitting_length_is_the_boundary():
    for p in (1, 2, 3):
        n = longest_fitting_length(p, POLICY)
        assert estimated_peak(TargetShape(n), p, POLICY) <= POLICY.budget_bytes
        assert estimated_peak(TargetShape(n + 1), p, POLICY) > POLICY.budget_bytes
    assert longest_fitting_length(1, POLICY) < longest_fitting_length(2, POLICY) < longest_fitting_length(
        3, POLICY)


def test_plan_sorts_each_tier_longest_first_and_reports_refusals():
    targets = [("a", TargetShape(120)), ("b", TargetShape(1500)), ("c", TargetShape(300)),
               ("d", TargetShape(5000)), ("e", TargetShape(300)), ("f", TargetShape(1600)),
               ("g", TargetShape(1900))]
    tiers, refused = plan_tiers(targets, POLICY)
    assert tiers[1] == ["c", "e", "a"]
    assert tiers[2] == ["f", "b"]
    assert tiers[3] == ["g"]
    for names in tiers.values():
        lengths = [dict(targets)[n].n_res for n in names]
        assert lengths == sorted(lengths, reverse=True)
    assert set(refused) == {"d"}


def test_the_process_base_is_part_of_the_budget():
    based = RoutingPolicy(budget_bytes=12 * GIB, max_tp=3, weights_bytes=400 * 2**20, base_bytes=GIB)
    assert estimated_peak(TargetShape(700), 2, based) == estimated_peak(TargetShape(700), 2, POLICY) + GIB
    assert longest_fitting_length(2, based) < longest_fitting_length(2, POLICY)


def test_invalid_policy_is_refused():
    with pytest.raises(ValueError):
        RoutingPolicy(budget_bytes=0)
    with pytest.raises(ValueError):
        RoutingPolicy(budget_bytes=GIB, max_tp=0)
