"""The live progress display of a campaign: per stage, how many targets are done, failed, running.

Read-only: it folds the ledger (completion records and events) of ``<output_dir>`` against the targets
table, so it can watch a campaign from a login node while SLURM runs it, and costs a directory listing
plus one read of the event log per refresh.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from alphafold.campaign.ledger import STAGES, Ledger


@dataclass
class StageProgress:
    stage: str
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    failure_types: Counter = field(default_factory=Counter)
    finish_times: list[float] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return self.total - self.done - self.failed - self.running

    def rate_per_hour(self, window: int = 50) -> float | None:
        """Completions per hour over the last ``window`` completions (None before two)."""
        times = sorted(self.finish_times)[-window:]
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0]) * 3600

    def eta_seconds(self) -> float | None:
        rate = self.rate_per_hour()
        remaining = self.total - self.done - self.failed
        if remaining <= 0:
            return 0.0
        return None if not rate else remaining / rate * 3600


def campaign_progress(output_dir: str | Path, keys: list[str], stages=STAGES) -> list[StageProgress]:
    ledger = Ledger.of(output_dir)
    wanted = set(keys)
    last: dict[tuple[str, str], dict] = {}
    for ev in ledger.events():
        if ev.get("key") in wanted:
            last[ev["key"], ev.get("stage")] = ev
    result = []
    for stage in stages:
        sp = StageProgress(stage, len(wanted))
        done = ledger.done_keys(stage) & wanted
        sp.done = len(done)
        for key in done:
            ev = last.get((key, stage))
            if ev is not None and ev.get("state") == "done":
                sp.finish_times.append(float(ev["time"]))
        for (key, st), ev in last.items():
            if st != stage or key in done:
                continue
            if ev.get("state") == "failed":
                sp.failed += 1
                sp.failure_types[ev.get("failure_type", "error")] += 1
            elif ev.get("state") == "started":
                sp.running += 1
        result.append(sp)
    return result


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}h{rem // 60:02d}m" if h else f"{rem // 60}m{rem % 60:02d}s"


def render(progress: list[StageProgress], title: str, width: int = 30) -> str:
    lines = [title]
    for sp in progress:
        filled = int(width * sp.done / sp.total) if sp.total else width
        bar = "#" * filled + "." * (width - filled)
        rate = sp.rate_per_hour()
        lines.append(f"  {sp.stage:15s} [{bar}] {sp.done:>6d}/{sp.total:<6d} done  {sp.failed:>4d} failed  "
                     f"{sp.running:>4d} running  {f'{rate:.0f}/h' if rate else '-':>8s}  "
                     f"ETA {_duration(sp.eta_seconds())}")
        if sp.failure_types:
            kinds = ", ".join(f"{k} {v}" for k, v in sp.failure_types.most_common())
            lines.append(f"  {'':15s} failures: {kinds}")
    return "\n".join(lines)


def watch(output_dir: Path, keys: list[str], interval: float, out, once: bool = False) -> int:
    """Print the display every ``interval`` seconds until every stage is finished (or once)."""
    clear = "\x1b[H\x1b[2J" if getattr(out, "isatty", lambda: False)() else ""
    while True:
        progress = campaign_progress(output_dir, keys)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(clear + render(progress, f"campaign {output_dir}: {len(keys)} targets ({stamp})") + "\n")
        out.flush()
        if once or all(sp.done + sp.failed >= sp.total for sp in progress):
            return 0
        time.sleep(interval)
