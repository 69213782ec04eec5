"""The batch driver: routes targets to single actors or gangs, feeds them longest first, survives deaths.

Targets are grouped into tiers by gang size (``route``: usually :func:`alphafold.runtime.routing.choose_tp`
on the target's shape). Tiers run one after another, largest gangs first, so the longest targets start
earliest and the resources of one tier are free for the next. Within a tier a pool of gangs (several single
actors, or gangs of P) each takes the longest waiting target whenever it is idle.

Failures:
  * a member of a gang dies (process killed, node lost): the gang is torn down, a new one formed, and the
    target goes back to the head of the queue until ``max_attempts`` is spent; if no new gang can be
    formed (``GangUnavailable``) while other gangs of the tier still work, the tier goes on with those;
  * the model raises (bad features, a bug): the target fails without retry, since it would fail again; a
    gang whose collective was interrupted is rebuilt all the same;
  * a target no allowed gang size can hold is refused before any work starts.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable

import ray

from alphafold.runtime.gang import Gang, GangOptions, GangUnavailable, one_line
from alphafold.runtime.worker import ModelFactory, ServeResult

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Target:
    """One prediction job: a processed-feature file and where its outputs go."""

    name: str
    features_path: str
    output_path: str
    n_res: int
    n_seq: int = 512
    n_extra: int = 5120
    n_templ: int = 4
    n_slices: int = 4


@dataclasses.dataclass
class TargetReport:
    """How a target ended: status "done", "failed" or "refused"."""

    name: str
    status: str
    tp: int = 0
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None
    pids: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Job:
    gang: Gang
    target: Target
    pending: list[ray.ObjectRef]
    results: list[ServeResult]
    start: float


class Driver:
    """Serves a batch of targets through pools of fold-worker gangs (Ray must be initialised)."""

    def __init__(self, factory: ModelFactory, route: Callable[[Target], int],
                 options: GangOptions | None = None, max_attempts: int = 3, single_actors: int = 1,
                 poll_s: float = 1.0):
        if max_attempts < 1 or single_actors < 1:
            raise ValueError("max_attempts and single_actors must be at least 1")
        self.factory = factory
        self.route = route
        self.options = options or GangOptions()
        self.max_attempts = max_attempts
        self.single_actors = single_actors
        self.poll_s = poll_s

    def run(self, targets: Iterable[Target]) -> dict[str, TargetReport]:
        """Predict every target; returns one report per target name."""
        reports: dict[str, TargetReport] = {}
        tiers: dict[int, list[Target]] = {}
        for target in targets:
            try:
                p = self.route(target)
            except ValueError as err:
                reports[target.name] = TargetReport(target.name, "refused", error=str(err))
                log.warning("%s refused: %s", target.name, err)
                continue
            reports[target.name] = TargetReport(target.name, "pending", tp=p)
            tiers.setdefault(p, []).append(target)
        for p in sorted(tiers, reverse=True):
            queue = sorted(tiers[p], key=lambda t: (-t.n_res, t.name))
            log.info("tier P=%d: %d targets, longest %d residues", p, len(queue), queue[0].n_res)
            self._run_tier(p, collections.deque(queue), reports)
        return reports

    def _run_tier(self, p: int, queue: collections.deque[Target], reports: dict[str, TargetReport]) -> None:
        pool_size = self.single_actors if p == 1 else 1
        idle: list[Gang] = []
        jobs: list[_Job] = []
        try:
            for _ in range(min(pool_size, len(queue))):
                gang = self._try_form(p, spare=len(idle))
                if gang is None:
                    break
                idle.append(gang)
            while queue or jobs:
                while idle and queue:
                    gang, target = idle.pop(), queue.popleft()
                    reports[target.name].attempts += 1
                    # The worker pids: which processes serve which target (an operator or a test can
                    # find the one to blame, or to kill).
                    log.info("%s (%d residues) -> gang of %d (pids %s), attempt %d", target.name,
                             target.n_res, p, gang.pids, reports[target.name].attempts)
                    jobs.append(_Job(gang, target, gang.serve(target.name, target.features_path,
                                                              target.output_path), [], time.monotonic()))
                if not jobs:
                    break
                refs = [ref for job in jobs for ref in job.pending]
                ready, _ = ray.wait(refs, num_returns=1, timeout=self.poll_s)
                for ref in ready:
                    job = next((j for j in jobs if ref in j.pending), None)
                    if job is None:
                        continue
                    job.pending.remove(ref)
                    try:
                        job.results.append(ray.get(ref))
                    except ray.exceptions.RayError as err:
                        jobs.remove(job)
                        self._fail(job, err, queue, reports)
                        replacement = self._try_form(p, spare=len(idle) + len(jobs)) if queue else None
                        if replacement is not None:
                            idle.append(replacement)
                        continue
                    if not job.pending:
                        jobs.remove(job)
                        report = reports[job.target.name]
                        report.status, report.seconds = "done", time.monotonic() - job.start
                        report.pids = [r.pid for r in sorted(job.results, key=lambda r: r.rank)]
                        log.info("%s done in %.1f s -> %s", job.target.name, report.seconds,
                                 job.target.output_path)
                        idle.append(job.gang)
        except GangUnavailable as err:
            for target in list(queue) + [job.target for job in jobs]:
                reports[target.name].status, reports[target.name].error = "failed", str(err)
            log.error("tier P=%d abandoned: %s", p, err)
        finally:
            for gang in idle + [job.gang for job in jobs]:
                gang.kill()

    def _form(self, p: int) -> Gang:
        return Gang(self.factory, p, self.options)

    def _try_form(self, p: int, spare: int) -> Gang | None:
        """A new gang of ``p``; None if it cannot be formed while ``spare`` other gangs of the tier go on
        (GangUnavailable only when none would be left to serve the queue)."""
        try:
            return self._form(p)
        except GangUnavailable as err:
            if not spare:
                raise
            log.warning("tier P=%d: no further gang (%s); going on with %d", p, err, spare)
            return None

    def _fail(self, job: _Job, err: ray.exceptions.RayError, queue: collections.deque[Target],
              reports: dict[str, TargetReport]) -> None:
        """Handle a failed member: tear its gang down; requeue the target if a worker died and attempts
        remain, else record the failure."""
        report = reports[job.target.name]
        died = isinstance(err, ray.exceptions.RayActorError) or not self._alive(job.gang)
        job.gang.kill()
        if died and report.attempts < self.max_attempts:
            log.warning("%s: a worker died (%s); retrying on a new gang", job.target.name, type(err).__name__)
            queue.appendleft(job.target)
        else:
            report.status, report.error = "failed", one_line(err)
            log.error("%s failed after %d attempt(s): %s", job.target.name, report.attempts, report.error)

    def _alive(self, gang: Gang) -> bool:
        """False if a member of ``gang`` is dead. A member that does not answer in time is busy, not dead:
        after a model error on one rank its partners wait in a collective until the gang's timeout, and
        counting them dead retried a model error as if a worker had died."""
        refs = [a.pid.remote() for a in gang.actors]
        answered, _ = ray.wait(refs, num_returns=len(refs), timeout=min(30.0, self.options.timeout_s))
        for ref in answered:
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                return False
        return True
