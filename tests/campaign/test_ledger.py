"""The ledger: completion records decide 'done'; events carry failures; the table folds both."""

from __future__ import annotations

import json
import os

import pytest

from alphafold.campaign.ledger import Ledger, classify_exit, file_identity, ledger_table, settings_digest
from alphafold.data.inputs import Target


def test_done_only_with_record_and_matching_settings(tmp_path):
    led = Ledger.of(tmp_path)
    assert not led.is_done("features", "k1", "abc")
    led.mark_done("features", "k1", "abc", 1.5, name="t1")
    assert led.is_done("features", "k1", "abc")
    assert not led.is_done("features", "k1", "other-settings")
    assert not led.is_done("predict", "k1", "abc")
    rec = json.loads(led.record_path("features", "k1").read_text())
    assert rec["seconds"] == 1.5 and rec["name"] == "t1"


def test_a_temporary_left_by_a_kill_is_no_done_key(tmp_path):
    # seen in test_interruptions: a kill during the record's write left its temporary, counted as done
    led = Ledger.of(tmp_path)
    led.mark_done("msa_search", "k1", "abc", 1.0)
    (led.record_path("msa_search", "k1").parent / ".k2.json.bylg9kni.tmp.json").write_text('{"key": "k2"')
    assert led.done_keys("msa_search") == {"k1"}


def test_truncated_record_is_not_done(tmp_path):
    led = Ledger.of(tmp_path)
    path = led.record_path("features", "k1")
    path.parent.mkdir(parents=True)
    path.write_text('{"key": "k1", "settings": "ab')
    assert not led.is_done("features", "k1", "ab")


def test_events_survive_a_torn_last_line(tmp_path):
    led = Ledger.of(tmp_path)
    led.event("k1", "features", "started", attempt=1)
    with open(led.root / "events.jsonl", "a") as fh:
        fh.write('{"key": "k2", "sta')
    led.event("k1", "features", "failed", failure_type="timeout")
    states = [e["state"] for e in led.events()]
    assert states == ["started", "failed"]


def test_table_states(tmp_path):
    led = Ledger.of(tmp_path)
    targets = [Target(k, n, (n,), seq, "in.fasta") for k, n, seq in
               [("k1", "a", "MKV"), ("k2", "b", "GGS"), ("k3", "c", "WW"), ("k4", "d", "AA")]]
    led.event("k1", "features", "started")
    led.mark_done("features", "k1", "s", 2.0)
    led.event("k2", "features", "started")
    led.event("k2", "features", "failed", failure_type="out_of_memory")
    led.event("k2", "features", "started")
    led.event("k2", "features", "failed", failure_type="timeout")
    led.event("k3", "features", "started")
    rows = {(r["key"], r["stage"]): r for r in ledger_table(led, targets, {"k1": "s-1"})}
    assert rows["k1", "features"]["state"] == "done" and rows["k1", "features"]["seconds"] == 2.0
    assert rows["k1", "features"]["batch"] == "s-1"
    assert rows["k2", "features"]["state"] == "failed"
    assert rows["k2", "features"]["failure_type"] == "timeout"
    assert rows["k2", "features"]["attempts"] == 2
    assert rows["k3", "features"]["state"] == "running"
    assert rows["k4", "features"]["state"] == "pending"
    assert rows["k1", "predict"]["state"] == "pending"


@pytest.mark.parametrize("code,timed_out,expected", [
    (2, False, "bad_input"), (-9, False, "out_of_memory"), (137, False, "out_of_memory"),
    (-15, False, "killed"), (1, False, "error"), (-9, True, "timeout"),
])
def test_classify_exit(code, timed_out, expected):
    assert classify_exit(code, timed_out) == expected


def test_settings_digest_and_file_identity(tmp_path):
    assert settings_digest({"a": 1, "b": [2]}) == settings_digest({"b": [2], "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})
    db = tmp_path / "db.fasta"
    db.write_text(">x\nMK\n")
    ident = file_identity(db)
    assert ident["size"] == 6
    db.write_text(">x\nMKV\n")
    os.utime(db, (0, 12345))
    assert file_identity(db) != ident
    assert file_identity(None) is None
