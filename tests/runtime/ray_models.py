"""A small real torch model with a sharded forward, served by the Ray tests in place of AlphaFold.

``PairMixer`` is the outgoing triangle multiplication's core (Suppl. Alg. 11 without norms and gates):
z_ij = sum_k a_ik b_jk with a, b linear projections of the pair tensor. Run on a group it holds the rows of
z, streams the partner projection b piece by piece from the other ranks, and assembles the output rows; on
one rank it is plain dense math. Weights come from a fixed seed, identical on every process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from alphafold.parallel import comm
from alphafold.parallel.group import ShardGroup


class PairMixer:
    def __init__(self, group: ShardGroup, c: int, hold_dir: str | None):
        gen = torch.Generator().manual_seed(7)
        self.w_a = torch.randn(c, 6, generator=gen) / c**0.5
        self.w_b = torch.randn(c, 6, generator=gen) / c**0.5
        self.group = group
        self.hold_dir = hold_dir

    def predict(self, features):
        if "hold" in features and self.hold_dir:
            # First time this target is seen: record the pid and wait to be killed (the test does it).
            marker = Path(self.hold_dir) / f"{features['hold'].item().decode()}.rank{self.group.rank}.pid"
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                time.sleep(120)
        if int(features.get("fail_on_rank", -1)) == self.group.rank:
            # a model error on this rank alone: its partners go on into the collectives below and wait
            raise ValueError(f"model error on rank {self.group.rank}")
        z = torch.from_numpy(features["pair"])
        n = z.shape[0]
        rows = comm.shard(z, 0, self.group)  # [rows_r, N, C]
        a, b = rows @ self.w_a, rows @ self.w_b  # [rows_r, N, 6]
        out = torch.zeros(rows.shape[0], n, 6)
        for start, b_piece in comm.stream(b, 0, n, self.group):  # b_piece [rows_s, N, 6]
            out[:, start:start + b_piece.shape[0]] = torch.einsum("ikc,jkc->ijc", a, b_piece)
        full = comm.gather(out, 0, n, self.group)  # the test wants the whole answer on rank 0
        return {"out": full.numpy(), "ranks": np.array(self.group.size)}


class PairMixerFactory:
    def __init__(self, c: int, hold_dir: str | None = None):
        self.c, self.hold_dir = c, hold_dir

    def __call__(self, group: ShardGroup) -> PairMixer:
        return PairMixer(group, self.c, self.hold_dir)


class UnloadableFactory:
    """A factory whose model cannot be loaded (as with an unreadable params file)."""

    def __call__(self, group: ShardGroup) -> PairMixer:
        from alphafold.errors import UserError

        raise UserError("params_model_1_ptm.npz", "not a readable .npz params file")
