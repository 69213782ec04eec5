"""The progress display: counts per stage from the ledger, rates and the rendered lines; the CLI."""

from __future__ import annotations

from alphafold.campaign.ledger import Ledger
from alphafold.campaign.progress import campaign_progress, render
from tests.campaign.conftest import EXAMPLE_FASTA


def test_counts_rates_and_rendering(tmp_path):
    led = Ledger.of(tmp_path)
    keys = ["k1", "k2", "k3", "k4", "k5"]
    for k in keys[:3]:
        led.event(k, "features", "started")
        led.mark_done("features", k, "s", 1.0)
    led.event("k4", "features", "started")
    led.event("k4", "features", "failed", failure_type="timeout")
    led.event("k5", "features", "started")
    led.mark_done("features", "other", "s", 1.0)  # not a target of this campaign: ignored
    progress = {sp.stage: sp for sp in campaign_progress(tmp_path, keys)}
    assert list(progress) == ["msa_search", "template_search", "features", "predict", "outputs"]
    feats, predict = progress["features"], progress["predict"]
    assert (feats.done, feats.failed, feats.running, feats.pending) == (3, 1, 1, 0)
    assert feats.failure_types == {"timeout": 1}
    assert (predict.done, predict.pending) == (0, 5)
    text = render([feats, predict], "title", width=10)
    assert "  features        [######....]      3/5      done     1 failed     1 running" in text
    assert "failures: timeout 1" in text


def test_status_and_plan_commands(cli, tmp_path):
    (tmp_path / "targets.tsv").write_text(
        "key\tname\taliases\tlength\ttier\tsource\tmsa\tsequence\n"
        "k1\ta\ta\t3\tsingle\tx:1\t\tMKV\nk2\tb\tb\t3\tsingle\tx:2\t\tGGS\n")
    Ledger.of(tmp_path).mark_done("features", "k1", "s", 1.0)
    out = cli("campaign", "status", tmp_path).stdout
    assert "2 targets" in out and "1/2" in out
    plan = cli("campaign", "plan", f"targets={EXAMPLE_FASTA}", f"output_dir={tmp_path}").stdout
    assert plan.startswith("5 unique targets in ")
    bad = cli("campaign", "status", tmp_path / "nowhere", check=False)
    assert bad.returncode == 2 and "no targets table yet" in bad.stderr
