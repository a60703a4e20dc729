"""python -m conformance: check backends against the reference and write the report.

Exit status: 0 when every check ran and nothing failed; 1 on any FAIL / REJECTED-VALID /
ACCEPTED-INVALID / CRASHED; 2 on usage errors (a bad argument, an unloadable backend, a report
directory that cannot be written or is in use, a single case too large for the memory cap);
130 / 143 when SIGINT / SIGTERM stopped the run (the report then covers the checks that finished
and says so at its top).

Naming a backend by `module:attr` imports that module and so runs its code, like any plugin; it
is imported only in throwaway and worker processes, never in this one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

from conformance.cases import Case, InvalidCase
from conformance.engine import (
    BACKWARD_CHECKS,
    CHECKS,
    DEFAULT_DB,
    DIRECTIONS,
    HYPOTHESIS_CHECKS,
    OPT_IN_CHECKS,
    SEEDED_CHECKS,
    CheckResult,
    Job,
    run_jobs,
)
from conformance.execute import run_case, run_invalid, too_large
from conformance.junit import write_junit
from conformance.layer_check import layer_records
from conformance.profiles import DEFAULT_PROFILE, PROFILES
from conformance.properties import BACKWARD_PROPERTIES, PROPERTIES, Problem, check_property
from conformance.report import save_results, write_report
from reference.formats import DTYPES
from reference.spec import Conv3DSpec
from runtime.data import REGIMES
from runtime.files import ReportDir, ReportDirError
from runtime.interrupts import Interrupted, Interrupts
from runtime.records import BackendInfo, Record, Status
from runtime.selection import resolve_backends
from runtime.worker import LoadError, Worker, default_memory_cap


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _seeds(text: str) -> tuple[int, ...]:
    """'0-999', '3' or '0,5,10-12' -> the seeds, in order, each once."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            low, _, high = part.partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seed range: {text!r} (e.g. 0-999 or 0,5,7)") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"no non-negative seeds in {text!r}")
    return tuple(dict.fromkeys(seeds))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", action="append", required=True,
                   help="registered name, 'all' (every available one) or module:attr (importing "
                        "the module runs its code, in a worker process); repeatable")
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed (and a single case's data seed)")
    p.add_argument("--report", type=Path, help="write the report into this directory")
    p.add_argument("--junit", type=Path, metavar="FILE",
                   help="also write the results as JUnit XML (one testcase per case) to FILE")
    p.add_argument("-j", "--jobs", type=_positive(int), default=1,
                   help="checks run at once: local processes, or the CPUs of the local Ray cluster "
                        "that --executor ray starts (a cluster at --address runs as many as it has)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes (-j), or Ray tasks on a cluster (each check a task, its "
                        "backend in a worker process on the task's node; a lost node's tasks rerun)")
    p.add_argument("--address", help="Ray cluster to join (e.g. 10.0.0.1:6379 or 'auto'); "
                                     "default: start a local one for the run")
    p.add_argument("--seeds", type=_seeds, metavar="RANGE",
                   help="sweep these seeds, e.g. 0-999 or 0,5,7: each generated check (and property, "
                        "layer) runs once per seed, a shard of its own with its own repro line; "
                        "under --dtypes each dtype is a shard too")
    p.add_argument("--checks", default="",
                   help=f"subset of {','.join(CHECKS)} (default: all but {','.join(OPT_IN_CHECKS)}; "
                        "under --profile large: large)")
    p.add_argument("--direction", choices=(*DIRECTIONS, "both"), default="both",
                   help="forward (conv3d), backward (conv3d_grad: the checks "
                        f"{','.join(BACKWARD_CHECKS)}) or both; a plain function given as "
                        "module:attr is taken as conv3d_grad under backward")
    p.add_argument("--dtypes", default="", metavar="LIST",
                   help=f"comma-separated subset of {','.join(DTYPES)}: check only these, of those "
                        "each backend declares (default: every dtype it declares)")
    p.add_argument("--threads", type=_positive(int), help="CPU threads per backend")
    p.add_argument("--timeout", type=_positive(float), default=120.0,
                   help="seconds per case before CRASHED")
    p.add_argument("--memory-cap", type=_positive(float), metavar="GIB",
                   help="resident memory per worker before CRASHED, and the size above which a "
                        "case is refused (default: 3/4 of this machine's memory over --jobs)")
    p.add_argument("--no-db", action="store_true", help="do not replay or store failing examples")
    p.add_argument("--replay-only", action="store_true",
                   help="replay the failing examples stored by earlier runs, generate nothing new")
    p.add_argument("--max-failures", type=_positive(int), default=3,
                   help="distinct failures (status or §4b region) a generated check looks for")
    single = p.add_argument_group("re-run one case (what a repro line does)")
    single.add_argument("--case", help="descriptor, e.g. "
                        "g1_mb1_ic3id5ih5iw5_oc4_kd3kh3kw3_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_bias")
    single.add_argument("--dtype", default="float32", choices=DTYPES)
    single.add_argument("--data", choices=REGIMES, default="normal")
    single.add_argument("--strided", action="store_true",
                        help="pass the case's arrays as non-contiguous views")
    single.add_argument("--invalid", help="an invalid call as JSON (from a repro line)")
    single.add_argument("--layer-case", metavar="ID", help="one case of the layer check (from a repro line)")
    single.add_argument("--property", choices=sorted(PROPERTIES) + sorted(BACKWARD_PROPERTIES))
    args = p.parse_args(argv)
    args.checks = args.checks or ("large" if args.profile == "large" else
                                  ",".join(c for c in CHECKS if c not in OPT_IN_CHECKS))
    unknown = set(args.checks.split(",")) - set(CHECKS)
    if unknown:
        p.error(f"unknown checks {sorted(unknown)}; choose from {', '.join(CHECKS)}")
    args.dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    if set(args.dtypes) - set(DTYPES):
        p.error(f"--dtypes: unknown {sorted(set(args.dtypes) - set(DTYPES))}; "
                f"choose from {', '.join(DTYPES)}")
    if args.strided and not args.case:
        p.error("--strided applies to a --case")
    if args.replay_only and args.no_db:
        p.error("--replay-only replays the example database, which --no-db turns off")
    if args.address and args.executor != "ray":
        p.error("--address names a Ray cluster: it needs --executor ray")
    if args.seeds and (args.case or args.invalid or args.property or args.layer_case):
        p.error("--seeds sweeps the checks; a single case takes --seed")
    args.memory_cap = (int(args.memory_cap * 2**30) if args.memory_cap
                       else default_memory_cap(workers=args.jobs))
    try:
        args.spec = Conv3DSpec.from_descriptor(args.case) if args.case else None
        args.invalid = InvalidCase.from_json(args.invalid) if args.invalid else None
    except ValueError as exc:
        p.error(str(exc))
    if args.spec and too_large(args.spec, args.dtype, args.memory_cap):
        p.error(f"--case {args.case}: {too_large(args.spec, args.dtype, args.memory_cap)}")
    return args


def _print_record(record: Record) -> None:
    worst = ""
    if record.worst is not None and record.status != Status.PASS:
        w = record.worst
        worst = (f"\n  worst element {w.index}: expected {w.expected!r}, got {w.got!r}, "
                 f"error/bound {w.ratio:.3g}, {w.ulps:.3g} ulps")
    print(f"{record.status}: {record.case}\n  {_first_line(record.message)}{worst}\n  repro: {record.repro}")


def _first_line(message: str, limit: int = 300) -> str:
    return message.splitlines()[0][:limit] if message else ""


def _directions(args: argparse.Namespace) -> tuple[str, ...]:
    return DIRECTIONS if args.direction == "both" else (args.direction,)


def _function_direction(args: argparse.Namespace) -> str:
    """A plain function is conv3d_grad only when asked for the backward direction alone."""
    return "backward" if args.direction == "backward" else "forward"


def run_single(args: argparse.Namespace, backend: str) -> list[Record]:
    direction = (args.invalid.direction if args.invalid else
                 "backward" if args.property in BACKWARD_PROPERTIES else _directions(args)[0])
    function_direction = "backward" if direction == "backward" else _function_direction(args)
    with Worker(backend, threads=args.threads, timeout_s=args.timeout,
                memory_cap=args.memory_cap, function_direction=function_direction) as worker:
        if args.spec:
            records = [run_case(worker, Case(args.spec, args.dtype, args.data, args.seed, check="repro",
                                             strided=args.strided, direction=direction))]
        elif args.invalid:
            records = [run_invalid(worker, args.invalid)]
        elif args.layer_case:
            records = layer_records(worker, args.profile, args.seed, only=args.layer_case)
        else:
            problem = Problem(*PROFILES[args.profile].property_problem)
            records = [check_property(worker, args.property, problem, args.dtype, args.seed,
                                      args.profile)]
    for record in records:
        _print_record(record)
    return records


def _jobs(args: argparse.Namespace, backends: list[str]) -> list[Job]:
    """One job per (direction, backend, check), and under --seeds per seed of a seeded check and
    per dtype of --dtypes: the shards of a sweep."""
    database = None if args.no_db else str(DEFAULT_DB)
    seeds = args.seeds or (args.seed,)
    dtype_shards = [(d,) for d in args.dtypes] if args.seeds and args.dtypes else [args.dtypes]
    return [Job(b, check, args.profile, seed, database, args.threads, args.timeout, args.memory_cap,
                args.max_failures, args.replay_only, direction, _function_direction(args),
                dtypes=dtypes)
            for direction in _directions(args) for b in backends for check in args.checks.split(",")
            if direction == "forward" or check in BACKWARD_CHECKS
            for seed in (seeds if check in SEEDED_CHECKS else seeds[:1]) for dtypes in dtype_shards]


def _progress(total: int, sweep: bool = False):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="check", file=sys.stderr, dynamic_ncols=True)
    shown = dict(cases=0, failing=0)  # the bar's postfix: cases done, failing ones (and Ray nodes)

    def on_result(result: CheckResult) -> None:
        job, records = result.job, result.records
        counts = Counter(str(r.status) for r in records)
        shown["cases"] += len(records)
        shown["failing"] += sum(r.status.failing for r in records)
        bar.set_postfix(shown, refresh=False)
        shard = f" seed {job.seed}{' ' + ','.join(job.dtypes) if job.dtypes else ''}" if sweep else ""
        bar.write(f"{job.backend:>18} {job.check:<10}{shard} {len(records):5d} cases  " +
                  " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        if sweep and any(r.status.failing for r in records):
            bar.write(f"    shard repro: {job.repro()}")
        for record in records:
            if record.status.failing and (record.shrunk or record.check not in HYPOTHESIS_CHECKS):
                bar.write(f"    {record.status}: {_first_line(record.message, 200)}\n"
                          f"    repro: {record.repro}")
        bar.update(1)

    def show_nodes(count: int) -> None:
        shown["nodes"] = count
        bar.set_postfix(shown)

    return bar, on_result, show_nodes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report_dir = ReportDir(args.report) if args.report else contextlib.nullcontext()
        with report_dir, Interrupts() as stop:
            return _run(args, stop)
    except ReportDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, stop: Interrupts) -> int:
    """The run under `stop`'s signal handling; the report directory, if any, is already locked."""
    started = time.time()
    try:
        backends = resolve_backends(args.backend, timeout_s=args.timeout)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted:
        backends = []  # stopped while the backends were being probed: an empty, marked report
    if args.executor == "ray":
        from conformance.ray_executor import available

        if available():
            print(f"error: --executor ray: {available()}", file=sys.stderr)
            return 2
    infos: dict[str, BackendInfo] = {}
    records: list[Record] = []
    single = bool(args.spec or args.invalid or args.property or args.layer_case)
    jobs = [] if single else _jobs(args, backends)
    total = len(backends) if single else len(jobs)
    finished = 0
    try:
        if stop.received:
            pass
        elif single:
            for backend in backends:
                records += run_single(args, backend)
                finished += 1
        else:
            bar, on_result, show_nodes = _progress(len(jobs), sweep=bool(args.seeds))

            def collect(result: CheckResult) -> None:
                nonlocal finished
                records.extend(result.records)
                infos[result.job.backend] = result.backend
                finished += 1
                on_result(result)

            try:
                if args.executor == "ray":
                    from conformance.ray_executor import alive_nodes, run_jobs_ray

                    def nodes() -> None:
                        show_nodes(alive_nodes())

                    run_jobs_ray(jobs, args.address, on_result=lambda r: (collect(r), nodes()),
                                 on_wait=nodes, num_cpus=args.jobs)
                else:
                    run_jobs(jobs, args.jobs, on_result=collect)
            finally:
                bar.close()
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Interrupted:
        pass
    interrupted = ("" if not stop.received else
                   f"interrupted by {stop.name} after {finished} of {total} checks" if total else
                   f"interrupted by {stop.name} while the backends were being loaded")
    if interrupted:
        print(f"\n{interrupted}: reporting the {len(records)} cases finished", file=sys.stderr)
    stop.deferring = True  # from here on a signal waits for the report
    if args.report:
        meta = dict(profile=args.profile, seed=args.seed, backends=backends, executor=args.executor,
                    **({"seeds": f"{args.seeds[0]}-{args.seeds[-1]} ({len(args.seeds)} seeds)"}
                       if args.seeds else {}),
                    seconds=time.time() - started, command=" ".join(sys.argv),
                    checks_total=total, checks_finished=finished, interrupted=interrupted,
                    backend_info=[dataclasses.asdict(i) for i in infos.values()])
        save_results(records, args.report, meta)
        print(f"report: {write_report(args.report)}", file=sys.stderr)
    if args.junit:
        args.junit.parent.mkdir(parents=True, exist_ok=True)
        print(f"JUnit XML: {write_junit(records, args.junit)}", file=sys.stderr)
    counts = Counter(str(r.status) for r in records)
    print(f"{len(records)} cases in {time.time() - started:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    if stop.received:
        return stop.exit_code
    return 1 if any(r.status.failing for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
