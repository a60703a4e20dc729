"""The conformance run: checks x backends, hypothesis-driven with shrinking, optionally in parallel.

A *check* is one family of cases for one backend: generated exact-regime, realistic and extreme
cases, invalid calls, fixed cases, reduced workloads, oracle-free properties. Each runs in its own
job with its own backend worker, so `-j N` runs N of them at once.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from backends.worker import LoadError, Worker
from conformance import strategies
from conformance.execute import run_case, run_invalid
from conformance.fixed import worked_cases, workload_cases
from conformance.judge import CRASHED, FAILING, UNSUPPORTED
from conformance.profiles import PROFILES, Profile
from conformance.properties import PROPERTIES, Problem, check_property

DEFAULT_DB = Path(".conformance/db")
GENERATED = {"exact": strategies.exact_cases, "realistic": strategies.realistic_cases,
             "extreme": strategies.extreme_cases}
CHECKS = (*GENERATED, "invalid", "worked", "workload", "property")


@dataclass(frozen=True)
class Job:
    backend: str
    check: str
    profile: str = "ci"
    seed: int = 0
    database: str | None = str(DEFAULT_DB)
    threads: int | None = None
    timeout_s: float = 120.0


class _CaseFailed(Exception):
    def __init__(self, row: dict) -> None:
        super().__init__(row["message"])
        self.row = row


def _hypothesis_check(job: Job, strategy, execute: Callable[[object], dict],
                      examples: int) -> Iterator[dict]:
    """Run `examples` generated cases; on the first failure let hypothesis shrink it.

    Yields a row per generated case (in order, so cases-to-catch is the row count), then, when
    something failed, the shrunk minimal failing case marked shrunk=True. Failing examples are
    saved in the example database and replayed first next time.
    """
    rows: list[dict] = []
    failed = []
    db = (DirectoryBasedExampleDatabase(str(Path(job.database) / job.backend / job.check))
          if job.database else None)

    @settings(max_examples=examples, deadline=None, database=db, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False, verbosity=Verbosity.quiet,
              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])
    @seed(job.seed)
    @given(strategy)
    def check(case) -> None:
        row = execute(case)
        if not failed:
            rows.append(row)
        if row["status"] in FAILING:
            failed.append(row)
            raise _CaseFailed(row)

    try:
        check()
    except _CaseFailed as exc:
        rows.append(exc.row | dict(shrunk=True))
    except Exception as exc:  # noqa: BLE001 - e.g. Flaky: the failure did not reproduce
        if not failed:
            raise
        rows.append(failed[0] | dict(message=f"{failed[0]['message']} (not shrunk: "
                                             f"{type(exc).__name__}, the failure is intermittent)"))
    yield from rows


def _fixed(worker: Worker, cases) -> Iterator[dict]:
    for case in cases:
        yield run_case(worker, case)


def run_check(job: Job) -> list[dict]:
    """All rows of one check for one backend (its worker started and closed here)."""
    profile: Profile = PROFILES[job.profile]
    started = time.perf_counter()
    try:
        worker = Worker(job.backend, threads=job.threads, timeout_s=job.timeout_s)
    except LoadError as exc:
        return [dict(backend=job.backend, check=job.check, case=f"load:{job.backend}",
                     status=CRASHED, message=str(exc),
                     repro=f"python -m conformance --backend {job.backend}")]
    with worker:
        if not worker.availability.ok:
            return [dict(backend=worker.name, check=job.check, case=f"load:{job.backend}",
                         status=UNSUPPORTED, message=str(worker.availability))]
        caps = worker.capabilities
        if job.check in GENERATED:
            rows = _hypothesis_check(job, GENERATED[job.check](caps), lambda c: run_case(worker, c),
                                     profile.examples[job.check])
        elif job.check == "invalid":
            rows = _hypothesis_check(job, strategies.invalid_cases(), lambda c: run_invalid(worker, c),
                                     profile.examples["invalid"])
        elif job.check == "worked":
            rows = _fixed(worker, worked_cases())
        elif job.check == "workload":
            rows = _fixed(worker, workload_cases(profile.workloads))
        else:
            problem = Problem(*profile.property_problem)
            rows = (check_property(worker, name, problem, caps.dtypes[0], job.seed)
                    for name in PROPERTIES)
        out = [row | dict(profile=job.profile, run_seed=job.seed) for row in rows]
    elapsed = time.perf_counter() - started
    for row in out:
        row.setdefault("check_seconds", elapsed)
    return out


def run_jobs(jobs: list[Job], parallel: int = 1,
             on_rows: Callable[[Job, list[dict]], None] | None = None) -> list[dict]:
    """Run jobs (sequentially, or in `parallel` processes), reporting each as it finishes."""
    all_rows: list[dict] = []

    def done(job: Job, rows: list[dict]) -> None:
        all_rows.extend(rows)
        if on_rows:
            on_rows(job, rows)

    if parallel <= 1:
        for job in jobs:
            done(job, run_check(job))
        return all_rows
    with cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(run_check, job): job for job in jobs}
        for future in cf.as_completed(futures):
            done(futures[future], future.result())
    return all_rows
