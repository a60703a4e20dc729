"""python -m bench: time backends on real 3-D layers, verify every timed output, draw the plots.

    python -m bench --backend all --workloads default --out reports/bench
    python -m bench --compare before/results.csv after/results.csv --out reports/compare

Exit status: 0; 1 on a FAIL or CRASHED result; 2 on usage errors; 130 / 143 when SIGINT / SIGTERM
stopped the run (every result so far is kept, the report says INCOMPLETE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.report import compare, write_report
from bench.run import Bench, Settings
from bench.workloads import load
from reference.formats import DTYPES
from runtime.environment import environment
from runtime.files import atomic_write
from runtime.interrupts import Interrupted, Interrupts
from runtime.records import Record
from runtime.selection import resolve_backends
from runtime.tables import frame, save_csv
from runtime.timing import gemm_peak, wide_gemm_peak


def _dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(dict.fromkeys(d.strip() for d in text.split(",") if d.strip()))
    unknown = [d for d in dtypes if d not in DTYPES]
    if unknown or not dtypes:
        raise argparse.ArgumentTypeError(f"unknown dtype {', '.join(unknown) or repr(text)} "
                                         f"(choose from {', '.join(DTYPES)})")
    return dtypes


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", action="append", help="registered name, 'all' or module:attr; repeatable")
    p.add_argument("--workloads", default="default", help="quick, default, wide, full or a CSV file")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every CPU backend")
    p.add_argument("--dtype", default="float32", type=_dtypes,
                   help="input dtype, or several side by side: float32,bfloat16 (each layer timed in "
                        "each, one after the other; backends that do not declare one are UNSUPPORTED)")
    p.add_argument("--direction", default="both", choices=["forward", "backward", "both"],
                   help="time conv3d, conv3d_grad (dx, dkernel, dbias) or both (default)")
    p.add_argument("--repeat", type=int, default=5, help="minimum timed runs")
    p.add_argument("--min-time", type=float, default=1.0, help="minimum seconds of timed runs")
    p.add_argument("--rounds", type=int, default=3,
                   help="split each timing into this many rounds, the backends taking turns (default 3)")
    p.add_argument("--memory-budget-gib", type=float, default=0, help="default: 40%% of available RAM")
    p.add_argument("--baseline", default="best-framework", help="backend the speed-up plot divides by")
    p.add_argument("--out", type=Path, default=Path("reports/bench"))
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE.csv", "AFTER.csv"))
    args = p.parse_args(argv)
    if not args.compare and not args.backend:
        p.error("--backend is required (or --compare)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        print(compare(*args.compare, args.out))
        return 0
    try:
        backends = resolve_backends(args.backend)
        workloads, skipped = load(args.workloads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for reason in skipped:
        print(f"skipped {reason}", file=sys.stderr)
    settings = Settings(dtypes=args.dtype, threads=args.threads, min_repeats=args.repeat,
                        min_seconds=args.min_time, memory_budget=int(args.memory_budget_gib * 2**30),
                        rounds=args.rounds,
                        directions=("forward", "backward") if args.direction == "both" else (args.direction,))
    peak, wide_peak = gemm_peak(args.threads), wide_gemm_peak(args.threads)
    print(f"GEMM peak {peak:.1f} GFLOP/s with {args.threads} threads"
          + (f" ({wide_peak:.1f} with AVX-512 kernels)" if wide_peak else "")
          + f"; {len(workloads)} workloads x {len(backends)} backends", file=sys.stderr)
    meta = dict(command="python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                peak_gflops=peak, wide_peak_gflops=wide_peak, threads=args.threads, dtypes=list(args.dtype),
                min_repeats=args.repeat, min_seconds=args.min_time, rounds=args.rounds,
                directions=list(settings.directions),
                environment=environment(),
                started=time.strftime("%Y-%m-%d %H:%M:%S"))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "meta.json", json.dumps(meta, indent=1))
    records: list[Record] = []

    from tqdm import tqdm

    runs = len(workloads) * len(backends) * len(settings.directions) * len(settings.dtypes)
    bar = tqdm(total=runs, unit="run", file=sys.stderr, dynamic_ncols=True)

    def on_record(record: Record) -> None:
        records.append(record)
        save_csv(frame(records), args.out / "results.csv")  # every result kept as it comes
        done = (f"{record.timing.gflops:.1f} GFLOP/s" if record.timing and record.timing.gflops
                else record.message[:80])
        bar.write(f"{record.case[:42]:<42} {record.direction:<8} {record.dtype:<8} {record.backend:<17} "
                  f"{record.status:<11} {done}")
        bar.update(1)

    with Interrupts() as stop:
        bench = Bench(backends, settings, peak)
        try:
            bench.run(workloads, on_record)
        except Interrupted:
            pass
        finally:
            stop.deferring = True  # from here on a signal waits for the files
            bar.close()
            bench.close()
    if stop.received:
        meta["interrupted"] = f"interrupted by {stop.name} after {len(records)} of {runs} runs"
        print(f"\n{meta['interrupted']}: the results are kept in {args.out}", file=sys.stderr)
        atomic_write(args.out / "meta.json", json.dumps(meta, indent=1))
    rows = json.loads(frame(records).to_json(orient="records")) if records else []
    atomic_write(args.out / "results.json", json.dumps(dict(meta=meta, rows=rows), indent=1))
    if records:
        print(write_report(args.out, args.baseline))
    if stop.received:
        return stop.exit_code
    return 1 if any(r.status.failing for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
