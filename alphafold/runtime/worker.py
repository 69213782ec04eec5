"""The fold worker: loads a model once, then serves target after target.

:class:`FoldWorker` is a plain class, usable and testable without Ray; :mod:`alphafold.runtime.gang` wraps
it as a Ray actor. A worker is one rank of a tensor-parallel group of ``size`` ranks (1 for a single actor):
:meth:`FoldWorker.join` forms the group (rendezvous with a timeout) and builds the model from the factory
with that group, so a gang loads its weights once per rank and keeps them for every target it serves.

Model factories are picklable callables ``factory(group) -> model`` where ``model.predict(features)``
returns the model-output dict; rank 0 writes each target's outputs, atomically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from alphafold.io_utils import load_npz, save_npz_atomic
from alphafold.parallel.group import ParallelConfig, ShardGroup, destroy_shard_group, init_shard_group

log = logging.getLogger(__name__)


class Servable(Protocol):
    def predict(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


ModelFactory = Callable[[ShardGroup], Servable]


@dataclasses.dataclass(frozen=True)
class ServeResult:
    """What one rank reports after serving one target."""

    target: str
    rank: int
    size: int
    pid: int
    seconds: float
    output_path: str | None


class FoldWorker:
    """One rank of a (possibly trivial) tensor-parallel group serving targets with a loaded model."""

    def __init__(self, factory: ModelFactory, rank: int = 0, size: int = 1,
                 config: ParallelConfig | None = None):
        self.factory = factory
        self.rank = rank
        self.size = size
        self.config = config or ParallelConfig()
        self.group: ShardGroup | None = None
        self.model: Servable | None = None

    def rendezvous_address(self) -> tuple[str, int]:
        """An address and free port on this worker's node for rank 0 to hold the group's store."""
        host = "127.0.0.1" if self.config.gloo_socket_ifname == "lo" else socket.gethostbyname(
            socket.gethostname())
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            return host, s.getsockname()[1]

    def join(self, master_addr: str = "127.0.0.1", master_port: int = 0) -> int:
        """Form the group with the other ranks (bounded wait), then load the model once. Returns the pid."""
        start = time.monotonic()
        self.group = init_shard_group(self.rank, self.size, master_addr, master_port, self.config)
        self.model = self.factory(self.group)
        log.info("rank %d/%d ready in %.1f s (pid %d)", self.rank, self.size, time.monotonic() - start,
                 os.getpid())
        return os.getpid()

    def serve(self, target: str, features_path: str, output_path: str | None) -> ServeResult:
        """Predict one target from its processed-feature file; rank 0 writes the outputs atomically."""
        if self.model is None:
            raise RuntimeError("serve() before join(): the worker has no model")
        start = time.monotonic()
        features = load_npz(features_path)
        outputs = self.model.predict(features)
        written = None
        if self.rank == 0 and output_path is not None:
            save_npz_atomic(output_path, outputs)
            written = output_path
        seconds = time.monotonic() - start
        log.info("rank %d served %s in %.1f s", self.rank, target, seconds)
        return ServeResult(target, self.rank, self.size, os.getpid(), seconds, written)

    def pid(self) -> int:
        return os.getpid()

    def leave(self) -> None:
        """Leave the process group (the model stays loaded until the worker ends)."""
        if self.group is not None:
            destroy_shard_group(self.group)
            self.group = None

