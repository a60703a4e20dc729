"""python -m bench.phases: where numpy-im2col's time goes, phase by phase (padding, lane expansion,
direct kernel; or padding, column packing, GEMM, output layout), for the direct kernels and the
im2col + GEMM path side by side, in one process with the same threads.

    python -m bench.phases --workloads default --out reports/bench/phases.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from backends.numpy_im2col import NumpyIm2col
from backends.phases import recording
from bench.workloads import Workload, load
from conformance.data import make_arrays
from conformance.report import atomic_write, markdown_table

PHASES = ("pad", "lanes", "kernel", "pack", "gemm", "layout", "multiply-add", "bias", "epilogue")


def profile(workload: Workload, backend: NumpyIm2col, dtype: str, repeats: int) -> dict[str, float]:
    """Median milliseconds per call: the whole call, each phase, and the rest ("other")."""
    spec = workload.spec
    x, w, b = make_arrays(spec, dtype, "normal", 0)
    prepared = backend.prepare(x, w, b, **spec.conv_kwargs())
    prepared.run()  # compiles, warms caches
    rows = []
    for _ in range(repeats):
        with recording() as phases:
            started = time.perf_counter()
            prepared.run()
            total = time.perf_counter() - started
        rows.append(dict(phases, total=total))
    ms = (pd.DataFrame(rows).fillna(0.0).median() * 1e3).to_dict()
    ms["other"] = max(0.0, ms["total"] - sum(v for k, v in ms.items() if k != "total"))
    return ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.phases", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", default="default", help="quick, default, full or a CSV file")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("reports/bench/phases.md"))
    args = p.parse_args(argv)
    try:
        workloads, _ = load(args.workloads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = {"direct": NumpyIm2col(direct=True), "im2col+GEMM": NumpyIm2col(direct=False)}
    for backend in paths.values():
        backend.set_threads(args.threads)
    rows = []
    for path, backend in paths.items():  # one path at a time: BLAS threads spinning after a GEMM
        for workload in workloads:       # would otherwise steal the cores from the next kernel
            ms = profile(workload, backend, args.dtype, args.repeats)
            rows.append(dict(workload=workload.name, path=path, **{k: round(v, 2) for k, v in ms.items()}))
            print(f"{workload.name[:40]:<40} {path:<12} {ms['total']:8.2f} ms", file=sys.stderr)
    table = pd.DataFrame(rows).fillna(0.0)
    columns = ["workload", "path", "total"] + [c for c in (*PHASES, "other") if c in table and table[c].any()]
    table = table[columns].sort_values(["workload", "path"], key=lambda c: c.map(
        {w.name: i for i, w in enumerate(workloads)}) if c.name == "workload" else c)
    speedup = table.pivot(index="workload", columns="path", values="total")
    speedup = (speedup["im2col+GEMM"] / speedup["direct"]).round(2).rename("im2col+GEMM / direct")
    command = "python -m bench.phases " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# numpy-im2col: where the time goes", "", f"`{command}`", "",
        f"Median milliseconds per call over {args.repeats} calls, {args.dtype}, {args.threads} threads, "
        "both paths measured in the same process. 'other' is the call minus its timed phases "
        "(tiling, allocation, Python).", "",
        markdown_table(table.set_index("workload")), "",
        "## Speed-up of the direct kernels over im2col + GEMM (same run)", "",
        markdown_table(speedup.to_frame()), "",
        f"Geometric mean: **{float(np.exp(np.log(speedup).mean())):.2f}x**.", ""])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
