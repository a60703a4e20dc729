"""The conformance run: checks x backends, hypothesis-driven with shrinking, optionally in parallel.

A *check* is one family of cases for one backend: generated exact-regime, realistic and extreme
cases, invalid calls, fixed cases, the covering array of parameter classes (conformance.coverage),
reduced workloads, oracle-free properties, and for a whole Keras layer the layer check
(conformance.layer_check), the thread-count check and the opt-in large tier. Each runs in its own
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
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from conformance import strategies
from conformance.cases import command
from conformance.coverage import covering_cases, regions
from conformance.execute import case_record, run_case, run_invalid, run_threads_case
from conformance.fixed import worked_cases, workload_cases
from conformance.large import large_records
from conformance.layer_check import layer_records
from conformance.profiles import PROFILES, Profile
from conformance.properties import BACKWARD_PROPERTIES, PROPERTIES, Problem, check_property
from reference.numba_target import cache_dir
from reference.spec import Conv3DSpec
from runtime.interrupts import ignore_interrupts
from runtime.records import BackendInfo, Record, Status
from runtime.worker import LoadError, Worker, die_with_parent

DEFAULT_DB = cache_dir() / "db"  # failing examples, replayed first by the next run
GENERATED = {"exact": strategies.exact_cases, "realistic": strategies.realistic_cases,
             "extreme": strategies.extreme_cases}
HYPOTHESIS_CHECKS = (*GENERATED, "invalid")  # drawn by hypothesis: a failure is shrunk
CHECKS = (*HYPOTHESIS_CHECKS, "worked", "covering", "workload", "property", "layer", "threads", "large")
OPT_IN_CHECKS = ("large",)  # run only when named (--checks) or by their profile (--profile large)
LARGE_TIMEOUT_S = 3600.0  # a large case fills and convolves tensors of billions of elements
BACKWARD_CHECKS = (*HYPOTHESIS_CHECKS, "worked", "covering", "property", "threads")  # no workload, layer
SEEDED_CHECKS = (*HYPOTHESIS_CHECKS, "property", "layer")  # whose cases change with the seed
DIRECTIONS = ("forward", "backward")
SHRINK_TIMEOUT_S = 2.0  # at least this long, and 4x the slowest case before the failure
SHRINK_BUDGET_S = 120.0  # wall time a check may spend shrinking, all rounds together
HANG_SHRINK_STEPS = 10  # a timed-out failure: shrink for at most this many short timeouts
HANG_STREAK = 5  # timeouts in a row after which a fixed check's remaining cases are skipped
KNOWN_STREAK = 10  # this many failures in a row, each like one already found: nothing new is coming


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
    max_failures: int = 3  # distinct failures a generated check looks for before it stops
    replay_only: bool = False  # replay the example database's failures, generate nothing
    direction: str = "forward"  # or "backward": the same checks on conv3d_grad
    function_direction: str = "forward"  # what a plain function backend is taken for
    dtypes: tuple[str, ...] = ()  # the dtypes to check, of those the backend declares (all: empty)

    def repro(self) -> str:
        """The command that runs this job (one shard of a sweep) alone."""
        return (f"{command(self.backend)} --checks {self.check} --direction {self.direction} "
                f"--profile {self.profile} --seed {self.seed}"
                + (f" --dtypes {','.join(self.dtypes)}" if self.dtypes else "")
                + (" --no-db" if self.database is None else ""))


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


class _NothingNew(BaseException):
    """KNOWN_STREAK failures in a row were all like ones already found (a backend that fails
    or hangs everywhere): the round ends without running its other examples."""


def _signature(record: Record) -> tuple:
    """What makes a failure new: its status and its §4b regions (an invalid call: its rule)."""
    if record.rule or not record.descriptor:
        return str(record.status), record.rule
    return str(record.status), tuple(regions(Conv3DSpec.from_descriptor(record.descriptor)))


def _hypothesis_check(job: Job, strategy, execute: Callable[[object], Record],
                      examples: int, worker: Worker) -> Iterator[Record]:
    """Run `examples` generated cases, in rounds that each end at a new failure, shrunk.

    Yields a record per case run outside shrinking (in order, so cases-to-catch is the count up
    to the first failure) and each shrunk failure, marked shrunk=True. After a failure the check
    keeps looking, with a new seed and the examples left, for failures of another status or §4b
    region (up to job.max_failures); failures like one already found are recorded but do not end
    a round. Failing examples are saved in the example database and replayed first, in the first
    round only (job.replay_only: replay them and generate nothing). A round also ends after
    KNOWN_STREAK failures in a row that are all like ones found. While shrinking, the worker's
    timeout drops to 4x the slowest case seen (SHRINK_TIMEOUT_S at least); once the check has
    spent SHRINK_BUDGET_S shrinking (HANG_SHRINK_STEPS short timeouts when the failure was a
    timeout), the smallest failure found so far is reported and no new round starts.
    """
    set_hypothesis_home_dir(str(cache_dir() / "hypothesis"))  # not ./.hypothesis where the suite runs
    log: list[Record] = []
    seen: set[tuple] = set()
    shrinking = dict(spent=0.0, budget=SHRINK_BUDGET_S)
    folder = job.check if job.direction == "forward" else f"{job.check}-backward"
    db = (DirectoryBasedExampleDatabase(str(Path(job.database) / job.backend / folder))
          if job.database else None)
    replay, search = [Phase.explicit, Phase.reuse], [Phase.generate, Phase.shrink]
    for round_ in range(job.max_failures):
        left = examples - len(log)
        if left <= 0 or shrinking["spent"] >= shrinking["budget"]:
            break
        found = _round(job, strategy, execute, left, worker, db, seen, log, shrinking,
                       replay if job.replay_only else replay + search if round_ == 0 else search,
                       job.seed + round_)
        if found is None:
            break
        log.append(found)
        seen.add(_signature(found))
    yield from log


def _round(job: Job, strategy, execute: Callable[[object], Record], examples: int, worker: Worker,
           db, seen: set[tuple], log: list[Record], shrinking: dict, phases: list[Phase],
           round_seed: int) -> Record | None:
    """One hypothesis run; appends the cases it runs before a new failure to `log` and returns
    that failure shrunk (None when there was none); adds its shrinking time to shrinking["spent"]."""
    failed: list[Record] = []
    streak = [0]

    @settings(max_examples=examples, deadline=None, database=db, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
              print_blob=False, verbosity=Verbosity.quiet, phases=phases)
    @seed(round_seed)
    @given(strategy)
    def check(case) -> None:
        if failed and shrinking["spent"] + time.perf_counter() - shrink_started[0] > shrinking["budget"]:
            raise _ShrinkBudgetSpent
        record = execute(case)
        new = record.status.failing and _signature(record) not in seen
        if not failed:
            log.append(record)
            streak[0] = streak[0] + 1 if record.status.failing and not new else 0
            if streak[0] >= KNOWN_STREAK:
                raise _NothingNew
        if new:
            if not failed:
                slowest = max((r.seconds or 0.0 for r in log[:-1]), default=0.0)
                worker.timeout_s = min(full_timeout, max(SHRINK_TIMEOUT_S, 4 * slowest))
                shrink_started[0] = time.perf_counter()
                if "timed out" in record.message:  # a hang: each step costs a timeout and a restart
                    shrinking["budget"] = min(shrinking["budget"], HANG_SHRINK_STEPS * worker.timeout_s)
            failed.append(record)
            raise _CaseFailed(record)

    full_timeout, shrink_started = worker.timeout_s, [0.0]
    shrinks = Phase.shrink in phases
    try:
        check()
    except _CaseFailed as exc:
        return dataclasses.replace(exc.record, shrunk=shrinks)
    except _NothingNew:
        return None
    except _ShrinkBudgetSpent:
        return dataclasses.replace(failed[-1], shrunk=True, message=(
            f"{failed[-1].message} (shrinking stopped after {shrinking['budget']:g} s)"))
    except Exception as exc:  # noqa: BLE001 - e.g. Flaky: the failure did not reproduce
        if not failed:
            raise
        return dataclasses.replace(failed[0], message=(
            f"{failed[0].message} (not shrunk: {type(exc).__name__}, the failure is intermittent)"))
    finally:
        worker.timeout_s = full_timeout
        if failed:
            shrinking["spent"] += time.perf_counter() - shrink_started[0]
    return None


def _fixed(worker: Worker, cases) -> Iterator[Record]:
    """Each case in turn; after HANG_STREAK timeouts in a row the rest are SKIPPED, not run (a
    backend that hangs everywhere would cost the full timeout on every one)."""
    hangs = 0
    for case in cases:
        if hangs >= HANG_STREAK:
            yield case_record(worker.name, case, Status.SKIPPED,
                              f"not run: the {HANG_STREAK} cases before it timed out")
            continue
        record = run_case(worker, case)
        hangs = hangs + 1 if record.status == Status.CRASHED and "timed out" in record.message else 0
        yield record


def run_check(job: Job, worker: Worker | None = None) -> CheckResult:
    """All records of one check for one backend, on `worker` when given (a running worker of
    job.backend, left running), else on a worker started and closed here."""
    started = time.perf_counter()
    if worker is not None:
        return _check(job, worker, started)
    try:
        worker = Worker(job.backend, threads=job.threads, timeout_s=job.timeout_s,
                        memory_cap=job.memory_cap, function_direction=job.function_direction)
    except LoadError as exc:
        return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"load:{job.backend}",
                                        status=Status.CRASHED, message=str(exc),
                                        repro=command(job.backend))],
                           BackendInfo(job.backend, f"failed to load: {exc}"))
    with worker:
        return _check(job, worker, started)


def _check(job: Job, worker: Worker, started: float) -> CheckResult:
    info = BackendInfo.of(job.backend, worker.availability, worker.capabilities, worker.versions)
    if not worker.availability.ok:
        return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"load:{job.backend}",
                                        status=Status.UNSUPPORTED, message=str(worker.availability))],
                           info)
    records = list(_records(job, worker))
    elapsed = time.perf_counter() - started
    return CheckResult(job, [dataclasses.replace(r, profile=job.profile, run_seed=job.seed,
                                                 check_seconds=elapsed) for r in records], info)


def _kept(dtype: str, job: Job, caps) -> str:
    """A fixed case's dtype, or under a dtype subset (job.dtypes) the first one kept instead."""
    return dtype if not job.dtypes or dtype in caps.dtypes else caps.dtypes[0]


def _records(job: Job, worker: Worker) -> Iterator[Record]:
    """The records of job's check, run on `worker`."""
    profile: Profile = PROFILES[job.profile]
    caps, direction = worker.capabilities, job.direction
    if direction not in caps.directions:
        return iter([Record(backend=job.backend, check=job.check, case=f"{job.check}:{direction}",
                            status=Status.UNSUPPORTED, direction=direction,
                            message=f"the {direction} direction is not supported")])
    if direction == "backward" and caps.backward_dtypes is not None:
        caps = dataclasses.replace(caps, dtypes=tuple(d for d in caps.dtypes if d in caps.backward_dtypes))
    if job.dtypes:
        kept = tuple(d for d in caps.dtypes if d in job.dtypes)
        if not kept:
            return iter([Record(backend=job.backend, check=job.check, case=f"{job.check}:{direction}",
                                status=Status.UNSUPPORTED, direction=direction,
                                message=f"none of the dtypes {', '.join(job.dtypes)} is declared "
                                        f"(declares {', '.join(caps.dtypes)})")])
        caps = dataclasses.replace(caps, dtypes=kept)
    if job.check == "layer":
        if not caps.layer:
            return iter([Record(backend=job.backend, check="layer", case="layer", status=Status.UNSUPPORTED,
                                message="not a whole Keras layer: the layer check probes "
                                        "keras.layers.Conv3D backends only")])
        return iter(layer_records(worker, job.profile, job.seed))
    if job.check in GENERATED:
        return _hypothesis_check(job, GENERATED[job.check](caps, direction),
                                 lambda c: run_case(worker, c), profile.examples[job.check], worker)
    if job.check == "invalid":
        return _hypothesis_check(job, strategies.invalid_cases(direction),
                                 lambda c: run_invalid(worker, c), profile.examples["invalid"], worker)
    if job.check == "large":
        worker.timeout_s = max(worker.timeout_s, LARGE_TIMEOUT_S)
        return iter(large_records(worker, job.seed))
    if job.check == "threads":
        return _threads(job, worker, caps, direction)
    if job.check == "worked":
        return _fixed(worker, (dataclasses.replace(c, direction=direction, dtype=_kept(c.dtype, job, caps))
                               for c in worked_cases()))
    if job.check == "covering":
        return _fixed(worker, (dataclasses.replace(c, direction=direction) for c in covering_cases(
            caps.dtypes, caps.data_formats, caps.groups, caps.dilation)))
    if job.check == "workload":
        return _fixed(worker, (dataclasses.replace(c, dtype=_kept(c.dtype, job, caps))
                               for c in workload_cases(profile.workloads)))
    problem = Problem(*profile.property_problem)
    names = PROPERTIES if direction == "forward" else BACKWARD_PROPERTIES
    return (check_property(worker, name, problem, caps.dtypes[0], job.seed, job.profile)
            for name in names)


def _threads(job: Job, worker: Worker, caps, direction: str) -> list[Record]:
    """The worked cases (the profile's share, spread evenly) at 1 thread and at the job's thread
    count (all of this machine's by default), each judged at both; bitwise equal across them
    where the backend declares thread-count-invariant results (benchdnn's bitwise mode)."""
    many = job.threads or worker.threads or os.cpu_count() or 1
    worked, count = worked_cases(), PROFILES[job.profile].threads
    step = 1 if count is None else max(1, -(-len(worked) // count))  # evenly spread over them
    cases = [dataclasses.replace(c, direction=direction, dtype=_kept(c.dtype, job, caps), check="threads")
             for c in worked[::step]]
    if many == 1:
        return [case_record(job.backend, cases[0], Status.UNSUPPORTED,
                            "one thread only: no second thread count to compare")]
    with Worker(job.backend, threads=1, timeout_s=job.timeout_s, memory_cap=job.memory_cap,
                function_direction=job.function_direction) as single:
        workers = {1: single, many: worker}
        return [run_threads_case(workers, case, caps.thread_invariant) for case in cases]


def aborted(job: Job, exc: BaseException) -> CheckResult:
    """A check that stopped on an error of its own (not the backend's): CRASHED, with the trace."""
    trace = "".join(traceback.format_exception(exc, limit=-4))
    return CheckResult(job, [Record(backend=job.backend, check=job.check, case=f"check:{job.check}",
                                    status=Status.CRASHED, profile=job.profile, run_seed=job.seed,
                                    message=f"the {job.check} check stopped: {type(exc).__name__}: "
                                            f"{exc}\n{trace}")],
                       BackendInfo(job.backend, "unknown: its check stopped"))


def run_guarded(job: Job) -> CheckResult:
    try:
        return run_check(job)
    except Exception as exc:  # noqa: BLE001 - one broken check must not lose the others
        return aborted(job, exc)


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
            done(run_guarded(job))
        return results
    pool = cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn"),
                                  initializer=_pool_process, initargs=(os.getpid(),))
    try:
        futures = {pool.submit(run_guarded, job): job for job in jobs}
        for future in cf.as_completed(futures):
            try:
                done(future.result())
            except cf.process.BrokenProcessPool as exc:
                done(aborted(futures[future], exc))
    except BaseException:
        for process in list((pool._processes or {}).values()):  # no public way to stop them at once
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results
