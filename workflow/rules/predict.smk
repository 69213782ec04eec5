# Prediction for one batch with Ray (`alphafold predict-batch`): a local Ray by default, an existing
# cluster with predict.ray_address. `devices` is the tier's device count per target; the profile maps it
# to the scheduler's GPU request (cluster/profiles/*), never this rule.


if config["predict"]["ray_address"]:

    # The heavy work runs in the existing Ray cluster: the prediction jobs are its light clients and run
    # where Snakemake runs (not as SLURM jobs asking for GPUs).
    localrules:
        predict,


rule random_params:
    output:
        f"{OUT}/params/params_{{preset}}.npz",
    log:
        f"{OUT}/logs/random_params_{{preset}}.log",
    conda:
        "../../envs/predict.yaml"
    params:
        evoformer_blocks=config["model"]["random_params"]["evoformer_blocks"],
        extra_msa_blocks=config["model"]["random_params"]["extra_msa_blocks"],
    retries: config["campaign"]["retries"]
    shell:
        "python -m alphafold params random --preset {wildcards.preset}"
        " --evoformer-blocks {params.evoformer_blocks} --extra-msa-blocks {params.extra_msa_blocks}"
        " --out {output} > {log} 2>&1"


rule predict:
    input:
        features=f"{OUT}/batches/features/{{batch}}.json",
        params=params_file(),
    output:
        f"{OUT}/batches/predict/d{{devices}}/{{batch}}.json",
    log:
        f"{OUT}/logs/predict/d{{devices}}/{{batch}}.log",
    conda:
        "../../envs/predict.yaml"
    params:
        stage="predict",
        members=batch_members,
        settings=CAMPAIGN.stage_settings("predict"),
    threads: config["predict"]["cpus"]
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("predict", "mem_mb"),
        runtime=stage_resource("predict", "runtime"),
        devices=lambda wildcards: int(wildcards.devices),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
