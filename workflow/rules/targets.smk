# Validate and deduplicate the campaign's inputs (by sequence hash) into the target table.


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
        num_batches=len(BATCHES),
    script:
        "../scripts/prepare_targets.py"
