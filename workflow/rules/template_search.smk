# Template search for one batch (CPU): `alphafold features --stage templates` per target whose MSA search
# finished (the MSA manifest lists its files): hmmsearch of the first MSA against pdb_seqres, mmCIF
# parsing; zero templates when no template database is configured.


rule template_search:
    input:
        upstream=f"{OUT}/batches/msa_search/{{batch}}.json",
    output:
        f"{OUT}/batches/template_search/{{batch}}.json",
    log:
        f"{OUT}/logs/template_search/{{batch}}.log",
    conda:
        "../../envs/features.yaml"
    params:
        stage="template_search",
        members=batch_members,
        settings=CAMPAIGN.stage_settings("template_search"),
    threads: config["features"]["template_cpus"]
    retries: config["campaign"]["retries"]
    resources:
        mem_mb=stage_resource("template_search", "mem_mb"),
        runtime=stage_resource("template_search", "runtime"),
        attempt=job_attempt,
    script:
        "../scripts/run_batch.py"
