# Feature building for one batch (CPU, no search): `alphafold features --stage features` assembles each
# target's raw features from its MSAs and templates, then `alphafold process-features` (AF2's processing).


rule features:
    input:
        upstream=f"{OUT}/batches/template_search/{{batch}}.json",
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
    threads: config["features"]["build_cpus"]
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("features", "mem_mb"),
        runtime=stage_resource("features", "runtime"),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
