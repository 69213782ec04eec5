"""Sharded collectives on real gloo groups of 1, 2 and 3 ranks, with odd and tiny axis lengths.

Every rank builds the same global tensors from a fixed seed, works on its own shard, and returns what the
collectives gave it; the parent checks each against slicing the global tensor directly.
"""

from __future__ import annotations

import socket
import time
import types

import numpy as np
import pytest
import torch

from alphafold.parallel import comm
from alphafold.parallel.group import ParallelConfig, ShardGroup, free_loopback_port, init_shard_group
from alphafold.parallel.launch import spawn

# Distinct sizes so a swapped axis cannot pass by coincidence; 2 < P = 3 leaves one rank an empty piece.
LENGTHS = (17, 19, 2)
C = 5


def _global_pair(n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + n)
    return torch.randn(n, n + 3, C, generator=gen)


def _rank_checks(group: ShardGroup, lengths: tuple[int, ...]) -> dict[str, np.ndarray]:
    out = {}
    for n in lengths:
        z = _global_pair(n)  # [N, N + 3, C]: rows and columns of different lengths
        rows = comm.shard(z, 0, group)
        out[f"rows{n}"] = rows.numpy().copy()
        out[f"gather{n}"] = comm.gather(rows, 0, n, group).numpy()
        to_last = comm.gather_to(rows, 0, n, group, dst=group.size - 1)
        out[f"gather_to{n}"] = np.array(0) if to_last is None else to_last.numpy()
        # row-sharded [rows_r, N+3, C] -> column-sharded [N, cols_r, C] and back
        cols = comm.reshard(rows, 0, 1, group, n_src=n)
        out[f"cols{n}"] = cols.numpy()
        out[f"back{n}"] = comm.reshard(cols, 1, 0, group).numpy()
        # a trailing axis as the destination, through negative indices
        out[f"chan{n}"] = comm.reshard(rows, 0, -1, group, n_src=n).numpy()
        pieces = [(off, piece.numpy().copy()) for off, piece in comm.stream(rows, 0, n, group)]
        out[f"stream{n}"] = np.concatenate([p for _, p in pieces], axis=0)
        out[f"stream_offsets{n}"] = np.array([off for off, _ in pieces])
    mine = torch.full((2,), float(group.rank + 7))
    out["bcast"] = comm.broadcast_from(mine, group, src=group.size - 1).numpy()
    total = comm.all_reduce_sum(torch.full((3,), float(group.rank + 1)), group)
    out["sum"] = total.numpy()
    out["size"] = np.array(group.size)
    return out


def _expected_rows(z: np.ndarray, p: int, r: int, axis: int) -> np.ndarray:
    start = comm.split_offsets(z.shape[axis], p)[r]
    size = comm.split_sizes(z.shape[axis], p)[r]
    return np.take(z, np.arange(start, start + size), axis=axis)


@pytest.mark.parametrize("n,p", [(17, 1), (17, 2), (19, 3), (2, 3), (0, 2), (7, 7)])
def test_split_sizes_cover_axis_and_differ_by_at_most_one(n, p):
    sizes = comm.split_sizes(n, p)
    assert len(sizes) == p and sum(sizes) == n
    assert max(sizes) - min(sizes) <= 1
    assert comm.split_offsets(n, p) == [sum(sizes[:r]) for r in range(p)]


def test_split_sizes_rejects_no_ranks():
    with pytest.raises(ValueError):
        comm.split_sizes(5, 0)


def test_trivial_group_is_identity_without_copies():
    group = ShardGroup.single()
    x = torch.randn(17, 19, 3)
    assert comm.shard(x, 0, group) is x
    assert comm.gather(x, 0, 17, group) is x
    assert comm.reshard(x, 0, 1, group) is x
    assert comm.all_reduce_sum(x, group) is x
    assert [(off, piece) for off, piece in comm.stream(x, 1, 19, group)] == [(0, x)]


@pytest.mark.distributed
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_collectives_match_slicing_of_the_global_tensor(world_size):
    results = spawn(_rank_checks, world_size, LENGTHS, timeout_s=180)
    assert len(results) == world_size
    for r, got in enumerate(results):
        assert int(got["size"]) == world_size
        np.testing.assert_array_equal(got["sum"], np.full(3, world_size * (world_size + 1) / 2))
        np.testing.assert_array_equal(got["bcast"], np.full(2, world_size + 6.0))
        for n in LENGTHS:
            z = _global_pair(n).numpy()
            np.testing.assert_array_equal(got[f"rows{n}"], _expected_rows(z, world_size, r, 0))
            np.testing.assert_array_equal(got[f"gather{n}"], z)
            if r == world_size - 1:
                np.testing.assert_array_equal(got[f"gather_to{n}"], z)
            else:
                assert got[f"gather_to{n}"].shape == ()
            np.testing.assert_array_equal(got[f"cols{n}"], _expected_rows(z, world_size, r, 1))
            np.testing.assert_array_equal(got[f"back{n}"], got[f"rows{n}"])
            np.testing.assert_array_equal(got[f"chan{n}"], _expected_rows(z, world_size, r, 2))
            np.testing.assert_array_equal(got[f"stream{n}"], z)
            assert list(got[f"stream_offsets{n}"]) == comm.split_offsets(n, world_size)


def _fail_on_rank_one(group: ShardGroup) -> int:
    if group.rank == 1:
        raise RuntimeError("rank one gives up")
    return group.rank


@pytest.mark.distributed
def test_a_failing_rank_fails_the_launch():
    with pytest.raises(Exception, match="rank one gives up"):
        spawn(_fail_on_rank_one, 2, timeout_s=120, config=ParallelConfig(rendezvous_timeout_s=20))


@pytest.mark.parametrize("collective", [comm.gather, comm.gather_to])
def test_a_piece_of_the_wrong_size_is_refused_before_any_communication(collective):
    # of 17 rows over 2 ranks, rank 1 holds 8; a piece of 9 would be padded and misplaced without a word
    group = types.SimpleNamespace(rank=1, size=2, group=None)
    assert comm.split_sizes(17, 2)[1] == 8
    with pytest.raises(ValueError, match="rank 1 holds 9 of 17 along dim 0, expected 8"):
        collective(torch.zeros(9, 3), 0, 17, group)


def _own_rank(group: ShardGroup) -> int:
    return group.rank


@pytest.mark.distributed
def test_a_rendezvous_port_taken_before_rank_0_binds_it_is_replaced(monkeypatch):
    # the port is found free, then another process takes it before rank 0 binds it (here: from the start)
    from alphafold.parallel import launch

    with socket.create_server(("127.0.0.1", 0)) as taken:
        ports = iter([taken.getsockname()[1]])
        monkeypatch.setattr(launch, "free_loopback_port", lambda: next(ports, None) or free_loopback_port())
        assert spawn(_own_rank, 2, timeout_s=120, config=ParallelConfig(rendezvous_timeout_s=30)) == [0, 1]
        assert next(ports, None) is None, "the taken port was tried first"


def test_config_selects_backend_and_device_by_configuration():
    assert ParallelConfig().resolved_backend == "gloo"
    cuda = ParallelConfig(device="cuda")
    assert cuda.resolved_backend == "nccl"
    assert cuda.torch_device(1).type == "cuda"
    assert ParallelConfig(device="cuda", backend="gloo").resolved_backend == "gloo"
    with pytest.raises(ValueError):
        ParallelConfig(backend="nccl", device="cpu")
    with pytest.raises(ValueError):
        ParallelConfig(backend="mpi")


@pytest.mark.distributed
def test_rendezvous_with_a_missing_rank_times_out_instead_of_waiting_forever():
    start = time.monotonic()
    with pytest.raises(Exception, match="(?i)timed? ?out|timeout"):
        init_shard_group(0, 2, "127.0.0.1", free_loopback_port(), ParallelConfig(rendezvous_timeout_s=2))
    assert time.monotonic() - start < 30
    assert not torch.distributed.is_initialized()


def _listening_addresses() -> list[str]:
    """Local addresses of this process's listening TCP sockets, as ``/proc/net/tcp{,6}`` show them
    (hex, e.g. 0100007F for 127.0.0.1, 00000000 for every interface)."""
    import os

    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not os.path.exists(table):  # no IPv6 on this host
            continue
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                fields = line.split()
                # fields: sl, local_address, rem_address, st (0A = LISTEN), ..., inode (index 9)
                if fields[3] == "0A" and fields[9] in inodes:
                    found.append(fields[1].split(":")[0])
    return found


def _is_loopback_hex(address: str) -> bool:
    if len(address) == 8:  # IPv4, little-endian bytes: 127.x.y.z ends in 7F
        return address.endswith("7F")
    # IPv6 ::1, or an IPv4-mapped 127.x.y.z (::ffff:127.x.y.z)
    return address == "00000000000000000000000001000000" or (
        address.startswith("0000000000000000FFFF0000") and address.endswith("7F"))


def _listening(group: ShardGroup) -> list[str]:
    comm.all_reduce_sum(torch.ones(1), group)  # the group is formed and has talked
    return _listening_addresses()


@pytest.mark.distributed
def test_a_group_listens_on_loopback_only():
    # rank 0 holds the rendezvous store; gloo's pairs listen on every rank
    results = spawn(_listening, 2, timeout_s=120, config=ParallelConfig(rendezvous_timeout_s=30))
    assert results[0], "rank 0 holds the rendezvous store: it listens"
    for rank, addresses in enumerate(results):
        assert all(_is_loopback_hex(a) for a in addresses), f"rank {rank} listens on {addresses}"


def _bad_input_on_rank_one(group: ShardGroup) -> int:
    from alphafold.errors import UserError

    if group.rank == 1:
        raise UserError("f.npz", "no such feature", record="msa_feat")
    comm.all_reduce_sum(torch.ones(1), group)  # rank 0 would wait here for rank 1 until the timeout
    return group.rank


@pytest.mark.distributed
def test_bad_input_on_one_rank_is_the_launchs_user_error_at_once():
    from alphafold.errors import UserError

    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        spawn(_bad_input_on_rank_one, 2, timeout_s=120, config=ParallelConfig(rendezvous_timeout_s=60))
    assert str(caught.value) == "f.npz: record 'msa_feat': no such feature"
    assert time.monotonic() - start < 50, "the rank waiting in its collective was ended, not waited for"
