"""Routing targets to a tier: one device, or a tensor-parallel gang of P (pure functions, no Ray).

A target goes to the smallest P whose per-rank memory estimate (:func:`alphafold.parallel.cost.rank_memory`)
fits the device budget; a target that fits no allowed P is refused before any work starts. Work is queued
longest first within a tier, so the long targets that bound a batch's makespan start earliest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from alphafold.model.config import BASE, ModelConfig
from alphafold.parallel.cost import TargetShape, rank_memory

# A rank's RSS before model and data (interpreter, torch, gloo), measured on CPU here
# (benchmarks/parallel_full_memory.py, docs/benchmarks.md); rank_memory is calibrated with it. On CUDA the
# device's share is the context and allocator reserve instead (not measured here).
PROCESS_BASE_BYTES = int(0.24 * 2**30)


@dataclasses.dataclass(frozen=True)
class RoutingPolicy:
    """What a device can hold and how large a gang may be.

    Attributes:
      budget_bytes: memory one rank (device) may use, including the weights.
      max_tp: the largest gang (tensor-parallel size) the cluster can form.
      weights_bytes: the model's parameters held by every rank.
      base_bytes: each rank's process footprint before model and data (0.24 GiB measured on CPU here; on
        a GPU, the CUDA context and allocator reserve if the budget is the device's).
      chunk_size: rows per chunk the model runs with (None: unchunked; DeepMind's default subbatch is 4).
      config: the architecture (channel and head counts).
    """

    budget_bytes: int
    max_tp: int = 1
    weights_bytes: int = 0
    base_bytes: int = 0
    chunk_size: int | None = 4
    config: ModelConfig = BASE

    def __post_init__(self):
        if self.budget_bytes <= 0 or self.max_tp < 1 or self.base_bytes < 0:
            raise ValueError(f"invalid routing policy {self}")


class TargetTooLarge(ValueError):
    """No allowed gang size brings a target under the per-rank memory budget."""


def estimated_peak(shape: TargetShape, p: int, policy: RoutingPolicy) -> int:
    """Per-rank peak bytes of ``shape`` on ``p`` ranks under ``policy``."""
    return rank_memory(shape, p, policy.config, policy.chunk_size, policy.weights_bytes,
                       base_bytes=policy.base_bytes).peak


def choose_tp(shape: TargetShape, policy: RoutingPolicy) -> int:
    """The smallest gang size P (1 = a single actor) whose per-rank estimate fits the budget."""
    for p in range(1, policy.max_tp + 1):
        if estimated_peak(shape, p, policy) <= policy.budget_bytes:
            return p
    need = estimated_peak(shape, policy.max_tp, policy)
    raise TargetTooLarge(
        f"{shape.n_res} residues need ~{need / 2**30:.1f} GiB per rank even with {policy.max_tp} ranks; "
        f"the budget is {policy.budget_bytes / 2**30:.1f} GiB"
    )


def longest_fitting_length(p: int, policy: RoutingPolicy, n_seq: int = 512, n_extra: int = 5120,
                           upper: int = 1 << 16, n_slices: int = 4) -> int:
    """The largest N_res whose per-rank estimate on ``p`` ranks fits the budget (0 if none)."""
    def fits(n: int) -> bool:
        shape = TargetShape(n, n_seq, n_extra, n_slices=n_slices)
        return estimated_peak(shape, p, policy) <= policy.budget_bytes

    lo, hi = 0, upper
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_tiers(targets: Iterable[tuple[str, TargetShape]], policy: RoutingPolicy
               ) -> tuple[dict[int, list[str]], dict[str, str]]:
    """Group target names by gang size, each tier's queue sorted longest first (name breaks ties).

    Returns ``(tiers, refused)``: ``tiers[p]`` lists the names routed to gangs of ``p``; ``refused`` maps
    each target that fits nowhere to the reason.
    """
    tiers: dict[int, list[tuple[int, str]]] = {}
    refused: dict[str, str] = {}
    for name, shape in targets:
        try:
            p = choose_tp(shape, policy)
        except TargetTooLarge as err:
            refused[name] = str(err)
            continue
        tiers.setdefault(p, []).append((shape.n_res, name))
    return {p: _longest_first(items) for p, items in sorted(tiers.items())}, refused


def _longest_first(items: Sequence[tuple[int, str]]) -> list[str]:
    return [name for _, name in sorted(items, key=lambda item: (-item[0], item[1]))]
