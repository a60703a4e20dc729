"""Timing as BENCHMARKING.md prescribes: prepare apart from run, warm-up, adaptive repeats, stats."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np


def summarize(times: list[float]) -> dict:
    """min / median / mean / interquartile range of a list of seconds."""
    a = np.asarray(times, dtype=np.float64)
    q1, q3 = np.percentile(a, [25, 75])
    return dict(repeats=len(a), min_s=float(a.min()), median_s=float(np.median(a)),
                mean_s=float(a.mean()), iqr_s=float(q3 - q1))


def time_call(backend, x, kernel, bias, args: dict, min_repeats: int = 5, min_seconds: float = 1.0,
              max_repeats: int = 100_000, warmup: int = 1, trace_memory: bool = True,
              dy: np.ndarray | None = None) -> dict:
    """Prepare once (timed), run once more than `warmup` (first-call latency), then repeat until
    both `min_repeats` calls and `min_seconds` of calls are reached. A timed call runs and brings
    the output back to NumPy (`to_numpy`: the layout conversion and copy a user pays), and
    output_s is the median of that conversion alone. Runs in the backend's worker. With `dy`, the
    backward call (output: the (dx, dkernel, dbias) tuple)."""
    started = time.perf_counter()
    if dy is not None:
        prepared = backend.prepare_grad(x, kernel, bias, dy, **args)
    else:
        prepared = backend.prepare(x, kernel, bias, **args)
    sync = prepared.synchronize
    sync()
    prepare_s = time.perf_counter() - started
    first = time.perf_counter()
    out = prepared.run()
    sync()
    first_run_s = time.perf_counter() - first
    for _ in range(max(warmup - 1, 0)):
        out = prepared.run()
    sync()
    times: list[float] = []
    conversions: list[float] = []
    while (len(times) < min_repeats or sum(times) < min_seconds) and len(times) < max_repeats:
        t0 = time.perf_counter()
        out = prepared.run()
        sync()
        t1 = time.perf_counter()
        result = prepared.to_numpy(out)
        t2 = time.perf_counter()
        times.append(t2 - t0)
        conversions.append(t2 - t1)
    peak = None
    if trace_memory:  # allocations made through Python's allocators (NumPy's included)
        tracemalloc.start()
        prepared.run()
        sync()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return dict(summarize(times), times=times, output_s=float(np.median(conversions)), prepare_s=prepare_s,
                first_call_s=prepare_s + first_run_s, traced_peak_bytes=peak,
                output=result if dy is not None else np.asarray(result))


def gemm_peak(threads: int | None = None, n: int = 2048, seconds: float = 1.0) -> float:
    """The machine's float32 GEMM rate in GFLOP/s through NumPy's BLAS, median of repeats."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads):
        a @ b  # warm-up
        times: list[float] = []
        while len(times) < 5 or sum(times) < seconds:
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times)) / 1e9


WIDE_CORETYPE = "SkylakeX"  # OpenBLAS's AVX-512 kernels


def wide_gemm_peak(threads: int | None = None) -> float | None:
    """gemm_peak with OpenBLAS's AVX-512 kernels, measured in a subprocess, where the CPU has
    AVX-512 but the environment pins OpenBLAS to other kernels (OPENBLAS_CORETYPE); else None.
    The environment's setting stays in force everywhere else: this is a second yardstick for
    kernels that use AVX-512 (torch, tensorflow, numba's), not a change to the machine."""
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    if not pinned or pinned == WIDE_CORETYPE or " avx512f" not in flags:
        return None
    code = f"from runtime.timing import gemm_peak; print(gemm_peak({threads!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=os.environ | {"OPENBLAS_CORETYPE": WIDE_CORETYPE},
                          cwd=Path(__file__).resolve().parents[1])
    return float(done.stdout.strip()) if done.returncode == 0 else None
