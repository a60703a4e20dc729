"""python -m conformance: check backends against the reference and write the report.

Exit status: 0 when nothing failed, 1 on any FAIL / REJECTED-VALID / ACCEPTED-INVALID / CRASHED,
2 on usage errors.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from backends.registry import available_backends, get_backend
from backends.worker import LoadError, Worker
from conformance.cases import Case, InvalidCase
from conformance.data import REGIMES
from conformance.engine import CHECKS, DEFAULT_DB, Job, run_jobs
from conformance.execute import run_case, run_invalid
from conformance.judge import FAILING
from conformance.profiles import DEFAULT_PROFILE, PROFILES
from conformance.properties import PROPERTIES, Problem, check_property
from conformance.report import write_report
from reference.spec import Conv3DSpec


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


def resolve_backends(names: list[str]) -> list[str]:
    """Expand 'all'; validate the rest (ValueError names what is wrong)."""
    resolved: list[str] = []
    for name in names:
        if name == "all":
            for backend in available_backends():
                print(f"  {backend.name}: available", file=sys.stderr)
                resolved.append(backend.name)
        else:
            get_backend(name)
            resolved.append(name)
    return list(dict.fromkeys(resolved))


def _print_row(row: dict) -> None:
    worst = ""
    if row.get("worst_index") is not None and row.get("status") != "PASS":
        worst = (f"\n  worst element {row['worst_index']}: expected {row['worst_expected']!r}, "
                 f"got {row['worst_got']!r}, error/bound {row['worst_ratio']:.3g}, "
                 f"{row['worst_ulps']:.3g} ulps")
    print(f"{row['status']}: {row['case']}\n  {row['message'].splitlines()[0] if row['message'] else ''}"
          f"{worst}\n  repro: {row['repro']}")


def run_single(args: argparse.Namespace, backend: str) -> list[dict]:
    with Worker(backend, threads=args.threads, timeout_s=args.timeout) as worker:
        if args.case:
            case = Case(Conv3DSpec.from_descriptor(args.case), args.dtype, args.data, args.seed,
                        check="repro")
            rows = [run_case(worker, case)]
        elif args.invalid:
            rows = [run_invalid(worker, InvalidCase.from_json(args.invalid))]
        else:
            problem = Problem(*PROFILES[args.profile].property_problem)
            rows = [check_property(worker, args.property, problem, args.dtype, args.seed)]
    for row in rows:
        _print_row(row)
    return rows


def _progress(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="check", file=sys.stderr, dynamic_ncols=True)

    def on_rows(job: Job, rows: list[dict]) -> None:
        counts = Counter(r["status"] for r in rows)
        bar.write(f"{job.backend:>18} {job.check:<10} {len(rows):5d} cases  " +
                  " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        for row in rows:
            generated = row["check"] in ("exact", "realistic", "extreme", "invalid")
            if row["status"] in FAILING and (row.get("shrunk") or not generated):
                first_line = row["message"].splitlines()[0][:200] if row["message"] else ""
                bar.write(f"    {row['status']}: {first_line}\n    repro: {row['repro']}")
        bar.update(1)

    return bar, on_rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        backends = resolve_backends(args.backend)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.time()
    if args.case or args.invalid or args.property:
        try:
            rows = [row for b in backends for row in run_single(args, b)]
        except (ValueError, LoadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        database = None if args.no_db else str(DEFAULT_DB)
        jobs = [Job(b, check, args.profile, args.seed, database, args.threads, args.timeout)
                for b in backends for check in args.checks.split(",")]
        bar, on_rows = _progress(len(jobs))
        rows = []
        try:
            run_jobs(jobs, args.jobs, on_rows=lambda job, r: (rows.extend(r), on_rows(job, r)))
        except KeyboardInterrupt:
            print(f"\ninterrupted: reporting the {len(rows)} cases finished so far", file=sys.stderr)
        finally:
            bar.close()
    failing = [r for r in rows if r["status"] in FAILING]
    if args.report:
        meta = dict(profile=args.profile, seed=args.seed, backends=backends,
                    seconds=time.time() - started, command=" ".join(sys.argv))
        print(f"report: {write_report(rows, args.report, meta)}", file=sys.stderr)
    counts = Counter(r["status"] for r in rows)
    print(f"{len(rows)} cases in {time.time() - started:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
