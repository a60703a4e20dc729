"""The conformance run: checks x backends, hypothesis-driven with shrinking, optionally in parallel.

A *check* is one family of cases for one backend: generated exact-regime, realistic and extreme
cases, invalid calls, fixed cases, the covering array of parameter classes (conformance.coverage),
reduced workloads, oracle-free properties. Each runs in its own
job with its own backend worker, so `-j N` runs N of them at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from conformance import strategies
from conformance.coverage import covering_cases
from conformance.execute import run_case, run_invalid
from conformance.fixed import worked_cases, workload_cases
from conformance.profiles import PROFILES, Profile
from conformance.properties import PROPERTIES, Problem, check_property
from runtime.interrupts import ignore_interrupts
from runtime.records import BackendInfo, Record, Status
from runtime.worker import LoadError, Worker, die_with_parent

DEFAULT_DB = Path(".conformance/db")
GENERATED = {"exact": strategies.exact_cases, "realistic": strategies.realistic_cases,
             "extreme": strategies.extreme_cases}
HYPOTHESIS_CHECKS = (*GENERATED, "invalid")  # drawn by hypothesis: a failure is shrunk
CHECKS = (*HYPOTHESIS_CHECKS, "worked", "covering", "workload", "property")
SHRINK_TIMEOUT_S = 2.0  # at least this long, and 4x the slowest case before the failure
SHRINK_BUDGET_S = 120.0  # wall time a check may spend shrinking; then the smallest failure so far


@dataclass(frozen=True)
class Job:
    backend: str
    check: str
    profile: str = "ci"
    seed: int = 0
    database: str | None = str(DEFAULT_DB)
    threads: int | None = None
    timeout_s: float = 120.0
    memory_cap: int | None = None  # bytes resident per worker


@dataclass(frozen=True)
class CheckResult:
    """The records of one check for one backend, and what the backend declared."""

    job: Job
    records: list[Record]
    backend: BackendInfo


class _CaseFailed(Exception):
    def __init__(self, record: Record) -> None:
        super().__init__(record.message)
        self.record = record


class _ShrinkBudgetSpent(BaseException):
    """Not an Exception, so hypothesis lets it through instead of taking it for a failure."""


def _hypothesis_check(job: Job, strategy, execute: Callable[[object], Record],
                      examples: int, worker: Worker) -> Iterator[Record]:
    """Run `examples` generated cases; on the first failure let hypothesis shrink it.

    Yields a record per generated case (in order, so cases-to-catch is the record count), then,
    when something failed, the shrunk minimal failing case marked shrunk=True. Failing examples
    are saved in the example database and replayed first next time. While shrinking, the worker's
    timeout drops to 4x the slowest case seen (SHRINK_TIMEOUT_S at least): a hanging backend
    does not cost the full timeout at every shrink step; after SHRINK_BUDGET_S of shrinking the
    smallest failure found so far is reported.
    """
    records: list[Record] = []
    failed: list[Record] = []
    db = (DirectoryBasedExampleDatabase(str(Path(job.database) / job.backend / job.check))
          if job.database else None)

    @settings(max_examples=examples, deadline=None, database=db, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False, verbosity=Verbosity.quiet,
              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    @seed(job.seed)
    @given(strategy)
    def check(case) -> None:
        if failed and time.perf_counter() - shrink_started[0] > SHRINK_BUDGET_S:
            raise _ShrinkBudgetSpent
        record = execute(case)
        if not failed:
            records.append(record)
        if record.status.failing:
            if not failed:
                slowest = max((r.seconds or 0.0 for r in records[:-1]), default=0.0)
                worker.timeout_s = min(full_timeout, max(SHRINK_TIMEOUT_S, 4 * slowest))
                shrink_started[0] = time.perf_counter()
            failed.append(record)
            raise _CaseFailed(record)

    full_timeout, shrink_started = worker.timeout_s, [0.0]
    try:
        check()
    except _CaseFailed as exc:
        records.append(dataclasses.replace(exc.record, shrunk=True))
    except _ShrinkBudgetSpent:
        records.append(dataclasses.replace(failed[-1], shrunk=True, message=(
            f"{failed[-1].message} (shrinking stopped after {SHRINK_BUDGET_S:g} s)")))
    except Exception as exc:  # noqa: BLE001 - e.g. Flaky: the failure did not reproduce
        if not failed:
            raise
        records.append(dataclasses.replace(failed[0], message=(
            f"{failed[0].message} (not shrunk: {type(exc).__name__}, the failure is intermittent)")))
    finally:
        worker.timeout_s = full_timeout
    yield from records


def _fixed(worker: Worker, cases) -> Iterator[Record]:
    for case in cases:
        yield run_case(worker, case)


def run_check(job: Job, worker: Worker | None = None) -> CheckResult:
    """All records of one check for one backend, on `worker` when given (a running worker of
    job.backend, left running), else on a worker started and closed here."""
    started = time.perf_counter()
    if worker is not None:
        return _check(job, worker, started)
    try:
        worker = Worker(job.backend, threads=job.threads, timeout_s=job.timeout_s,
                        memory_cap=job.memory_cap)
    except LoadError as exc:
        return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"load:{job.backend}",
                                        status=Status.CRASHED, message=str(exc),
                                        repro=f"python -m conformance --backend {job.backend}")],
                           BackendInfo(job.backend, f"failed to load: {exc}"))
    with worker:
        return _check(job, worker, started)


def _check(job: Job, worker: Worker, started: float) -> CheckResult:
    info = BackendInfo.of(job.backend, worker.availability, worker.capabilities)
    if not worker.availability.ok:
        return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"load:{job.backend}",
                                        status=Status.UNSUPPORTED, message=str(worker.availability))],
                           info)
    records = list(_records(job, worker))
    elapsed = time.perf_counter() - started
    return CheckResult(job, [dataclasses.replace(r, profile=job.profile, run_seed=job.seed,
                                                 check_seconds=elapsed) for r in records], info)


def _records(job: Job, worker: Worker) -> Iterator[Record]:
    """The records of job's check, run on `worker`."""
    profile: Profile = PROFILES[job.profile]
    caps = worker.capabilities
    if job.check in GENERATED:
        return _hypothesis_check(job, GENERATED[job.check](caps), lambda c: run_case(worker, c),
                                 profile.examples[job.check], worker)
    if job.check == "invalid":
        return _hypothesis_check(job, strategies.invalid_cases(), lambda c: run_invalid(worker, c),
                                 profile.examples["invalid"], worker)
    if job.check == "worked":
        return _fixed(worker, worked_cases())
    if job.check == "covering":
        return _fixed(worker, covering_cases(caps.dtypes, caps.data_formats, caps.groups, caps.dilation))
    if job.check == "workload":
        return _fixed(worker, workload_cases(profile.workloads))
    problem = Problem(*profile.property_problem)
    return (check_property(worker, name, problem, caps.dtypes[0], job.seed, job.profile)
            for name in PROPERTIES)


def _aborted(job: Job, exc: BaseException) -> CheckResult:
    """A check that stopped on an error of its own (not the backend's): CRASHED, with the trace."""
    trace = "".join(traceback.format_exception(exc, limit=-4))
    return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"check:{job.check}",
                                    status=Status.CRASHED, profile=job.profile, run_seed=job.seed,
                                    message=f"the {job.check} check stopped: {type(exc).__name__}: "
                                            f"{exc}\n{trace}")],
                       BackendInfo(job.backend, "unknown: its check stopped"))


def _guarded(job: Job) -> CheckResult:
    try:
        return run_check(job)
    except Exception as exc:  # noqa: BLE001 - one broken check must not lose the others
        return _aborted(job, exc)


def _pool_process(parent: int) -> None:
    die_with_parent(parent)
    ignore_interrupts()


def run_jobs(jobs: list[Job], parallel: int = 1,
             on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Run jobs (sequentially, or in `parallel` processes), reporting each as it finishes.

    An interruption (KeyboardInterrupt) stops every job at once, kills their processes (and so,
    through die_with_parent, their backend workers) and propagates; results already reported
    through `on_result` stay with the caller."""
    results: list[CheckResult] = []

    def done(result: CheckResult) -> None:
        results.append(result)
        if on_result:
            on_result(result)

    if parallel <= 1:
        for job in jobs:
            done(_guarded(job))
        return results
    pool = cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn"),
                                  initializer=_pool_process, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(_guarded, job): job for job in jobs}
        for future in cf.as_completed(futures):
            try:
                done(future.result())
            except cf.process.BrokenProcessPool as exc:
                done(_aborted(futures[future], exc))
    except BaseException:
        for process in list((pool._processes or {}).values()):  # no public way to stop them at once
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results
