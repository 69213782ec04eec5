# The campaign summary: one ledger table (state, timings, provenance, failure type per target and stage)
# and a JSON of counts.


def summary_outputs():
    return [f"{OUT}/summary/ledger.tsv", f"{OUT}/summary/campaign.json"]


rule summary:
    input:
        targets=f"{OUT}/targets.tsv",
        batches=expand(f"{OUT}/batches/outputs/{{batch}}.json", batch=BATCHES),
    output:
        ledger=f"{OUT}/summary/ledger.tsv",
        counts=f"{OUT}/summary/campaign.json",
    log:
        f"{OUT}/logs/summary.log",
    conda:
        "../../envs/outputs.yaml"
    script:
        "../scripts/summary.py"
