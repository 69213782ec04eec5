"""Batch planning: tiers by length, hash buckets, stability when targets are added."""

from __future__ import annotations

import pytest

from alphafold.campaign.plan import (
    Tier,
    bucket_of,
    devices_for_length,
    parse_tiers,
    plan_batches,
    tier_for,
)
from alphafold.data.inputs import TierPolicy, read_targets
from alphafold.errors import UserError
from tests.campaign.conftest import synthetic_fasta

TIERS = parse_tiers([
    {"name": "s", "max_length": 300, "buckets": 13},
    {"name": "xl", "max_length": 6000, "buckets": 3},
    {"name": "m", "max_length": 900, "buckets": 7},
])


def test_tiers_sorted_and_chosen_by_length():
    assert [t.name for t in TIERS] == ["s", "m", "xl"]
    assert tier_for(300, TIERS).name == "s"
    assert tier_for(301, TIERS).name == "m"
    assert tier_for(6000, TIERS).name == "xl"
    with pytest.raises(UserError, match="longer than the largest tier"):
        tier_for(6001, TIERS)


def test_duplicate_tier_names_rejected():
    with pytest.raises(UserError, match="duplicate"):
        parse_tiers([{"name": "a", "max_length": 1, "buckets": 1}] * 2)


def test_bucket_is_a_pure_function_of_the_key():
    assert bucket_of("00000000000a", 7) == 10 % 7
    assert bucket_of("ffffffffffff", 1) == 0


@pytest.fixture(scope="module")
def proteome(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "syn.fasta"
    synthetic_fasta(path, 1200, seed=3)
    return read_targets([path])


def test_every_target_in_exactly_one_batch_of_its_tier(proteome):
    batches = plan_batches(proteome, TIERS)
    members = [k for b in batches.values() for k in b.members]
    assert sorted(members) == sorted(t.key for t in proteome)
    by_key = {t.key: t for t in proteome}
    for b in batches.values():
        assert b.id.startswith(b.tier.name + "-")
        assert all(tier_for(by_key[k].length, TIERS) == b.tier for k in b.members)
        assert b.max_length == max(by_key[k].length for k in b.members)
        assert b.total_residues == sum(by_key[k].length for k in b.members)
        assert b.devices == devices_for_length(b.max_length, TierPolicy())
    # 1200 targets land in at most 13 + 7 + 3 batches.
    assert len(batches) <= 23


def test_adding_targets_changes_only_the_batches_they_fall_in(proteome, tmp_path):
    before = plan_batches(proteome[:1000], TIERS)
    added = proteome[1000:1003]
    after = plan_batches(proteome[:1000] + added, TIERS)
    changed = {bid for bid in after if before.get(bid) != after[bid]}
    touched = {bid for bid, b in after.items() if any(t.key in b.members for t in added)}
    assert changed == touched
    assert 1 <= len(changed) <= 3
    # Order of the input does not matter either.
    assert plan_batches(list(reversed(proteome)), TIERS) == plan_batches(proteome, TIERS)


def test_batch_id_width_follows_bucket_count():
    t = Tier("s", 100, 128)
    from alphafold.campaign.plan import batch_id

    assert batch_id(t, 5) == "s-005"
    assert batch_id(Tier("s", 100, 1), 0) == "s-0"


def test_devices_follow_the_prepare_targets_tier_policy():
    policy = TierPolicy(single_device_max_length=100, device_counts=(1, 2, 4))
    assert [devices_for_length(n, policy) for n in (100, 101, 141, 142, 200)] == [1, 2, 2, 4, 4]
    with pytest.raises(UserError, match="longer than the largest device tier"):
        devices_for_length(201, policy)
