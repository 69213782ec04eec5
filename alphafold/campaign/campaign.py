"""One campaign as the workflow sees it at planning time: validated config, unique targets, batches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alphafold.campaign.config import validate_config
from alphafold.campaign.ledger import file_identity, settings_digest
from alphafold.campaign.plan import Batch, Tier, parse_tiers, plan_batches
from alphafold.campaign.resources import StageResources, batch_resources
from alphafold.data.inputs import Target, TierPolicy, read_targets
from alphafold.errors import UserError

SHEET_SUFFIXES = (".tsv", ".csv", ".tab")


def read_targets_cached(path: str | Path, output_dir: Path) -> list[Target]:
    """:func:`alphafold.data.inputs.read_targets`, cached per input file content.

    Every job of a campaign parses the Snakefile again (on SLURM each batch job does), so reading and
    validating 20,000 sequences would be repeated hundreds of times. A FASTA/A3M/Stockholm file's targets
    are cached as JSON under ``<output_dir>/.cache/``, keyed by the file's bytes and the reader's source
    (a changed validation rule invalidates the cache). Directories and sample sheets, whose targets depend
    on other files, are always read afresh.
    """
    import hashlib
    import json

    from alphafold.data import inputs
    from alphafold.io_utils import write_text_atomic

    p = Path(path)
    if not p.is_file() or p.suffix in SHEET_SUFFIXES or inputs.is_targets_table(p):
        return read_targets([path])
    digest = hashlib.sha256(str(p.resolve()).encode())
    digest.update(p.read_bytes())
    digest.update(Path(inputs.__file__).read_bytes())
    cache = output_dir / ".cache" / f"targets-{digest.hexdigest()[:20]}.json"
    try:
        rows = json.loads(cache.read_text())
        return [Target(r["key"], r["name"], tuple(r["aliases"]), r["sequence"], r["source"], r["msa"])
                for r in rows]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        pass
    targets = read_targets([path])
    rows = [{"key": t.key, "name": t.name, "aliases": list(t.aliases), "sequence": t.sequence,
             "source": t.source, "msa": t.msa} for t in targets]
    write_text_atomic(cache, json.dumps(rows))
    return targets


def check_databases(databases: Mapping) -> None:
    """Every database the config names exists, and the template search has both of its inputs; checked at
    planning, before any job runs (their identities key the stages' completion records)."""
    for name, path in databases.items():
        if name != "max_template_date" and path is not None and not Path(path).exists():
            raise UserError("config", f"databases.{name}: {path} does not exist")
    if (databases.get("pdb_seqres") is None) != (databases.get("mmcif_dir") is None):
        raise UserError("config", "databases.pdb_seqres and databases.mmcif_dir go together: set both for "
                                  "templates, or neither")


@dataclass
class Campaign:
    config: dict
    output_dir: Path
    targets: list[Target]
    tiers: list[Tier]
    policy: TierPolicy
    batches: dict[str, Batch]

    @classmethod
    def from_config(cls, config: Mapping, validated: bool = False) -> Campaign:
        config = dict(config) if validated else validate_config(config)
        targets = read_targets_cached(config["targets"], Path(config["output_dir"]))
        limit = config.get("max_length")
        for t in targets:
            if limit is not None and t.length > limit:
                raise UserError(t.source.rsplit(":", 1)[0], f"sequence of {t.length} residues exceeds "
                                f"max_length {limit} set in the config", record=t.name)
        check_databases(config["databases"])
        tiers = parse_tiers(config["campaign"]["tiers"])
        policy = cls.tier_policy(config)
        return cls(config, Path(config["output_dir"]), targets, tiers, policy,
                   plan_batches(targets, tiers, policy))

    @staticmethod
    def tier_policy(config: Mapping) -> TierPolicy:
        c = config["campaign"]
        return TierPolicy(int(c["single_device_max_length"]), tuple(int(p) for p in c["device_counts"]))

    # -- lookups used by the rules' input functions ---------------------------------------------------

    @property
    def by_key(self) -> dict[str, Target]:
        if not hasattr(self, "_by_key"):
            self._by_key = {t.key: t for t in self.targets}
        return self._by_key

    def batch_of(self) -> dict[str, str]:
        return {key: b.id for b in self.batches.values() for key in b.members}

    def members(self, batch_id: str) -> list[Target]:
        return [self.by_key[k] for k in self.batches[batch_id].members]

    def member_records(self, batch_id: str) -> list[dict]:
        """Plain records of a batch's targets (passed to the batch job as a rule param)."""
        return [{"key": t.key, "name": t.name, "aliases": list(t.aliases), "sequence": t.sequence,
                 "msa": t.msa} for t in self.members(batch_id)]

    def resources(self, stage: str, batch_id: str, attempt: int = 1) -> dict[str, int]:
        batch = self.batches[batch_id]
        devices = batch.devices if stage == "predict" else 1
        return batch_resources(StageResources.from_config(self.config["resources"][stage]), batch, attempt,
                               devices)

    # -- identities of what a stage's results depend on (their digest keys the completion records) ------

    def stage_settings(self, stage: str) -> dict:
        """What a stage's results depend on. Each stage includes the digest of the one before, so a change
        upstream (a new database, another MSA mode) recomputes that stage and every later one."""
        c = self.config
        db = c["databases"]
        msa = {
            "databases": {k: file_identity(db[k]) for k in ("uniref90", "mgnify")},
            "msa_mode": c["features"]["msa_mode"],
        }
        if stage == "msa_search":
            return msa
        templates = {
            "msa_search": settings_digest(msa),
            "databases": {k: file_identity(db[k]) for k in ("pdb_seqres", "mmcif_dir")},
            "max_template_date": db["max_template_date"] if db["pdb_seqres"] else None,
        }
        if stage == "template_search":
            return templates
        features = {
            "template_search": settings_digest(templates),
            "max_msa_clusters": c["features"]["max_msa_clusters"],
            "max_extra_msa": c["features"]["max_extra_msa"],
            "preset": c["model"]["preset"], "num_recycle": c["model"]["num_recycle"],
            "seed": c["model"]["seed"],
        }
        if stage == "features":
            return features
        model = {"features": settings_digest(features), "preset": c["model"]["preset"],
                 "params_dir": c["model"]["params_dir"],
                 "random_params": None if c["model"]["params_dir"] else c["model"]["random_params"]}
        if stage == "predict":
            return model
        return {"predict": settings_digest(model), "relax": c["predict"]["relax"]}
