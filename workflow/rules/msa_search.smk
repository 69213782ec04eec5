# MSA search for one batch (CPU): `alphafold features --stage msa` per pending target (jackhmmer by
# default, or the target's own alignment). Writes each target's MSAs; the manifest lists them.


rule msa_search:
    input:
        targets=ancient(f"{OUT}/targets.tsv"),
    output:
        f"{OUT}/batches/msa_search/{{batch}}.json",
    log:
        f"{OUT}/logs/msa_search/{{batch}}.log",
    conda:
        "../../envs/features.yaml"
    params:
        stage="msa_search",
        members=batch_members,
        settings=CAMPAIGN.stage_settings("msa_search"),
    threads: config["features"]["cpus"]
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("msa_search", "mem_mb"),
        runtime=stage_resource("msa_search", "runtime"),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
