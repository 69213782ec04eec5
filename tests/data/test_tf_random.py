"""TF-compatible Philox draws: known-answer vectors of the Philox-4x32-10 generator (Salmon et al. 2011,
Random123's kat_vectors) and basic properties of the derived distributions. That the draws are exactly
DeepMind's pipeline's is tested end to end in test_processing.py."""

from __future__ import annotations

import numpy as np
import pytest

from alphafold.data import tf_random


@pytest.mark.parametrize("key, counter, expected", [
    ((0, 0), (0, 0, 0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF,) * 4, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0xA4093822, 0x299F31D0), (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_known_answers(key, counter, expected):
    # key = graph seed (lo, hi); counter = (block lo, block hi, op seed lo, op seed hi)
    words = tf_random.philox_words(key[0] | key[1] << 32, counter[2] | counter[3] << 32, 4,
                                   first_block=counter[0] | counter[1] << 32)
    assert tuple(int(w) for w in words) == expected


def test_derived_draws():
    seeds = tf_random.effective_seeds(5, 3)
    u = tf_random.uniform(seeds, (40, 30), run=2)
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    assert not np.array_equal(u, tf_random.uniform(seeds, (40, 30), run=3))
    perm = tf_random.shuffle(seeds, np.arange(100))
    assert sorted(perm) == list(range(100)) and not np.array_equal(perm, np.arange(100))
    ints = tf_random.uniform_int32(seeds, (1000,), -(2**31), 2**31 - 1)
    assert ints.dtype == np.int32 and ints.min() < -(2**30) and ints.max() > 2**30
    draws = tf_random.categorical(seeds, np.log(np.tile([[0.2, 0.0, 0.8]], (4000, 1)) + 1e-10))
    assert set(draws) <= {0, 2} and abs(np.mean(draws == 2) - 0.8) < 0.03
    assert tf_random.effective_seeds(0, 0) == (0, 2**31 - 1)
