"""python -m bench.phases: where our backends' time goes, phase by phase: numba-direct (padding,
lane expansion, direct kernel) and numpy-im2col (padding, column packing, GEMM, output layout)
side by side, in one process with the same threads.

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

from backends.base import Backend
from backends.numba_direct import NumbaDirect
from backends.numpy_im2col import NumpyIm2col
from backends.phases import recording
from bench.workloads import Workload, load
from runtime.data import make_arrays
from runtime.files import atomic_write
from runtime.tables import markdown_table

PHASES = ("pad", "lanes", "kernel", "pack", "gemm", "layout", "multiply-add", "bias", "epilogue")


def profile(workload: Workload, backend: Backend, dtype: str, repeats: int) -> dict[str, float]:
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
    p.add_argument("--workloads", default="default", help="quick, default, wide, full or a CSV file")
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
    backends = {"numba-direct": NumbaDirect(), "numpy-im2col": NumpyIm2col()}
    for backend in backends.values():
        backend.set_threads(args.threads)
    rows = []
    for name, backend in backends.items():  # one backend at a time: BLAS threads spinning after a GEMM
        for workload in workloads:          # would otherwise steal the cores from the next kernel
            ms = profile(workload, backend, args.dtype, args.repeats)
            rows.append(dict(workload=workload.name, backend=name, **{k: round(v, 2) for k, v in ms.items()}))
            print(f"{workload.name[:40]:<40} {name:<12} {ms['total']:8.2f} ms", file=sys.stderr)
    table = pd.DataFrame(rows).fillna(0.0)
    phases = [c for c in (*PHASES, "other") if c in table and table[c].any()]
    columns = ["workload", "backend", "total", *phases]
    table = table[columns].sort_values(["workload", "backend"], key=lambda c: c.map(
        {w.name: i for i, w in enumerate(workloads)}) if c.name == "workload" else c)
    speedup = table.pivot(index="workload", columns="backend", values="total")
    speedup = (speedup["numpy-im2col"] / speedup["numba-direct"]).round(2)
    speedup = speedup.rename("numpy-im2col / numba-direct")
    command = "python -m bench.phases " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        "# numba-direct and numpy-im2col: where the time goes", "", f"`{command}`", "",
        f"Median milliseconds per call over {args.repeats} calls, {args.dtype}, {args.threads} threads, "
        "both backends measured in the same process. 'other' is the call minus its timed phases "
        "(tiling, allocation, Python).", "",
        markdown_table(table.set_index("workload")), "",
        "## Speed-up of numba-direct over numpy-im2col (same run)", "",
        markdown_table(speedup.to_frame()), "",
        f"Geometric mean: **{float(np.exp(np.log(speedup).mean())):.2f}x**.", ""])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
