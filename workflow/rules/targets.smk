# Validate and deduplicate the campaign's inputs (by sequence hash) into the targets table, with the
# device tier of each target (`alphafold prepare-targets`; the planner reads inputs the same way).


rule prepare_targets:
    input:
        config["targets"],
    output:
        f"{OUT}/targets.tsv",
    log:
        f"{OUT}/logs/prepare_targets.log",
    conda:
        "../../envs/features.yaml"
    params:
        max_length=config["campaign"]["single_device_max_length"],
        device_counts=",".join(map(str, config["campaign"]["device_counts"])),
    shell:
        "python -m alphafold prepare-targets {input} --output {output}"
        " --single-device-max-length {params.max_length} --device-counts {params.device_counts}"
        " > {log} 2>&1"
