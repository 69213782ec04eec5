"""Running the Snakemake workflow (locally or on the single-node test SLURM) from tests, bounded in time.

Every Snakemake run is started in its own process group under ``timeout -s KILL`` (a hung Snakemake
ignores SIGTERM while it waits for jobs) and is killed, with its children, if the test ends early.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from alphafold.campaign.ledger import STAGES, Ledger
from tests.conftest import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_cmd(*args: str, profile: str = "local", timeout: float = 600) -> list[str]:
    return ["timeout", "-s", "KILL", str(int(timeout)), *SNAKEMAKE,
            "--workflow-profile", str(ROOT / "cluster" / "profiles" / profile), *map(str, args)]


def run_snakemake(*args: str, profile: str = "local", timeout: float = 600, env: dict | None = None,
                  check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(snakemake_cmd(*args, profile=profile, timeout=timeout), cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          start_new_session=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-6000:]}")
    return proc


def start_snakemake(*args: str, profile: str = "local", timeout: float = 600, env: dict | None = None,
                    log: Path) -> subprocess.Popen:
    fh = open(log, "w")
    return subprocess.Popen(snakemake_cmd(*args, profile=profile, timeout=timeout), cwd=ROOT, stdout=fh,
                            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a started Snakemake and everything in its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def testcluster(tmp_path_factory):
    """A real single-node SLURM (cluster/testcluster/start.sh), stopped and removed at the end."""
    if os.geteuid() != 0:
        pytest.skip("the test SLURM must be started as root (scripts/test.sh runs as root)")
    for tool in ("slurmctld", "slurmd", "munged", "sbatch"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bash scripts/system-deps.sh)")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "AF_TESTCLUSTER_DIR": str(state)}
    # Port per test session, so two sessions on one machine do not collide.
    env["AF_TESTCLUSTER_PORT"] = str(17000 + os.getpid() % 2000 * 2)
    start_sh = str(ROOT / "cluster/testcluster/start.sh")
    start = subprocess.run(["timeout", "-s", "KILL", "60", "bash", start_sh], env=env, capture_output=True,
                           text=True)
    if start.returncode != 0:
        subprocess.run(["bash", str(ROOT / "cluster/testcluster/stop.sh")], env=env, capture_output=True)
        raise AssertionError(f"test cluster did not start:\n{start.stdout}\n{start.stderr}")
    slurm_env = {"SLURM_CONF": str(state / "etc" / "slurm.conf")}
    try:
        yield slurm_env
    finally:
        subprocess.run(["timeout", "-s", "KILL", "60", "bash", str(ROOT / "cluster/testcluster/stop.sh")],
                       env=env, capture_output=True)


def squeue_all(env: dict) -> list[dict]:
    """Every job the test cluster still lists (MinJobAge keeps finished ones): id, state, name, comment,
    memory request, time limit."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%j|%k|%m|%l|%P|%b"], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=30, check=True).stdout
    fields = ("id", "state", "name", "comment", "mem", "time_limit", "partition", "tres")
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


# ---- Interruption tests: tiny campaigns, marked processes, finished artefacts, whole outputs ----

TINY_LENGTHS = (19, 24, 31)  # distinct, so a target predicted twice or swapped shows in the lengths


def tiny_campaign(tmp_path: Path, *, params_dir: Path | None = None, retries: int | None = None,
                  lengths: Sequence[int] = TINY_LENGTHS, num_recycle: int = 0) -> tuple[Path, list[str]]:
    """A campaign of a few tiny random proteins in one batch, no recycles by default: the output directory
    and the Snakemake arguments (config files and overrides) that run it. ``params_dir``: a directory
    holding ``params_model_1_ptm.npz`` (shared random params) instead of generating them per campaign."""
    rng = random.Random(sum(lengths))
    fasta = tmp_path / "tiny.fasta"
    fasta.write_text("".join(f">tiny{i} length {n}\n{''.join(rng.choices('ACDEFGHIKLMNPQRSTVWY', k=n))}\n"
                             for i, n in enumerate(lengths)))
    extra = {"model": {"num_recycle": num_recycle},
             "campaign": {"tiers": [{"name": "s", "max_length": 1500, "buckets": 1}]}}
    if params_dir is not None:
        extra["model"]["params_dir"] = str(params_dir)
    if retries is not None:
        extra["campaign"]["retries"] = retries
    (tmp_path / "tiny.yaml").write_text(json.dumps(extra))  # JSON is YAML
    out = tmp_path / "out"
    args = ["--configfiles", str(ROOT / "config" / "config.yaml"), str(tmp_path / "tiny.yaml"),
            "--config", f"targets={fasta}", f"output_dir={out}"]
    return out, args


def random_params(directory: Path, preset: str = "model_1_ptm") -> Path:
    """The example config's reduced random-weight model, written once for several campaigns."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "alphafold", "params", "random", "--preset", preset,
                    "--evoformer-blocks", "2", "--extra-msa-blocks", "1",
                    "--out", str(directory / f"params_{preset}.npz")],
                   cwd=ROOT, check=True, capture_output=True, timeout=300)
    return directory


def process_mark() -> dict[str, str]:
    """An environment variable unique to one test: every process it starts (Snakemake, stage commands,
    Ray's daemons and actors, SLURM jobs) inherits it, so leftovers can be found by it and nothing else."""
    return {"AF_TEST_PROCESS_MARK": uuid.uuid4().hex}


def marked_processes(mark: dict[str, str]) -> list[tuple[int, str]]:
    """(pid, command line) of every live process carrying ``mark`` in its environment."""
    (name, value), = mark.items()
    needle = f"{name}={value}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie holds nothing; its parent reaps it
            found.append((int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def no_marked_process_left(mark: dict[str, str], timeout: float = 60) -> None:
    """Fail if a marked process outlives ``timeout`` (Ray's daemons notice their driver's death within
    seconds); whatever is left is killed so the test leaves nothing behind either way."""
    try:
        wait_for(lambda: not marked_processes(mark), timeout=timeout, interval=0.5,
                 what="every process of the interrupted run to end")
    except AssertionError:
        left = marked_processes(mark)
        kill_marked(mark)
        raise AssertionError(f"processes left behind by the interrupted run: {left}") from None


def kill_marked(mark: dict[str, str]) -> None:
    for pid, _ in marked_processes(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def predict_outputs(out: Path) -> dict[str, Path]:
    """Prediction outputs under their final names (key -> file): they appear one by one while the single
    predict-batch call of a batch runs; the ledger records them when the call ends."""
    return {p.stem: p for p in (out / "predict" / "outputs").glob("*/*.npz") if not p.name.startswith(".")}


def finished_keys(out: Path, stage: str) -> set[str]:
    if stage == "predict":
        return set(predict_outputs(out)) | Ledger.of(out).done_keys(stage)
    return Ledger.of(out).done_keys(stage)


def finished_artifacts(out: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every file a finished target owns: its completion records and every file
    they list as outputs (directories: every file inside), plus prediction outputs not yet recorded. A
    recomputed or rewritten file changes inode (atomic rename) or mtime."""
    ledger = Ledger.of(out)
    paths = list(predict_outputs(out).values())
    for stage in STAGES:
        for key in ledger.done_keys(stage):
            paths.append(ledger.record_path(stage, key))
            for value in ledger.read_record(stage, key)["outputs"].values():
                if isinstance(value, str) and Path(value).exists():
                    p = Path(value)
                    paths += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return {str(p): (st.st_ino, st.st_mtime_ns, st.st_size) for p in paths for st in [p.stat()]}


def is_temporary(path: Path) -> bool:
    """A temporary of alphafold.io_utils.atomic_path (left only by a kill during the write)."""
    return path.name.startswith(".") and ".tmp" in path.name


def load_every_output(out: Path) -> int:
    """Open and parse every file of a campaign's output directory by its type (logs excepted); returns how
    many were checked. A truncated or half-written file fails here."""
    import gemmi
    from PIL import Image

    checked = 0
    for path in sorted(out.rglob("*")):
        if path.is_dir() or is_temporary(path) or "logs" in path.relative_to(out).parts:
            continue
        kind = path.suffix
        if kind == ".npz":
            with np.load(path, allow_pickle=False) as f:
                assert f.files, path
                for name in f.files:
                    f[name]  # reads (and CRC-checks) every array
        elif kind == ".json":
            json.loads(path.read_text())
        elif kind == ".jsonl":
            assert list(Ledger(path.parent).events()), path
        elif kind in (".pdb", ".cif"):
            structure = gemmi.read_structure(str(path))
            assert structure[0].count_atom_sites() > 0, path
        elif kind == ".png":
            with Image.open(path) as im:
                im.load()
        elif kind == ".tsv":
            rows = [line.split("\t") for line in path.read_text().splitlines()]
            assert len(rows) > 1 and len({len(r) for r in rows}) == 1, path
        elif kind == ".fasta":
            assert path.read_text().startswith(">"), path
        elif kind == ".sto":
            assert path.read_text().rstrip().endswith("//"), path
        elif kind == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path
        else:
            continue
        checked += 1
    return checked


@pytest.fixture(scope="session")
def shared_params(tmp_path_factory):
    """The reduced random-weight model, generated once for every tiny campaign of the session."""
    return random_params(tmp_path_factory.mktemp("params"))


def starts(out: Path, stage: str) -> dict[str, int]:
    """How many times each target was started in ``stage`` (the ledger's ``started`` events)."""
    counts: dict[str, int] = {}
    for ev in Ledger.of(out).events():
        if ev["stage"] == stage and ev["state"] == "started":
            counts[ev["key"]] = counts.get(ev["key"], 0) + 1
    return counts


def changed(before: dict, out: Path) -> list[str]:
    """The files of ``before`` (a :func:`finished_artifacts` snapshot) that are gone or were rewritten."""
    now = finished_artifacts(out)
    return sorted(p for p, ident in before.items() if now.get(p) != ident)


def check_finished_campaign(out: Path, lengths: Sequence[int] = TINY_LENGTHS) -> None:
    """Every stage done for every target of a :func:`tiny_campaign`, every output loads, and each target's
    structure has its own length."""
    import gemmi

    counts = json.loads((out / "summary" / "campaign.json").read_text())["counts"]
    assert counts == {stage: {"done": len(lengths)} for stage in STAGES}, counts
    assert load_every_output(out) > 10 * len(lengths)
    for i, n in enumerate(lengths):
        structure = gemmi.read_structure(str(out / "targets" / f"tiny{i}" / "ranked_0.pdb"))
        assert len(structure[0][0]) == n
