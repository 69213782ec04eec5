"""Length-aware resources of a batch job, escalating on retry: plain functions, unit-tested.

Snakemake calls these through the rules' ``resources:`` (with the job's ``attempt``, 1 on the first try);
the SLURM profile maps them onto ``sbatch`` (``mem_mb`` → ``--mem``, ``runtime`` → ``--time``, ``devices``
→ ``--gpus`` on a GPU partition). The estimates are deliberately coarse and configurable
(``resources`` in the config); a retry after an out-of-memory kill or a time-out gets more.

Models behind the defaults:

- **msa_search**, **template_search**, **features** (the CPU stages): memory is dominated by the search
  tool's database buffers and the MSA itself, roughly ``base + per_residue * L`` for the longest target;
  time is ``per_target`` minutes per target, scaled by length relative to 400 residues (jackhmmer and
  hmmsearch are about linear in query length). The MSA search takes most of it; the template search
  (one profile against PDB's sequences) and the feature building (no search) are much shorter.
- **predict**: the pair representation and its attention intermediates grow as ``L^2``; with chunking the
  peak is about ``base + per_residue2 * L^2`` per device (split across ``devices`` in a sharded tier);
  time grows between ``L^2`` and ``L^3``; ``per_target`` minutes are for a 400-residue target.

Every job also gets ``minutes_base`` of wall time whatever its targets: start-up, a local Ray, loading the
weights, a slow shared file system. Without it a batch of short targets was given SLURM's one-minute floor
and a prediction job was killed by its time limit while Ray was still starting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from alphafold.campaign.plan import Batch

REFERENCE_LENGTH = 400


@dataclass(frozen=True)
class StageResources:
    """Coefficients of one stage's estimates (see the module docstring) and escalation limits."""

    mem_mb_base: int
    mem_mb_per_residue: float = 0.0
    mem_mb_per_residue2: float = 0.0
    minutes_per_target: float = 1.0
    minutes_base: float = 10.0
    length_exponent: float = 1.0
    max_mem_mb: int = 1_000_000
    max_runtime_min: int = 7 * 24 * 60

    @classmethod
    def from_config(cls, entry: Mapping) -> StageResources:
        return cls(**{k: entry[k] for k in cls.__dataclass_fields__ if k in entry})


def memory_mb(stage: StageResources, max_length: int, attempt: int = 1, devices: int = 1) -> int:
    """Memory of one job: the estimate for the longest target, doubled on each retry, capped."""
    per_device = stage.mem_mb_per_residue * max_length + stage.mem_mb_per_residue2 * max_length**2 / devices
    estimate = stage.mem_mb_base + per_device
    return int(min(math.ceil(estimate * 2 ** (max(attempt, 1) - 1)), stage.max_mem_mb))


def runtime_min(stage: StageResources, lengths_sum_scaled: float, attempt: int = 1) -> int:
    """Wall time in minutes: the job's fixed start-up plus the per-target estimate summed over the batch,
    times the attempt, capped."""
    estimate = max(1.0, stage.minutes_base + stage.minutes_per_target * lengths_sum_scaled)
    return int(min(math.ceil(estimate * max(attempt, 1)), stage.max_runtime_min))


def scaled_work(batch: Batch, exponent: float) -> float:
    """Sum over members of (L / 400) ** exponent, bounded above by the longest member for every target.

    Only the batch's max length and total residues are stored, so the sum is bounded using the mean length
    ``total/size`` for exponent 1 (exact) and the max length otherwise (an upper bound).
    """
    if exponent == 1.0:
        return batch.total_residues / REFERENCE_LENGTH
    return batch.size * (batch.max_length / REFERENCE_LENGTH) ** exponent


def batch_resources(stage: StageResources, batch: Batch, attempt: int = 1,
                    devices: int = 1) -> dict[str, int]:
    """``mem_mb`` and ``runtime`` (minutes) for one batch job of a stage."""
    return {
        "mem_mb": memory_mb(stage, batch.max_length, attempt, devices),
        "runtime": runtime_min(stage, scaled_work(batch, stage.length_exponent), attempt),
    }
