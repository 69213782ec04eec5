"""From a target to raw features: MSA searches (cached in the store), merge, templates, features.npz.

The order of MSAs follows AF2 v2.3 ``DataPipeline.process``: UniRef90 (jackhmmer, capped at 10,000 rows),
then BFD/UniRef30 (hhblits), then MGnify (jackhmmer, capped at 501 rows); the merge drops repeated rows.
Modes:

* ``jackhmmer`` (AF2): jackhmmer on --uniref90 and --mgnify; hhblits on --bfd/--uniref30 when given.
* ``hhblits``: one hhblits run on --bfd/--uniref30 only.
* ``mmseqs2``: MMseqs2 on --uniref90 and --mgnify (same caps), ColabFold-style.

A user alignment (an A3M/Stockholm input, or ``--a3m``) replaces the searches.

The work is split into three stages that the workflow runs as separate jobs (``alphafold features --stage
msa|templates|features``; ``all`` runs them in turn): MSA search, template search, then assembly of the raw
features from the files the two searches wrote. Each stage's results are cached in the store.
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
from alphafold.io_utils import load_npz, save_npz_atomic, write_text_atomic

logger = logging.getLogger(__name__)

MSA_MODES = ("jackhmmer", "hhblits", "mmseqs2")
FEATURES_FILE = "features.npz"
MSAS_RECORD = "msas.json"
TEMPLATES_FILE = "templates.npz"
TEMPLATES_RECORD = "templates.json"
STAGES = ("msa", "templates", "features", "all")


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


@dataclasses.dataclass(frozen=True)
class StageMsa:
    """One alignment the MSA stage wrote: ``OUT/<target>/msas/<name>``, its format and checksum."""

    name: str
    path: Path
    format: str  # "sto" or "a3m"
    sha256: str

    def parse(self) -> parsers.Msa:
        text = self.path.read_text()
        if self.format == "sto":
            return parsers.parse_stockholm(text, str(self.path))
        return parsers.parse_a3m(text, str(self.path))

    def a3m_rows(self) -> list[str]:
        """The rows with their insertions, A3M style (the template search's input)."""
        text = self.path.read_text()
        a3m = parsers.stockholm_to_a3m(text, str(self.path)) if self.format == "sto" else text
        return [row for _, row in parsers.parse_fasta(a3m, str(self.path))]


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_stage_record(path: Path, target: Target, stage: str) -> dict:
    """A stage record (``msas.json``/``templates.json``) of ``target``, or a UserError saying what to run."""
    if not path.is_file():
        raise UserError(str(path), f"no {stage} output for target {target.name!r}: run "
                        f"`alphafold features --stage {stage}` on it first", record=target.name)
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(str(path), f"unreadable {stage} record ({err}): run --stage {stage} again",
                        record=target.name) from None
    if not isinstance(record, dict):
        raise UserError(str(path), f"not a {stage} record: run --stage {stage} again", record=target.name)
    if record.get("key") != target.key:
        raise UserError(str(path), f"{stage} output was made for another sequence (key {record.get('key')}, "
                        f"target {target.key}): run --stage {stage} again", record=target.name)
    return record


class FeatureBuilder:
    """Builds raw features for targets in three stages, reusing the store's results across targets and runs.

    Each stage reads the files of the one before from ``OUT/<target>/`` and writes its own, every file under
    a temporary name then renamed, its JSON record last (its presence means the stage is complete):

    * :meth:`search_msas`: ``msas/<database>.{sto,a3m}`` and ``msas.json`` (searches, file checksums);
    * :meth:`search_templates`: ``templates.npz`` (the six raw template arrays) and ``templates.json``
      (hits, the checksum of the MSA that was the search's query);
    * :meth:`assemble`: ``features.npz`` and ``features.json`` (no search: MSAs + templates → features).

    :meth:`build` runs all three.
    """

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
        try:
            from alphafold.data import templates
        except ImportError as err:
            # Template databases were given: zero templates here would be a silent loss, and one the store
            # would keep (its key says templates were searched). A failure of this target instead.
            raise RuntimeError(f"template search configured but it cannot run in this environment ({err})") \
                from err
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
        }
        return msa_features.to_storable(features), info

    def _template_settings(self) -> dict | None:
        """What the template features are a function of (besides the query MSA); None without templates."""
        c = self.config
        if not c.use_templates:
            return None
        database = c.pdb70 if c.template_tool == "hhsearch" else c.pdb_seqres
        return {
            "tool": c.template_tool,
            "database": msa_search.database_identity(database),
            "mmcif_dir": os.path.abspath(c.mmcif_dir),
            "max_template_date": c.max_template_date,
            "max_templates": c.max_templates,
        }

    # -- stage 1: MSAs ----------------------------------------------------------------------------------

    def search_msas(self, target: Target, out_dir: str | os.PathLike) -> Path:
        """Search (or take the supplied alignment): ``OUT/<name>/msas/*`` and ``msas.json``; its path."""
        start = time.perf_counter()
        target_dir = Path(out_dir) / target.name
        user_msa = target.msa or self.config.user_msa
        runs: list[dict] = []
        # (file name, format, text, parsed, where it was read)
        found: list[tuple[str, str, str, parsers.Msa, str]] = []
        if user_msa:
            logger.info("%s: using the supplied alignment %s (no MSA search)", target.name, user_msa)
            msa = _read_user_msa(user_msa, target)
            text = parsers.read_text(user_msa)
            fmt = "sto" if parsers.sniff_format(user_msa, text) == "stockholm" else "a3m"
            found.append((f"user.{fmt}", fmt, text, msa, str(user_msa)))
            runs.append({"database": "user", "tool": "user alignment", "file": os.path.abspath(user_msa),
                         "num_hits": len(msa) - 1})
        else:
            for searcher in self._get_searchers():
                path, meta = self._search(target, searcher)
                text = path.read_text()
                msa = (parsers.parse_stockholm(text, str(path)) if meta["format"] == "sto"
                       else parsers.parse_a3m(text, str(path)))
                found.append((path.name, meta["format"], text, msa, str(path)))
                runs.append({"database": searcher.role, **meta})
        for _, _, _, msa, source in found:
            if not same_query(msa.query, target.sequence):
                raise UserError(source, "MSA query differs from the target sequence", record=target.name)
        files = []
        for name, fmt, text, _, _ in found:
            write_text_atomic(target_dir / "msas" / name, text)
            files.append({"name": name, "format": fmt,
                          "sha256": _sha256_file(target_dir / "msas" / name)})
        record = {
            "target": target.name, "key": target.key, "length": target.length,
            "msa_mode": "user" if user_msa else self.config.msa_mode, "searches": runs, "files": files,
            "seconds": round(time.perf_counter() - start, 3),
        }
        write_text_atomic(target_dir / MSAS_RECORD, json.dumps(record, indent=1, default=str) + "\n")
        logger.info("%s: %d MSA(s) written under %s", target.name, len(files), target_dir / "msas")
        return target_dir / MSAS_RECORD

    def read_msas(self, target: Target, out_dir: str | os.PathLike) -> tuple[dict, list[StageMsa]]:
        """The MSA stage's record and alignments of ``target``, each checked against its checksum."""
        target_dir = Path(out_dir) / target.name
        record = _read_stage_record(target_dir / MSAS_RECORD, target, "msa")
        msas = []
        for entry in record.get("files") or []:
            if not isinstance(entry, dict) or not {"name", "format", "sha256"} <= entry.keys():
                raise UserError(str(target_dir / MSAS_RECORD), f"malformed alignment entry {entry!r}: run "
                                "--stage msa again", record=target.name)
            path = target_dir / "msas" / entry["name"]
            if not path.is_file() or _sha256_file(path) != entry["sha256"]:
                raise UserError(str(path), "alignment missing or changed since the MSA stage wrote it: run "
                                "--stage msa again", record=target.name)
            msas.append(StageMsa(entry["name"], path, entry["format"], entry["sha256"]))
        if not msas:
            raise UserError(str(target_dir / MSAS_RECORD), "the MSA record lists no alignment",
                            record=target.name)
        return record, msas

    # -- stage 2: templates -----------------------------------------------------------------------------

    def search_templates(self, target: Target, out_dir: str | os.PathLike) -> Path:
        """Template features from the first MSA: ``OUT/<name>/templates.npz`` and ``templates.json``."""
        start = time.perf_counter()
        target_dir = Path(out_dir) / target.name
        _, msas = self.read_msas(target, out_dir)
        query_msa = msas[0]  # UniRef90's in AF2 (or the user's), with insertions, is the search's query
        settings = self._template_settings()
        if settings is None:
            logger.info("%s: no template databases given: empty template features (0 templates)", target.name)
            feats, info, reused = msa_features.empty_template_features(target.length), \
                {"used": False, "reason": "no flags"}, False
        else:
            payload = {"kind": "templates", "sequence": target.key, "msa": query_msa.sha256, **settings,
                       "format_version": 1}

            def make(directory: Path) -> dict:
                template_feats, template_info = self._templates(target, query_msa.a3m_rows())
                np.savez(directory / TEMPLATES_FILE, **template_feats)
                return template_info

            entry, reused = self.store.get_or_compute("templates", payload, make)
            feats = load_npz(entry / TEMPLATES_FILE)
            info = {**FeatureStore.meta(entry), **settings}
        save_npz_atomic(target_dir / TEMPLATES_FILE, feats)
        record = {
            "target": target.name, "key": target.key, "msa": query_msa.name, "msa_sha256": query_msa.sha256,
            "templates": info, "reused": reused, "sha256": _sha256_file(target_dir / TEMPLATES_FILE),
            "seconds": round(time.perf_counter() - start, 3),
        }
        write_text_atomic(target_dir / TEMPLATES_RECORD, json.dumps(record, indent=1, default=str) + "\n")
        logger.info("%s: %d template(s) (%s); wrote %s", target.name, int(feats["template_aatype"].shape[0]),
                    "reused" if reused else "searched" if settings else "none searched",
                    target_dir / TEMPLATES_FILE)
        return target_dir / TEMPLATES_RECORD

    def read_templates(self, target: Target, out_dir: str | os.PathLike, msa_sha256: str) -> dict:
        """The template stage's record of ``target``; it must have used the MSA the MSA stage holds now."""
        target_dir = Path(out_dir) / target.name
        record = _read_stage_record(target_dir / TEMPLATES_RECORD, target, "templates")
        path = target_dir / TEMPLATES_FILE
        if not path.is_file() or _sha256_file(path) != record.get("sha256"):
            raise UserError(str(path), "template features missing or changed since the template stage wrote "
                            "them: run --stage templates again", record=target.name)
        if record.get("msa_sha256") != msa_sha256:
            raise UserError(str(path), "template features were searched with an older MSA: run --stage "
                            "templates again", record=target.name)
        return record

    # -- stage 3: features ------------------------------------------------------------------------------

    def assemble(self, target: Target, out_dir: str | os.PathLike) -> Path:
        """Raw features from the stages' files: ``OUT/<name>/features.npz`` and ``features.json``."""
        start = time.perf_counter()
        target_dir = Path(out_dir) / target.name
        msa_record, msas = self.read_msas(target, out_dir)
        template_record = self.read_templates(target, out_dir, msas[0].sha256)
        feature_payload = {
            "kind": "features",
            "sequence": target.key,
            "msas": [m.sha256 for m in msas],
            "templates": template_record["sha256"],
            "format_version": 2,
        }

        def make(directory: Path) -> dict:
            named_msas = {m.name: m.parse() for m in msas}
            feats = msa_features.make_sequence_features(target.sequence, target.name)
            feats.update(msa_features.make_msa_features(list(named_msas.values()), where=target.name))
            feats.update(load_npz(target_dir / TEMPLATES_FILE))
            msa_features.check_raw_features(feats, target.name)
            np.savez(directory / FEATURES_FILE, **feats)
            msa_features.log_msa_sizes(named_msas, int(feats["msa"].shape[0]))
            return {"num_alignments": int(feats["msa"].shape[0])}

        entry, features_reused = self.store.get_or_compute("features", feature_payload, make)
        features_meta = FeatureStore.meta(entry)
        save_npz_atomic(target_dir / FEATURES_FILE, load_npz(entry / FEATURES_FILE))
        record = {
            "target": target.name,
            "key": target.key,
            "aliases": list(target.aliases),
            "length": target.length,
            "alphafold_hpc": __version__,
            "msa_mode": msa_record["msa_mode"],
            "searches": msa_record["searches"],
            "num_alignments": features_meta.get("num_alignments"),
            "templates": template_record["templates"],
            "features_reused": features_reused,
            "store_entry": str(entry),
            "seconds": round(time.perf_counter() - start, 3),
            "outputs": {
                "features": str(target_dir / FEATURES_FILE),
                "msas": [str(m.path) for m in msas],
                "templates": str(target_dir / TEMPLATES_FILE),
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

    def build(self, target: Target, out_dir: str | os.PathLike, stage: str = "all") -> Path:
        """Run one stage (``msa``, ``templates``, ``features``) or ``all`` of them; the last file written."""
        if stage not in STAGES:
            raise UserError(None, f"--stage must be one of {', '.join(STAGES)}, got {stage!r}")
        if stage in ("msa", "all"):
            result = self.search_msas(target, out_dir)
        if stage in ("templates", "all"):
            result = self.search_templates(target, out_dir)
        if stage in ("features", "all"):
            result = self.assemble(target, out_dir)
        return result
