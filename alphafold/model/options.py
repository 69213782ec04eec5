"""Runtime options: how to run the network, never what it computes.

One frozen object passed down the call tree instead of flags threaded through every ``forward``.
Everything here may change speed and memory, never the result beyond floating-point reassociation
(bf16 excepted, which is opt-in and only where the device supports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ChunkSize = int | None | Literal["auto"]


@dataclass(frozen=True)
class RuntimeOptions:
    """Options of one inference run.

    Attributes:
        chunk_size: rows per chunk for attention, outer product mean and transitions; ``None`` runs
            unchunked, ``"auto"`` picks the largest size that fits the free memory of the device (or
            ``memory_budget_gb``).
        num_recycle: recycles after the first pass (Suppl. Alg. 2); ``None`` uses what the features carry
            (their leading recycle axis minus one).
        recycle_tolerance: stop recycling early once the CA positions move less than this (Å, RMS);
            0 disables early stopping.
        dtype: "float32" (default, DeepMind parity) or "bfloat16" (where the device supports it).
        device: torch device string, e.g. "cpu" or "cuda:0".
        memory_budget_gb: memory (GB, 1e9 bytes) "auto" chunking may plan with instead of asking the
            device for its free memory: a job's memory limit (SLURM ``--mem``), or a reproducible setting
            for benchmarks. ``None`` asks the device.
    """

    chunk_size: ChunkSize = "auto"
    num_recycle: int | None = None
    recycle_tolerance: float = 0.0
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "cpu"
    memory_budget_gb: float | None = None

    def __post_init__(self) -> None:
        if self.chunk_size not in (None, "auto") and (
            not isinstance(self.chunk_size, int) or self.chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive int, None or 'auto', got {self.chunk_size!r}")
        if self.num_recycle is not None and self.num_recycle < 0:
            raise ValueError(f"num_recycle must be >= 0, got {self.num_recycle}")
        if self.recycle_tolerance < 0:
            raise ValueError(f"recycle_tolerance must be >= 0, got {self.recycle_tolerance}")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise ValueError(f"memory_budget_gb must be > 0, got {self.memory_budget_gb}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
