"""Atomic writes leave either the complete new file or the old one, never a partial file."""

from __future__ import annotations

import numpy as np
import pytest

from alphafold.io_utils import atomic_path, load_npz, save_npz_atomic, write_text_atomic


def test_npz_roundtrip_keeps_name_and_dtype(tmp_path):
    out = tmp_path / "sub" / "features.npz"
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "b/c": np.ones(3, np.float32)}
    save_npz_atomic(out, arrays)
    assert sorted(p.name for p in out.parent.iterdir()) == ["features.npz"]
    back = load_npz(out)
    assert back.keys() == arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
        assert back[k].dtype == arrays[k].dtype


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "scores.json"
    write_text_atomic(out, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_load_npz_refuses_pickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, obj=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        load_npz(path)
