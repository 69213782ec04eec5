"""Tensor-parallel groups: configuration, rendezvous with a timeout, and the group handle passed explicitly.

A :class:`ShardGroup` names one tensor-parallel group of P ranks (the ranks that share one target's pair
representation) and the device its tensors live on. It is passed explicitly to every sharded function;
there is no global parallel context in this package. At P = 1 it carries no process group at all and every
collective in :mod:`alphafold.parallel.comm` returns its input unchanged.

Backend and device come from :class:`ParallelConfig`: NCCL with one CUDA device per rank on GPUs, gloo with
the CPU here. fairscale's model-parallel initialiser builds the groups (a world of ``W`` ranks splits into
``W / P`` tensor-parallel groups); its handle is read once at setup and passed on from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import socket
from collections.abc import Iterator
from datetime import timedelta

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
    """How the ranks of a tensor-parallel group meet and talk.

    Attributes:
      backend: "gloo", "nccl", or "auto" (NCCL when ``device`` is CUDA, gloo otherwise).
      device: "cpu" or "cuda" ("cuda" uses device ``local_rank % torch.cuda.device_count()``).
      rendezvous_timeout_s: how long a rank waits for the others to join, and for any one collective;
        a missing rank fails the group instead of leaving the others waiting forever.
      gloo_socket_ifname: network interface gloo binds; "lo" keeps a single-node group on loopback. None
        leaves gloo's own choice (multi-node groups).
    """

    backend: str = "auto"
    device: str = "cpu"
    rendezvous_timeout_s: float = 120.0
    gloo_socket_ifname: str | None = "lo"

    def __post_init__(self):
        if self.backend not in ("auto", "gloo", "nccl"):
            raise ValueError(f"backend must be auto, gloo or nccl, not {self.backend!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, not {self.device!r}")
        if self.backend == "nccl" and self.device != "cuda":
            raise ValueError("the NCCL backend needs device='cuda'")

    @property
    def resolved_backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "nccl" if self.device == "cuda" else "gloo"

    def torch_device(self, local_rank: int) -> torch.device:
        if self.device == "cuda":
            return torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        return torch.device("cpu")


@dataclasses.dataclass(frozen=True, eq=False)
class ShardGroup:
    """One tensor-parallel group as seen by one of its ranks.

    Attributes:
      rank: this rank's index inside the group, 0 <= rank < size.
      size: P, the number of ranks sharing the pair representation.
      group: the torch process group (None when size == 1: nothing to communicate).
      device: where this rank's tensors live.
    """

    rank: int
    size: int
    group: dist.ProcessGroup | None
    device: torch.device = torch.device("cpu")

    def __post_init__(self):
        if not 0 <= self.rank < self.size:
            raise ValueError(f"rank {self.rank} outside a group of size {self.size}")
        if self.size > 1 and self.group is None:
            raise ValueError("a group of more than one rank needs a process group")

    @classmethod
    def single(cls, device: torch.device | str = "cpu") -> ShardGroup:
        """The trivial group of one rank: every collective is the identity."""
        return cls(rank=0, size=1, group=None, device=torch.device(device))

    def global_rank(self, rank: int) -> int:
        """The world rank of group member ``rank`` (for collectives that address a source rank)."""
        if self.group is None:
            return rank
        return dist.get_global_rank(self.group, rank)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_shard_group(
    rank: int,
    world_size: int,
    master_addr: str,
    master_port: int,
    config: ParallelConfig = ParallelConfig(),
    tp_size: int | None = None,
    local_rank: int | None = None,
) -> ShardGroup:
    """Join a world of ``world_size`` ranks and return this rank's tensor-parallel group.

    The rendezvous is a TCP store at ``master_addr:master_port`` held by rank 0; every wait is bounded by
    ``config.rendezvous_timeout_s``. ``tp_size`` (default: the whole world) is P; the world splits into
    ``world_size / tp_size`` groups by fairscale's model-parallel initialiser.
    """
    tp_size = world_size if tp_size is None else tp_size
    if world_size % tp_size:
        raise ValueError(f"world size {world_size} is not a multiple of the tensor-parallel size {tp_size}")
    device = config.torch_device(rank if local_rank is None else local_rank)
    if world_size == 1:
        return ShardGroup.single(device)
    if config.resolved_backend == "gloo" and config.gloo_socket_ifname:
        # gloo picks its interface from the hostname otherwise, which may resolve to a routed address.
        os.environ["GLOO_SOCKET_IFNAME"] = config.gloo_socket_ifname
    if device.type == "cuda":
        torch.cuda.set_device(device)
    timeout = timedelta(seconds=config.rendezvous_timeout_s)
    store = dist.TCPStore(master_addr, master_port, world_size, is_master=rank == 0, timeout=timeout,
                          master_listen_fd=_store_listener(master_addr, master_port) if rank == 0 else None)
    dist.init_process_group(
        config.resolved_backend, store=store, rank=rank, world_size=world_size, timeout=timeout
    )
    # fairscale builds the tensor-parallel (its "model parallel") groups; its module keeps them in globals,
    # so the handle is read here once and passed explicitly from now on.
    from fairscale.nn.model_parallel import initialize as fs_init

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its group sizes on stdout
        fs_init.initialize_model_parallel(tp_size, model_parallel_backend=config.resolved_backend)
    group = fs_init.get_model_parallel_group()
    log.debug("rank %d/%d joined a %s group of %d on %s", rank, world_size, config.resolved_backend,
              tp_size, device)
    return ShardGroup(rank=dist.get_rank(group), size=tp_size, group=group, device=device)


def _store_listener(host: str, port: int) -> int:
    """A socket listening on ``host:port`` only, handed to rank 0's store (its file descriptor; the store
    owns it from then on). Left to itself the store listens on every interface whatever ``host`` is."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=max(socket.SOMAXCONN, 128)).detach()


def destroy_shard_group(group: ShardGroup) -> None:
    """Leave the world joined by :func:`init_shard_group` (no-op for the trivial group)."""
    if group.group is None or not dist.is_initialized():
        return
    from fairscale.nn.model_parallel import initialize as fs_init

    fs_init.destroy_model_parallel()
    dist.destroy_process_group()


@contextlib.contextmanager
def shard_group(rank: int, world_size: int, master_addr: str, master_port: int,
                config: ParallelConfig = ParallelConfig(), **kwargs) -> Iterator[ShardGroup]:
    """:func:`init_shard_group` as a context manager that always leaves the world again."""
    group = init_shard_group(rank, world_size, master_addr, master_port, config, **kwargs)
    try:
        yield group
    finally:
        destroy_shard_group(group)
