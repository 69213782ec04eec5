"""Build a small real HH-suite database (``PREFIX_{a3m,cs219}.ff{data,index}``) from FASTA records.

Each sequence becomes a one-sequence A3M; ``ffindex_build -s`` packs them (sorted, as hhblits needs) and
``cstranslate`` makes the column-state sequences for hhblits' prefilter. HH-suite 3 builds profiles from
the A3Ms when no ``_hhm`` database is present, so none is made (hhmake costs ~0.3 s per entry).
Debian's ``cstranslate`` wrapper is broken (DATA.md), so the CPU-specific build in /usr/libexec/hhsuite
is called directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

HHSUITE_DATA = Path("/usr/share/hhsuite/data")
CSTRANSLATE_BUILDS = ("cstranslate-avx2", "cstranslate-sse4.1", "cstranslate-sse3", "cstranslate-plain")


def tools_available() -> bool:
    return all(shutil.which(t) for t in ("hhblits", "ffindex_build")) and \
        cstranslate() is not None


def cstranslate() -> str | None:
    for name in CSTRANSLATE_BUILDS:
        path = Path("/usr/libexec/hhsuite") / name
        if path.exists():
            flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
            if "avx2" in name and " avx2" not in flags:
                continue
            return str(path)
    return None


def build(records: list[tuple[str, str]], prefix: Path) -> Path:
    """Write the database for ``records`` ((name, sequence) pairs) at ``prefix``; returns the prefix."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    entries = prefix.parent / f"{prefix.name}_entries"
    entries.mkdir()
    for index, (name, sequence) in enumerate(records):
        (entries / f"{index:05d}").write_text(f">{name}\n{sequence}\n")
    env = {**os.environ, "LC_ALL": "C"}

    def run(*cmd: str) -> None:
        subprocess.run(cmd, check=True, capture_output=True, env=env)

    run("ffindex_build", "-s", f"{prefix}_a3m.ffdata", f"{prefix}_a3m.ffindex", str(entries))
    run(cstranslate(), "-f", "-x", "0.3", "-c", "4", "-I", "a3m", "-i", f"{prefix}_a3m",
        "-o", f"{prefix}_cs219", "-A", str(HHSUITE_DATA / "cs219.lib"),
        "-D", str(HHSUITE_DATA / "context_data.lib"), "-b")
    for kind in ("a3m", "cs219"):
        index = Path(f"{prefix}_{kind}.ffindex")
        lines = sorted(index.read_text().splitlines(), key=lambda line: line.split("\t", 1)[0])
        index.write_text("\n".join(lines) + "\n")
    shutil.rmtree(entries)
    return prefix
