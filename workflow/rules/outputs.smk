# Structures and scores for one batch (`alphafold write-outputs`), optional Amber relax (`alphafold relax`).


rule outputs:
    input:
        predict=lambda wildcards: predict_manifest(wildcards.batch),
    output:
        f"{OUT}/batches/outputs/{{batch}}.json",
    log:
        f"{OUT}/logs/outputs/{{batch}}.log",
    conda:
        "../../envs/outputs.yaml"
    params:
        stage="outputs",
        members=batch_members,
        settings=CAMPAIGN.stage_settings("outputs"),
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("outputs", "mem_mb"),
        runtime=stage_resource("outputs", "runtime"),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
