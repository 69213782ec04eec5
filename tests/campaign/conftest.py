"""Shared helpers of the campaign tests."""

from __future__ import annotations

import random

from tests.conftest import ROOT

EXAMPLE_FASTA = ROOT / "examples" / "proteins.fasta"
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def synthetic_fasta(path, n: int, seed: int = 0, median_length: int = 300) -> None:
    """``n`` random protein sequences with log-normally distributed lengths (a proteome's shape)."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            length = max(20, min(5500, int(rng.lognormvariate(0, 0.6) * median_length)))
            fh.write(f">syn{i:05d}\n{''.join(rng.choices(AMINO, k=length))}\n")
