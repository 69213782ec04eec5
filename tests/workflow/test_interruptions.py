"""Resumable reruns: kill -9 of a running Snakemake, then the documented rerun command.

The campaign here is real: three of the example proteins searched with jackhmmer (pyhmmer) against the
bundled UniProt subset by `alphafold features`, then processed by `alphafold process-features`, all in one
batch (one class, one bucket) so the kill lands between targets of one job or in the middle of one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from alphafold.campaign.ledger import Ledger
from tests.campaign.conftest import EXAMPLE_FASTA
from tests.workflow.conftest import kill_group, run_snakemake, start_snakemake, wait_for

pytestmark = [pytest.mark.slow]


def three_targets(path):
    records = EXAMPLE_FASTA.read_text().split(">")[1:4]
    path.write_text("".join(">" + r for r in records))
    return path


def campaign_args(tmp_path):
    extra = tmp_path / "one_batch.yaml"
    extra.write_text("campaign:\n  tiers:\n    - {name: s, max_length: 1500, buckets: 1}\n")
    from tests.conftest import ROOT

    out = tmp_path / "out"
    args = ["--configfiles", str(ROOT / "config" / "config.yaml"), str(extra),
            "--config", f"targets={three_targets(tmp_path / 'three.fasta')}", f"output_dir={out}"]
    return out, args


def test_kill_9_of_snakemake_then_rerun_recomputes_nothing_finished(tmp_path):
    out, args = campaign_args(tmp_path)
    manifest = out / "batches" / "features" / "s-0.json"
    proc = start_snakemake(*args, "--", str(manifest), log=tmp_path / "first.log", timeout=600)
    ledger = Ledger.of(out)
    try:
        wait_for(lambda: len(ledger.done_keys("features")) >= 1 or proc.poll() is not None, timeout=400,
                 what="the first completed target")
    finally:
        kill_group(proc)  # SIGKILL to Snakemake and the stage command it was running
    finished = {k: ledger.record_path("features", k).stat().st_mtime_ns for k in ledger.done_keys("features")}
    assert 1 <= len(finished) < 3, (tmp_path / "first.log").read_text()[-3000:]
    assert not manifest.exists()

    # The documented rerun: unlock (Snakemake was killed holding its lock), then the same command.
    run_snakemake(*args, "--unlock", timeout=120)
    run_snakemake(*args, "--", str(manifest), timeout=600)

    done = json.loads(manifest.read_text())["done"]
    assert len(done) == 3
    for key, mtime in finished.items():
        assert ledger.record_path("features", key).stat().st_mtime_ns == mtime, "a finished target was redone"
    starts: dict[str, int] = {}
    for ev in ledger.events():
        if ev["state"] == "started":
            starts[ev["key"]] = starts.get(ev["key"], 0) + 1
    assert all(starts[k] == 1 for k in finished), starts
    # No corrupt output: every processed feature file under its final name loads whole, no pickle.
    for key in done:
        record = ledger.read_record("features", key)
        with np.load(record["outputs"]["processed"], allow_pickle=False) as f:
            assert f["aatype"].shape[0] == 2  # num_recycle 1 -> 2 samples
