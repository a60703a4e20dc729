"""python -m bench.reference_speed: multiply-adds per second of the exact reference, forward and
backward (conv3d_grad: dx, dkernel and dbias, three times the forward's multiply-adds), for the
selected engine (`--both`: the pure-Python one too)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from reference import Conv3DSpec, conv3d_grad, engine, evaluate


def measure(spec: Conv3DSpec, dtype: str = "float32", repeats: int = 3,
            backward: bool = False) -> float:
    """Median multiply-adds per second (backward: the forward's three times over, the forward
    evaluation that conv3d_grad also runs not counted)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(spec.input_shape).astype(dtype)
    w = rng.standard_normal(spec.kernel_shape).astype(dtype)
    dy = rng.standard_normal(spec.output_shape).astype(dtype)

    def call():
        if backward:
            conv3d_grad(x, w, None, dy, **spec.conv_kwargs())
        else:
            evaluate(x, w, **spec.conv_kwargs())

    call()  # compile / warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return (3 if backward else 1) * spec.flops / 2 / float(np.median(times))


def main() -> int:
    if os.environ.get("CONV3D_REFERENCE_ENGINE") == "python":
        spec = Conv3DSpec(filters=8, kernel_size=3, input_shape=(1, 6, 6, 6, 8))
    else:
        spec = Conv3DSpec(filters=32, kernel_size=3, input_shape=(4, 10, 10, 10, 128))
    for direction in ("forward", "backward"):
        for dtype in ("float32", "float64"):
            rate = measure(spec, dtype, backward=direction == "backward")
            print(f"{engine():>6} {direction:8} {dtype}: {rate / 1e6:9.1f} million multiply-adds/s "
                  f"({spec.descriptor})")
    if engine() == "numba" and "--both" in sys.argv:
        env = dict(os.environ, CONV3D_REFERENCE_ENGINE="python")
        subprocess.run([sys.executable, "-m", "bench.reference_speed"], env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
