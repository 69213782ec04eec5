# MSA search, template search and feature building for one batch (CPU): `alphafold features` then
# `alphafold process-features` per pending target.


rule features:
    input:
        targets=ancient(f"{OUT}/targets.tsv"),
    output:
        f"{OUT}/batches/features/{{batch}}.json",
    log:
        f"{OUT}/logs/features/{{batch}}.log",
    conda:
        "../../envs/features.yaml"
    params:
        stage="features",
        members=batch_members,
        settings=CAMPAIGN.stage_settings("features"),
    threads: config["features"]["cpus"]
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("features", "mem_mb"),
        runtime=stage_resource("features", "runtime"),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
