"""Content-addressed store of MSAs and raw features, so a campaign searches each unique sequence once.

An entry is a directory ``ROOT/<kind>/<kk>/<key>/`` holding result files and ``MANIFEST.json``. The key is
the SHA-256 of a canonical JSON *payload* saying what the entry is a function of: the sequence hash, the
database identities (path, sizes, sampled checksums; see ``msa_search.database_identity``) and the tool
settings. Entries are built in ``ROOT/.tmp/`` and renamed into place as a whole (atomic on one file
system); the manifest, written last, records every file's size and SHA-256 and the payload.

An entry is used only if its manifest parses, names the same payload and every file matches its size and
checksum (``.npz`` files must also load). Anything else (a truncated file, a missing manifest, a checksum
mismatch, a stray partial directory) is logged, moved aside and recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
STORE_VERSION = 1


def payload_key(payload: Mapping) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class FeatureStore:
    """Entries by (kind, payload). ``get_or_compute`` is the one call most users need."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def entry_dir(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / key

    def _discard(self, path: Path, reason: str) -> None:
        logger.warning("store entry %s is unusable (%s): discarding it, it will be recomputed", path, reason)
        trash = self.root / ".trash" / f"{path.name}.{uuid.uuid4().hex[:8]}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, trash)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            return
        shutil.rmtree(trash, ignore_errors=True)

    def validate(self, path: Path, payload: Mapping) -> str | None:
        """None when the entry at ``path`` is complete and intact, else why not."""
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            return "no manifest (incomplete entry)"
        try:
            manifest = json.loads(manifest_path.read_text())
            files = manifest["files"]
            stored_payload = manifest["payload"]
        except (ValueError, KeyError, TypeError, OSError) as err:
            return f"manifest unreadable ({err})"
        if json.loads(json.dumps(payload, default=str)) != stored_payload:
            return "manifest describes a different payload"
        present = {p.name for p in path.iterdir()} - {MANIFEST}
        if present != set(files):
            return f"files {sorted(present ^ set(files))} differ from the manifest"
        for name, info in files.items():
            file = path / name
            if file.stat().st_size != info["size"]:
                return f"{name} has {file.stat().st_size} bytes, manifest says {info['size']}"
            if _sha256(file) != info["sha256"]:
                return f"{name} checksum mismatch"
            if name.endswith(".npz"):
                try:
                    with np.load(file, allow_pickle=False) as data:
                        for key in data.files:
                            data[key]
                except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
                    return f"{name} does not load ({err})"
        return None

    def get(self, kind: str, payload: Mapping) -> Path | None:
        """The entry's directory if present and intact; a damaged entry is discarded and None returned."""
        path = self.entry_dir(kind, payload_key(payload))
        if not path.exists():
            return None
        problem = self.validate(path, payload)
        if problem is None:
            return path
        self._discard(path, problem)
        return None

    def put(self, kind: str, payload: Mapping, write: Callable[[Path], Mapping | None]) -> Path:
        """Build an entry: ``write(tmpdir)`` writes its files (and may return metadata); then publish."""
        key = payload_key(payload)
        final = self.entry_dir(kind, key)
        staging_root = self.root / ".tmp"
        staging_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{kind}-{key[:12]}-", dir=staging_root))
        try:
            meta = write(tmp) or {}
            files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
                     for p in sorted(tmp.iterdir()) if p.is_file()}
            manifest = {"store_version": STORE_VERSION, "kind": kind, "key": key, "payload": payload,
                        "files": files, "meta": meta}
            manifest_tmp = tmp / f".{MANIFEST}.tmp"
            manifest_tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
            with open(manifest_tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(manifest_tmp, tmp / MANIFEST)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                if self.validate(final, payload) is None:  # another process won the race
                    return final
                self._discard(final, "replaced by a fresh computation")
            try:
                os.rename(tmp, final)
            except OSError:
                if final.exists() and self.validate(final, payload) is None:
                    return final
                raise
            return final
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def get_or_compute(self, kind: str, payload: Mapping,
                       write: Callable[[Path], Mapping | None]) -> tuple[Path, bool]:
        """(entry directory, reused?) — computes with ``write`` only when no intact entry exists."""
        found = self.get(kind, payload)
        if found is not None:
            logger.info("reusing stored %s %s", kind, found)
            return found, True
        return self.put(kind, payload, write), False

    @staticmethod
    def meta(path: Path) -> dict:
        return json.loads((path / MANIFEST).read_text()).get("meta", {})
