"""python -m conformance: check backends against the reference and write the report.

Exit status: 0 when nothing failed, 1 on any FAIL / REJECTED-VALID / ACCEPTED-INVALID / CRASHED,
2 on usage errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

from backends.registry import resolve_backends
from conformance.cases import Case, InvalidCase
from conformance.engine import CHECKS, DEFAULT_DB, HYPOTHESIS_CHECKS, CheckResult, Job, run_jobs
from conformance.execute import run_case, run_invalid
from conformance.profiles import DEFAULT_PROFILE, PROFILES
from conformance.properties import PROPERTIES, Problem, check_property
from conformance.report import save_results, write_report
from reference.spec import Conv3DSpec
from runtime.data import REGIMES
from runtime.records import BackendInfo, Record, Status
from runtime.worker import LoadError, Worker


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", action="append", required=True,
                   help="registered name, 'all' (every available one) or module:attr; repeatable")
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
    p.add_argument("--seed", type=int, default=0, help="hypothesis seed (and a single case's data seed)")
    p.add_argument("--report", type=Path, help="write the report into this directory")
    p.add_argument("-j", "--jobs", type=int, default=1, help="checks run in parallel processes")
    p.add_argument("--checks", default=",".join(CHECKS), help=f"subset of {','.join(CHECKS)}")
    p.add_argument("--threads", type=int, help="CPU threads per backend")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case before CRASHED")
    p.add_argument("--no-db", action="store_true", help="do not replay or store failing examples")
    single = p.add_argument_group("re-run one case (what a repro line does)")
    single.add_argument("--case", help="descriptor, e.g. "
                        "g1_mb1_ic3id5ih5iw5_oc4_kd3kh3kw3_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_bias")
    single.add_argument("--dtype", default="float32")
    single.add_argument("--data", choices=REGIMES, default="normal")
    single.add_argument("--invalid", help="an invalid call as JSON (from a repro line)")
    single.add_argument("--property", choices=sorted(PROPERTIES))
    args = p.parse_args(argv)
    unknown = set(args.checks.split(",")) - set(CHECKS)
    if unknown:
        p.error(f"unknown checks {sorted(unknown)}; choose from {', '.join(CHECKS)}")
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


def run_single(args: argparse.Namespace, backend: str) -> list[Record]:
    with Worker(backend, threads=args.threads, timeout_s=args.timeout) as worker:
        if args.case:
            case = Case(Conv3DSpec.from_descriptor(args.case), args.dtype, args.data, args.seed,
                        check="repro")
            records = [run_case(worker, case)]
        elif args.invalid:
            records = [run_invalid(worker, InvalidCase.from_json(args.invalid))]
        else:
            problem = Problem(*PROFILES[args.profile].property_problem)
            records = [check_property(worker, args.property, problem, args.dtype, args.seed)]
    for record in records:
        _print_record(record)
    return records


def _progress(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="check", file=sys.stderr, dynamic_ncols=True)

    def on_result(result: CheckResult) -> None:
        job, records = result.job, result.records
        counts = Counter(str(r.status) for r in records)
        bar.write(f"{job.backend:>18} {job.check:<10} {len(records):5d} cases  " +
                  " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        for record in records:
            if record.status.failing and (record.shrunk or record.check not in HYPOTHESIS_CHECKS):
                bar.write(f"    {record.status}: {_first_line(record.message, 200)}\n"
                          f"    repro: {record.repro}")
        bar.update(1)

    return bar, on_result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        backends = resolve_backends(args.backend)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    infos: dict[str, BackendInfo] = {}
    if args.case or args.invalid or args.property:
        try:
            records = [record for b in backends for record in run_single(args, b)]
        except (ValueError, LoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        database = None if args.no_db else str(DEFAULT_DB)
        jobs = [Job(b, check, args.profile, args.seed, database, args.threads, args.timeout)
                for b in backends for check in args.checks.split(",")]
        bar, on_result = _progress(len(jobs))
        records = []

        def collect(result: CheckResult) -> None:
            records.extend(result.records)
            infos[result.job.backend] = result.backend
            on_result(result)

        try:
            run_jobs(jobs, args.jobs, on_result=collect)
        except KeyboardInterrupt:
            print(f"\ninterrupted: reporting the {len(records)} cases finished so far", file=sys.stderr)
        finally:
            bar.close()
    if args.report:
        meta = dict(profile=args.profile, seed=args.seed, backends=backends,
                    seconds=time.time() - started, command=" ".join(sys.argv),
                    backend_info=[dataclasses.asdict(i) for i in infos.values()])
        save_results(records, args.report, meta)
        print(f"report: {write_report(args.report)}", file=sys.stderr)
    counts = Counter(str(r.status) for r in records)
    print(f"{len(records)} cases in {time.time() - started:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 1 if any(r.status.failing for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
