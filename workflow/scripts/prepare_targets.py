"""Snakemake script of the workflow's rules: hand the job to alphafold.campaign (all logic lives there)."""

from alphafold.campaign.jobs import main_from_snakemake

main_from_snakemake(snakemake)  # noqa: F821 (injected by Snakemake)
