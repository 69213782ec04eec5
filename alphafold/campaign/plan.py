"""Batch planning: length tiers and hash-keyed batches.

A proteome is tens of thousands of targets; one Snakemake job per target per stage is a DAG of 100k+ jobs
that takes minutes to plan. Targets are therefore grouped into batches, and a batch is one job per stage.

- A target's **tier** is the first length class (ordered by ``max_length``) its length fits, so a batch
  never mixes a 100-residue protein with a 3,000-residue one and its resources fit its members. The
  device count of a batch's prediction is the device tier of its longest member under the same
  :class:`alphafold.data.inputs.TierPolicy` that ``alphafold prepare-targets`` writes into the targets
  table (one source of truth for "how many devices does this length need").
- Inside a tier, a target's **bucket** is its sequence hash modulo the tier's (fixed) bucket count. The batch
  is ``<tier>-<bucket>``. Because the bucket count does not depend on how many targets there are, adding a
  target to a campaign changes exactly one batch (the one its hash falls in) and leaves every other batch,
  and its finished outputs, untouched; inside the changed batch, targets already done are skipped by their
  completion records (:mod:`alphafold.campaign.ledger`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from alphafold.data.inputs import TOO_LONG, Target, TierPolicy, tier_for_length
from alphafold.errors import UserError


@dataclass(frozen=True)
class Tier:
    """A length class: targets up to ``max_length`` residues, spread over ``buckets`` batches."""

    name: str
    max_length: int
    buckets: int

    @classmethod
    def from_config(cls, entry: Mapping) -> Tier:
        return cls(str(entry["name"]), int(entry["max_length"]), int(entry["buckets"]))


@dataclass(frozen=True)
class Batch:
    """The targets of one (tier, bucket): one job per stage."""

    id: str
    tier: Tier
    members: tuple[str, ...]  # target keys, sorted
    max_length: int
    total_residues: int
    devices: int  # devices its longest member needs (the prediction job's device request)

    @property
    def size(self) -> int:
        return len(self.members)


def parse_tiers(entries: Iterable[Mapping]) -> list[Tier]:
    """Tiers sorted by ``max_length``; names must be unique path-safe words."""
    tiers = sorted((Tier.from_config(e) for e in entries), key=lambda t: t.max_length)
    if not tiers:
        raise UserError("config", "campaign.tiers is empty")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise UserError("config", f"campaign.tiers has duplicate names: {names}")
    for t in tiers:
        if not t.name.isidentifier():
            raise UserError("config", f"tier name {t.name!r} must be a word (letters, digits, _)")
    return tiers


def tier_for(length: int, tiers: Sequence[Tier]) -> Tier:
    """The smallest tier whose ``max_length`` is at least ``length``."""
    for tier in tiers:
        if length <= tier.max_length:
            return tier
    raise UserError(None, f"a target of length {length} is longer than the largest tier "
                    f"({tiers[-1].name}, max_length {tiers[-1].max_length}); add a tier to campaign.tiers")


def bucket_of(key: str, buckets: int) -> int:
    """The bucket of a target key (a hex sequence hash): stable, uniform, independent of other targets."""
    return int(key[:12], 16) % buckets


def batch_id(tier: Tier, bucket: int) -> str:
    return f"{tier.name}-{bucket:0{len(str(max(tier.buckets - 1, 0)))}d}"


def devices_for_length(length: int, policy: TierPolicy) -> int:
    """Devices a target of ``length`` residues is predicted on (the device tier of prepare-targets)."""
    name = tier_for_length(length, policy)
    if name == TOO_LONG:
        raise UserError(None, f"a target of length {length} is longer than the largest device tier allows "
                        f"({policy.limits()[-1][1]})")
    return 1 if name == "single" else int(name.removeprefix("tp"))


def plan_batches(targets: Iterable[Target], tiers: Sequence[Tier],
                 policy: TierPolicy | None = None) -> dict[str, Batch]:
    """Every non-empty batch of the campaign, keyed by batch id (sorted)."""
    policy = policy if policy is not None else TierPolicy()
    groups: dict[tuple[str, int], list[Target]] = {}
    tier_by_name = {t.name: t for t in tiers}
    for target in targets:
        tier = tier_for(target.length, tiers)
        groups.setdefault((tier.name, bucket_of(target.key, tier.buckets)), []).append(target)
    batches = {}
    for (tier_name, bucket), members in sorted(groups.items()):
        tier = tier_by_name[tier_name]
        bid = batch_id(tier, bucket)
        longest = max(t.length for t in members)
        batches[bid] = Batch(
            id=bid, tier=tier, members=tuple(sorted(t.key for t in members)), max_length=longest,
            total_residues=sum(t.length for t in members), devices=devices_for_length(longest, policy),
        )
    return batches
