"""Stage helpers of the campaign runner."""

from __future__ import annotations

import numpy as np

from alphafold.campaign.stages import recorded_predict_seconds


def test_recorded_predict_seconds_reads_the_time_and_survives_unreadable_files(tmp_path):
    good = tmp_path / "t.npz"
    np.savez(good, **{"meta/timings/predict": np.float64(12.5)})
    assert recorded_predict_seconds(good) == 12.5
    old = tmp_path / "old.npz"
    np.savez(old, plddt=np.zeros(3))
    assert recorded_predict_seconds(old) == 0.0
    # a damaged archive (zip magic, broken body) and a missing file: no time on record, no traceback
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    assert recorded_predict_seconds(damaged) == 0.0
    assert recorded_predict_seconds(tmp_path / "missing.npz") == 0.0
