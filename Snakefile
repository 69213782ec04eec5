# alphafold-hpc campaign workflow: validated inputs -> MSA search -> template search -> features (CPU)
# -> prediction (Ray) -> outputs (+ optional relax) -> campaign summary. Every rule works on a batch of
# targets (see alphafold/campaign/plan.py); the logic lives in the alphafold.campaign package.
#
#   snakemake --workflow-profile cluster/profiles/local                  # this machine
#   snakemake --workflow-profile cluster/profiles/slurm                  # a SLURM cluster
#   snakemake ... --config targets=proteome.faa output_dir=results/proteome
# After an interruption: snakemake --unlock ... ; then the same command again (profiles set
# --rerun-incomplete); finished targets are never recomputed.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/targets.smk"
include: "workflow/rules/msa_search.smk"
include: "workflow/rules/template_search.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/outputs.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        summary_outputs(),
