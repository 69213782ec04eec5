"""From a target to raw features: MSA searches (cached in the store), merge, templates, features.npz.

The order of MSAs follows AF2 v2.3 ``DataPipeline.process``: UniRef90 (jackhmmer, capped at 10,000 rows),
then BFD/UniRef30 (hhblits), then MGnify (jackhmmer, capped at 501 rows); the merge drops repeated rows.
Modes:

* ``jackhmmer`` (AF2): jackhmmer on --uniref90 and --mgnify; hhblits on --bfd/--uniref30 when given.
* ``hhblits``: one hhblits run on --bfd/--uniref30 only.
* ``mmseqs2``: MMseqs2 on --uniref90 and --mgnify (same caps), ColabFold-style.

A user alignment (an A3M/Stockholm input, or ``--a3m``) replaces the searches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from alphafold import __version__
from alphafold.data import msa_features, msa_search, parsers
from alphafold.data.inputs import Target
from alphafold.data.store import FeatureStore
from alphafold.errors import UserError
from alphafold.io_utils import atomic_path, load_npz, save_npz_atomic, write_text_atomic

logger = logging.getLogger(__name__)

MSA_MODES = ("jackhmmer", "hhblits", "mmseqs2")
FEATURES_FILE = "features.npz"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the features stage searches, with what, and where templates come from."""

    msa_mode: str = "jackhmmer"
    uniref90: str | None = None
    mgnify: str | None = None
    bfd: str | None = None
    uniref30: str | None = None
    jackhmmer_iterations: int = 1
    uniref_max_hits: int = msa_search.UNIREF90_MAX_HITS
    mgnify_max_hits: int = msa_search.MGNIFY_MAX_HITS
    cpus: int = 2
    pdb_seqres: str | None = None
    mmcif_dir: str | None = None
    max_template_date: str | None = None
    max_templates: int = 4
    user_msa: str | None = None  # one alignment for every target (--a3m)
    template_tool: str = "hmmsearch"  # or "hhsearch" (of pdb70)
    pdb70: str | None = None

    def __post_init__(self):
        if self.msa_mode not in MSA_MODES:
            raise UserError(None, f"--msa-mode must be one of {', '.join(MSA_MODES)}, got {self.msa_mode!r}")
        template_db = self.pdb70 if self.template_tool == "hhsearch" else self.pdb_seqres
        db_flag = "--pdb70" if self.template_tool == "hhsearch" else "--pdb-seqres"
        template_flags = (self.pdb_seqres or self.pdb70, self.mmcif_dir, self.max_template_date)
        if any(template_flags) and not (all(template_flags) and template_db):
            raise UserError(None, f"template search needs all of {db_flag}, --mmcif-dir, --max-template-date")

    @property
    def use_templates(self) -> bool:
        return bool(self.mmcif_dir)

    def searchers(self) -> list:
        """The search tools, in AF2's MSA order."""
        jack = msa_search.JackhmmerSettings
        hh_dbs = [d for d in (self.bfd, self.uniref30) if d]
        out: list = []
        if self.msa_mode == "hhblits":
            if not hh_dbs:
                raise UserError(None, "--msa-mode hhblits needs --bfd and/or --uniref30 (HH-suite databases)")
            return [msa_search.HHblitsSearch(hh_dbs, "bfd_uniref30", cpus=self.cpus)]
        if not self.uniref90:
            raise UserError(
                None, f"--msa-mode {self.msa_mode} needs --uniref90 (or give an alignment: --a3m)"
            )
        if self.msa_mode == "mmseqs2":
            mm = msa_search.MmseqsSettings
            out.append(
                msa_search.MmseqsSearch(
                    self.uniref90, "uniref90", mm(max_rows=self.uniref_max_hits), cpus=self.cpus
                )
            )
            if self.mgnify:
                out.append(
                    msa_search.MmseqsSearch(
                        self.mgnify, "mgnify", mm(max_rows=self.mgnify_max_hits), cpus=self.cpus
                    )
                )
            return out
        out.append(
            msa_search.JackhmmerSearch(
                self.uniref90,
                "uniref90",
                jack(iterations=self.jackhmmer_iterations, max_rows=self.uniref_max_hits),
                cpus=self.cpus,
            )
        )
        if hh_dbs:
            out.append(msa_search.HHblitsSearch(hh_dbs, "bfd_uniref30", cpus=self.cpus))
        if self.mgnify:
            out.append(
                msa_search.JackhmmerSearch(
                    self.mgnify,
                    "mgnify",
                    jack(iterations=self.jackhmmer_iterations, max_rows=self.mgnify_max_hits),
                    cpus=self.cpus,
                )
            )
        return out


def _database_paths(searcher) -> list[str]:
    return list(getattr(searcher, "databases", None) or [searcher.database])


_AMBIGUOUS_TO_X = str.maketrans("BZUOJ", "XXXXX")


def same_query(a: str, b: str) -> bool:
    """Equal sequences, up to tools writing AF2's unknown-letters (B, Z, U, O, J) as X."""
    return a == b or a.translate(_AMBIGUOUS_TO_X) == b.translate(_AMBIGUOUS_TO_X)


def _read_user_msa(path: str, target: Target) -> parsers.Msa:
    text = parsers.read_text(path)
    fmt = parsers.sniff_format(path, text)
    if fmt not in ("a3m", "stockholm"):
        raise UserError(path, "user alignment must be A3M or Stockholm with the query first")
    msa = parsers.parse_a3m(text, path) if fmt == "a3m" else parsers.parse_stockholm(text, path)
    if not same_query(msa.query.replace("-", ""), target.sequence):
        raise UserError(
            path,
            f"the alignment's query (first row) differs from target {target.name!r}'s sequence",
            record=msa.descriptions[0].split()[0] if msa.descriptions[0] else None,
        )
    return msa


class FeatureBuilder:
    """Builds raw features for targets, reusing the store's MSAs and features across targets and runs."""

    def __init__(self, config: DataConfig, store: FeatureStore):
        self.config = config
        self.store = store
        self._searchers = None
        self._template_searcher = None

    def _get_searchers(self):
        if self._searchers is None:
            self._searchers = self.config.searchers()
            self._identities = {
                s.role: {os.path.basename(p): msa_search.database_identity(p) for p in _database_paths(s)}
                for s in self._searchers
            }
        return self._searchers

    def _search(self, target: Target, searcher) -> tuple[Path, dict]:
        payload = {
            "kind": "msa",
            "sequence": target.key,
            "sequence_length": target.length,
            "role": searcher.role,
            "databases": self._identities[searcher.role],
            "settings": searcher.cache_settings(),
        }
        filename = f"{searcher.role}.{'sto' if searcher.cache_settings()['tool'] == 'jackhmmer' else 'a3m'}"

        def run(directory: Path) -> dict:
            result = searcher.search(target.name, target.sequence)
            (directory / filename).write_text(result.text)
            return {
                "tool": result.tool,
                "tool_version": result.tool_version,
                "format": result.format,
                "file": filename,
                "num_hits": result.num_hits,
                "seconds": round(result.seconds, 3),
            }

        path, reused = self.store.get_or_compute("msa", payload, run)
        meta = FeatureStore.meta(path)
        meta.update(reused=reused, databases=_database_paths(searcher), settings=searcher.cache_settings())
        return path / meta["file"], meta

    def _templates(self, target: Target, msa_rows: list[str]) -> tuple[dict, dict]:
        c = self.config
        if not c.use_templates:
            logger.info("%s: no template databases given: empty template features (0 templates)", target.name)
            return msa_features.empty_template_features(target.length), {"used": False, "reason": "no flags"}
        try:
            from alphafold.data import templates
        except ImportError:
            logger.warning(
                "%s: template search is not available in this build (alphafold.data.templates "
                "missing): empty template features (0 templates)",
                target.name,
            )
            return msa_features.empty_template_features(target.length), {
                "used": False,
                "reason": "module missing",
            }
        if self._template_searcher is None:
            self._template_searcher = templates.TemplateSearcher(
                c.pdb_seqres,
                c.mmcif_dir,
                c.max_template_date,
                max_hits=c.max_templates,
                cpus=c.cpus,
                tool=c.template_tool,
                hhsearch_db=c.pdb70,
            )
        start = time.perf_counter()
        features, hits = self._template_searcher.search(target.sequence, msa_rows)
        info = {
            "used": True,
            "num_templates": int(np.asarray(features["template_aatype"]).shape[0]),
            "hits": hits,
            "seconds": round(time.perf_counter() - start, 3),
            "tool": c.template_tool,
            "database": msa_search.database_identity(
                c.pdb70 if c.template_tool == "hhsearch" else c.pdb_seqres
            ),
            "mmcif_dir": os.path.abspath(c.mmcif_dir),
            "max_template_date": c.max_template_date,
        }
        return msa_features.to_storable(features), info

    def build(self, target: Target, out_dir: str | os.PathLike) -> Path:
        """Write ``out_dir/<name>/{features.npz, msas/*, features.json}``; returns the features path."""
        start = time.perf_counter()
        target_dir = Path(out_dir) / target.name
        user_msa = target.msa or self.config.user_msa
        runs: list[dict] = []
        named_msas: dict[str, parsers.Msa] = {}
        msa_files: dict[str, Path] = {}
        if user_msa:
            logger.info("%s: using the supplied alignment %s (no MSA search)", target.name, user_msa)
            named_msas["user"] = _read_user_msa(user_msa, target)
            msa_files["user" + Path(user_msa).suffix] = Path(user_msa)
            runs.append(
                {
                    "database": "user",
                    "tool": "user alignment",
                    "file": os.path.abspath(user_msa),
                    "num_hits": len(named_msas["user"]) - 1,
                }
            )
        else:
            for searcher in self._get_searchers():
                path, meta = self._search(target, searcher)
                text = path.read_text()
                named_msas[searcher.role] = (
                    parsers.parse_stockholm(text, str(path))
                    if meta["format"] == "sto"
                    else parsers.parse_a3m(text, str(path))
                )
                msa_files[path.name] = path
                runs.append({"database": searcher.role, **meta})
        for role, msa in named_msas.items():
            if not same_query(msa.query, target.sequence):
                raise UserError(
                    str(msa_files.get(role, role)),
                    f"{role} MSA query differs from the target sequence",
                    record=target.name,
                )
        first = next(iter(msa_files.values()))
        first_text = parsers.read_text(first)
        # the first MSA (UniRef90 in AF2) with its insertions, A3M style, is the template search's input
        a3m_text = (
            parsers.stockholm_to_a3m(first_text, str(first))
            if first_text.lstrip().startswith("# STOCKHOLM")
            else first_text
        )
        template_rows = [row for _, row in parsers.parse_fasta(a3m_text, str(first))]
        feature_payload = {
            "kind": "features",
            "sequence": target.key,
            "msas": [hashlib.sha256(p.read_bytes()).hexdigest() for p in msa_files.values()],
            "templates": [
                self.config.template_tool if self.config.use_templates else None,
                self.config.pdb_seqres and msa_search.database_identity(self.config.pdb_seqres),
                self.config.pdb70 and msa_search.database_identity(self.config.pdb70),
                self.config.mmcif_dir and os.path.abspath(self.config.mmcif_dir),
                self.config.max_template_date,
                self.config.max_templates,
            ],
            "format_version": 1,
        }

        def make(directory: Path) -> dict:
            feats = msa_features.make_sequence_features(target.sequence, target.name)
            feats.update(msa_features.make_msa_features(list(named_msas.values()), where=target.name))
            template_feats, template_info = self._templates(target, template_rows)
            feats.update(template_feats)
            msa_features.check_raw_features(feats, target.name)
            np.savez(directory / FEATURES_FILE, **feats)
            msa_features.log_msa_sizes(named_msas, int(feats["msa"].shape[0]))
            return {"num_alignments": int(feats["msa"].shape[0]), "templates": template_info}

        entry, features_reused = self.store.get_or_compute("features", feature_payload, make)
        features_meta = FeatureStore.meta(entry)
        feats = load_npz(entry / FEATURES_FILE)
        save_npz_atomic(target_dir / FEATURES_FILE, feats)
        for name, src in msa_files.items():
            with atomic_path(target_dir / "msas" / name) as tmp:
                tmp.write_bytes(src.read_bytes())
        record = {
            "target": target.name,
            "key": target.key,
            "aliases": list(target.aliases),
            "length": target.length,
            "alphafold_hpc": __version__,
            "msa_mode": "user" if user_msa else self.config.msa_mode,
            "searches": runs,
            "num_alignments": features_meta.get("num_alignments"),
            "templates": features_meta.get("templates"),
            "features_reused": features_reused,
            "store_entry": str(entry),
            "seconds": round(time.perf_counter() - start, 3),
            "outputs": {
                "features": str(target_dir / FEATURES_FILE),
                "msas": [str(target_dir / "msas" / n) for n in msa_files],
            },
        }
        write_text_atomic(target_dir / "features.json", json.dumps(record, indent=1, default=str) + "\n")
        logger.info(
            "%s: %d MSA rows, %s; wrote %s",
            target.name,
            record["num_alignments"],
            "reused" if features_reused else "computed",
            target_dir / FEATURES_FILE,
        )
        return target_dir / FEATURES_FILE
