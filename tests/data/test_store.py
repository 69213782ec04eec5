"""The feature store: reuse of intact entries; damaged or partial entries detected and recomputed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alphafold.data.store import MANIFEST, FeatureStore, payload_key
from alphafold.io_utils import load_npz

PAYLOAD = {
    "sequence": "0123abcd",
    "database": {"path": "/db/uniref90.fasta", "size": 12},
    "settings": {"E": 1e-4},
}


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, directory):
        self.calls += 1
        (directory / "uniref90.sto").write_text("# STOCKHOLM 1.0\nq MKV\n//\n")
        np.savez(directory / "features.npz", msa=np.arange(12 * 17, dtype=np.int32).reshape(12, 17))
        return {"hits": 0, "call": self.calls}


@pytest.fixture
def store(tmp_path):
    return FeatureStore(tmp_path / "store")


def test_second_call_reuses(store):
    compute = Counter()
    path, reused = store.get_or_compute("msa", PAYLOAD, compute)
    assert not reused and compute.calls == 1
    again, reused = store.get_or_compute("msa", PAYLOAD, compute)
    assert reused and again == path and compute.calls == 1
    assert FeatureStore.meta(path) == {"hits": 0, "call": 1}
    assert load_npz(path / "features.npz")["msa"].shape == (12, 17)
    assert not any((store.root / ".tmp").iterdir())


def test_key_depends_on_every_part_of_the_payload(store):
    changed_db = {**PAYLOAD, "database": {"path": "/db/uniref90.fasta", "size": 13}}
    changed_settings = {**PAYLOAD, "settings": {"E": 1e-3}}
    keys = {payload_key(p) for p in (PAYLOAD, changed_db, changed_settings)}
    assert len(keys) == 3
    assert payload_key(dict(reversed(list(PAYLOAD.items())))) == payload_key(PAYLOAD)


def _damage_truncate_npz(path):
    npz = path / "features.npz"
    npz.write_bytes(npz.read_bytes()[:100])


def _damage_flip_byte(path):
    sto = path / "uniref90.sto"
    data = bytearray(sto.read_bytes())
    data[3] ^= 1
    sto.write_bytes(bytes(data))


def _damage_remove_manifest(path):
    (path / MANIFEST).unlink()


def _damage_corrupt_manifest(path):
    (path / MANIFEST).write_text("{not json")


def _damage_extra_file(path):
    (path / "stray.tmp").write_text("x")


def _damage_missing_file(path):
    (path / "uniref90.sto").unlink()


def _damage_other_payload(path):
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["payload"]["sequence"] = "ffff"
    (path / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "damage",
    [
        _damage_truncate_npz,
        _damage_flip_byte,
        _damage_remove_manifest,
        _damage_corrupt_manifest,
        _damage_extra_file,
        _damage_missing_file,
        _damage_other_payload,
    ],
)
def test_damaged_entry_is_recomputed_never_used(store, damage, caplog):
    compute = Counter()
    path, _ = store.get_or_compute("msa", PAYLOAD, compute)
    damage(path)
    assert store.get("msa", PAYLOAD) is None
    assert "unusable" in caplog.text
    path2, reused = store.get_or_compute("msa", PAYLOAD, compute)
    assert not reused and compute.calls == 2 and path2 == path
    assert FeatureStore.meta(path2)["call"] == 2
    assert store.validate(path2, PAYLOAD) is None


def test_failed_computation_leaves_nothing(store):
    def boom(directory):
        (directory / "half.sto").write_text("partial")
        raise RuntimeError("search crashed")

    with pytest.raises(RuntimeError):
        store.get_or_compute("msa", PAYLOAD, boom)
    assert store.get("msa", PAYLOAD) is None
    assert not any((store.root / ".tmp").iterdir())


def test_lost_race_keeps_the_winner(store):
    compute = Counter()

    def racing(directory):
        # another process publishes the same entry while this one computes
        store.put("msa", PAYLOAD, compute)
        return compute(directory)

    path, reused = store.get_or_compute("msa", PAYLOAD, racing)
    assert not reused and FeatureStore.meta(path)["call"] == 1
    assert store.validate(path, PAYLOAD) is None
