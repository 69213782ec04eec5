"""Proteome-scale campaigns: targets, batch planning, resources, the ledger and progress.

This is the workflow's own logic, kept out of the Snakefile so it is plain, tested Python:

- :mod:`.campaign`  the plan of one campaign: targets (read, validated and deduplicated by
                    :mod:`alphafold.data.inputs`, as ``alphafold prepare-targets`` does) and their batches
- :mod:`.plan`      length tiers and hash-keyed batches (stable when targets are added)
- :mod:`.resources` memory, runtime and device count per batch, escalating with the attempt
- :mod:`.ledger`    per-target completion records and an append-only event log
- :mod:`.config`    the campaign config validated against ``workflow/schemas/config.schema.yaml``
- :mod:`.runner`    what one batch job does: run a stage per pending target, record the result
- :mod:`.progress`  the live progress display (``alphafold campaign status --watch``)
"""
