"""Run a function on P local processes that form one tensor-parallel group (torch.multiprocessing, spawn).

Used by ``alphafold run-features --tp P`` and by the distributed tests. The ranks meet on 127.0.0.1 at a
free port; each rank calls ``fn(group, *args)`` and its return value (keep it picklable and small: numpy
arrays, numbers) comes back to the parent, indexed by rank. A rank that fails fails the whole launch
with its traceback, except a :class:`~alphafold.errors.UserError` (bad input, e.g. a missing params file),
which the parent raises as it is, so the command reports it in one line; a launch that exceeds ``timeout_s``
is terminated, so nothing waits forever. The free port is found by asking the OS and bound by rank 0 a
moment later: if another process takes it in between, the launch is repeated on a new port.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp

from alphafold.errors import UserError
from alphafold.parallel.group import ParallelConfig, ShardGroup, free_loopback_port, shard_group

log = logging.getLogger(__name__)


def _rank_entry(rank: int, fn: Callable[..., Any], world_size: int, port: int, config: ParallelConfig,
                num_threads: int | None, results: Any, args: tuple) -> None:
    if num_threads:
        torch.set_num_threads(num_threads)
    with shard_group(rank, world_size, "127.0.0.1", port, config) as group:
        try:
            value = fn(group, *args)
        except UserError as err:
            value = err  # pickles as itself (UserError.__reduce__); the parent raises it
        results.put((rank, value))


PORT_ATTEMPTS = 3  # launches tried, each on a newly found free port


def spawn(fn: Callable[..., Any], world_size: int, *args: Any, config: ParallelConfig | None = None,
          timeout_s: float = 600.0, num_threads: int | None = None, in_process: bool = True) -> list[Any]:
    """Run ``fn(group, *args)`` on ``world_size`` ranks and return their results in rank order.

    ``fn`` must be importable by name (a module-level function). At ``world_size == 1`` it runs in this
    process with the trivial group (no process group), unless ``in_process`` is False (a fresh process,
    e.g. to measure its memory on its own).
    """
    config = config or ParallelConfig()
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, not {world_size}")
    if world_size == 1 and in_process:
        return [fn(ShardGroup.single(config.torch_device(0)), *args)]
    if num_threads is None:
        # Share this machine's cores between the ranks instead of oversubscribing them P times.
        num_threads = max(1, torch.get_num_threads() // world_size)
    for _ in range(PORT_ATTEMPTS - 1):
        port = free_loopback_port()
        try:
            return _launch(fn, world_size, port, config, timeout_s, num_threads, args)
        except mp.ProcessRaisedException as err:
            if "Address already in use" not in str(err):
                raise
            log.warning("rendezvous port %d was taken before rank 0 could bind it; trying another", port)
    return _launch(fn, world_size, free_loopback_port(), config, timeout_s, num_threads, args)


def _launch(fn: Callable[..., Any], world_size: int, port: int, config: ParallelConfig, timeout_s: float,
            num_threads: int, args: tuple) -> list[Any]:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    log.info("starting %d ranks (%s on %s), rendezvous 127.0.0.1:%d", world_size,
             config.resolved_backend, config.device, port)
    procs = mp.start_processes(
        _rank_entry, args=(fn, world_size, port, config, num_threads, results, args),
        nprocs=world_size, join=False, start_method="spawn",
    )
    collected: dict[int, Any] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            _drain(results, collected)
            _raise_user_error(collected)  # the other ranks may wait for the failed one: ended below
            if procs.join(timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{world_size} ranks did not finish within {timeout_s:.0f} s")
        _drain(results, collected, wait_s=5.0, expect=world_size)
        _raise_user_error(collected)
    finally:
        for proc in procs.processes:
            if proc.is_alive():
                proc.kill()
            proc.join(timeout=10)
        results.close()
    missing = sorted(set(range(world_size)) - set(collected))
    if missing:
        raise RuntimeError(f"ranks {missing} returned no result")
    return [collected[r] for r in range(world_size)]


def _raise_user_error(collected: dict[int, Any]) -> None:
    for rank in sorted(collected):
        if isinstance(collected[rank], UserError):
            raise collected[rank]


def _drain(results: Any, collected: dict[int, Any], wait_s: float = 0.0, expect: int | None = None) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            rank, value = results.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue_mod.Empty:
            if expect is None or len(collected) >= expect or time.monotonic() >= deadline:
                return
            continue
        collected[rank] = value
