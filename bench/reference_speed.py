"""python -m bench.reference_speed: multiply-adds per second of the exact reference (both engines)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from reference import Conv3DSpec, engine, evaluate


def measure(spec: Conv3DSpec, dtype: str = "float32", repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(spec.input_shape).astype(dtype)
    w = rng.standard_normal(spec.kernel_shape).astype(dtype)
    evaluate(x, w, **spec.conv_kwargs())  # compile / warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate(x, w, **spec.conv_kwargs())
        times.append(time.perf_counter() - t0)
    return spec.flops / 2 / float(np.median(times))


def main() -> int:
    if os.environ.get("CONV3D_REFERENCE_ENGINE") == "python":
        spec = Conv3DSpec(filters=8, kernel_size=3, input_shape=(1, 6, 6, 6, 8))
    else:
        spec = Conv3DSpec(filters=32, kernel_size=3, input_shape=(4, 10, 10, 10, 128))
    for dtype in ("float32", "float64"):
        print(f"{engine():>6} {dtype}: {measure(spec, dtype) / 1e6:9.1f} million multiply-adds/s "
              f"({spec.descriptor})")
    if engine() == "numba" and "--both" in sys.argv:
        env = dict(os.environ, CONV3D_REFERENCE_ENGINE="python")
        subprocess.run([sys.executable, "-m", "bench.reference_speed"], env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
