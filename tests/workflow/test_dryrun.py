"""Dry runs of the whole workflow: the DAG of batches, and the SLURM profile's mapping of a batch's
`devices` to GPUs on the GPU partition (rules never name a partition or a GPU)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.campaign.conftest import EXAMPLE_FASTA
from tests.conftest import ROOT
from tests.workflow.conftest import run_snakemake

pytestmark = [pytest.mark.slow]


def proteome() -> Path | None:
    import pyhmmer

    p = Path(pyhmmer.__file__).parent / "tests" / "data" / "seqs" / "938293.PRJEB85.HG003687.faa"
    return p if p.is_file() else None


@pytest.mark.skipif(proteome() is None, reason="pyhmmer's test proteome is not installed")
def test_dry_run_maps_devices_to_gpus_only_in_the_slurm_profile(tmp_path):
    # Two example proteins and one real 1,600-residue protein (2 devices at 1,500 residues per device).
    records = EXAMPLE_FASTA.read_text().split(">")[1:3]
    text = proteome().read_text()
    start = text.index(">938293.PRJEB85.HG003687_175 ")
    records.append(text[start + 1:text.index(">", start + 1)])
    fasta = tmp_path / "three.fasta"
    fasta.write_text("".join(">" + r for r in records))
    extra = tmp_path / "tiers.yaml"
    extra.write_text("campaign:\n  tiers:\n    - {name: s, max_length: 400, buckets: 1}\n"
                     "    - {name: xl, max_length: 2121, buckets: 1}\n")
    out = tmp_path / "out"
    args = ["-n", "--configfiles", str(ROOT / "config" / "config.yaml"), str(extra),
            "--config", f"targets={fasta}", f"output_dir={out}"]
    text = run_snakemake(*args, profile="slurm", timeout=300).stdout
    jobs = {}
    for block in re.split(r"\n(?=\[\w{3} \w{3} )", text):
        m = re.search(r"^rule (\w+):", block, re.M)
        if m:
            jobs.setdefault(m.group(1), []).append(block)
    stages = ("msa_search", "template_search", "features", "predict", "outputs")
    assert {k: len(v) for k, v in jobs.items() if k in stages} == {stage: 2 for stage in stages}
    predict = {re.search(r"batch=(\S+?)[,\s]", b).group(1): b for b in jobs["predict"]}
    assert set(predict) == {"s-0", "xl-0"}
    assert "slurm_partition=gpu" in predict["xl-0"] and re.search(r"\bgpu=2\b", predict["xl-0"])
    assert re.search(r"\bgpu=1\b", predict["s-0"])
    assert f"{out}/batches/predict/d2/xl-0.json" in predict["xl-0"]
    for block in jobs["msa_search"] + jobs["template_search"] + jobs["features"]:
        assert "slurm_partition=cpu" in block and "gpu=" not in block
    # Each CPU stage consumes the previous one's batch manifest.
    features = {re.search(r"batch=(\S+?)[,\s]", b).group(1): b for b in jobs["features"]}
    assert f"input: {out}/batches/template_search/xl-0.json" in features["xl-0"]
    # The same DAG on the local profile asks for no partition and no GPU, only `devices`.
    local = run_snakemake(*args, profile="local", timeout=300).stdout
    assert "slurm_partition" not in local and not re.search(r"\bgpu=", local)
    assert re.search(r"\bdevices=2\b", local)
