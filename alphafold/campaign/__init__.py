"""Proteome-scale campaigns: targets, batch planning, resources, the ledger and progress.

This is the workflow's own logic, kept out of the Snakefile so it is plain, tested Python:

- :mod:`.targets`   read FASTA / A3M directory / sample sheet, validate, sanitise names, dedupe by hash
- :mod:`.plan`      length tiers and hash-keyed batches (stable when targets are added)
- :mod:`.resources` memory, runtime and device count per batch, escalating with the attempt
- :mod:`.ledger`    per-target completion records and an append-only event log
- :mod:`.config`    the campaign config validated against ``workflow/schemas/config.schema.yaml``
- :mod:`.runner`    what one batch job does: run a stage per pending target, record the result
- :mod:`.progress`  the live progress display (``alphafold campaign status --watch``)
"""
