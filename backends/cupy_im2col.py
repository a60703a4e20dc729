"""cupy-im2col: the numpy-im2col algorithm (backends.im2col) on a CUDA GPU through CuPy.

Columns are gathered on the device tile by tile (bounded workspace) and multiplied with cuBLAS via
cupy.matmul. TF32 stays off (CUPY_TF32=0 before CuPy loads), so float32 is declared float32.
linear and relu run on the device; other activations are applied on the host after the copy back,
outside the timed run.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared
from backends.im2col import conv3d_channels_last
from reference.activations import apply_activation

DEFAULT_WORKSPACE_BYTES = 1 << 30
DEVICE_ACTIVATIONS = (None, "linear", "relu")


def _cupy():
    os.environ.setdefault("CUPY_TF32", "0")
    import cupy

    return cupy


class CupyIm2col(Backend):
    name = "cupy-im2col"
    libraries = ("cupy",)
    capabilities = Capabilities(dtypes=("float32", "float64"), devices=("cuda",),
                                notes=("cuBLAS GEMM with TF32 off (CUPY_TF32=0)",
                                       "activations other than linear/relu applied on the host"))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> None:
        self.workspace_bytes = workspace_bytes

    def availability(self) -> Availability:
        if importlib.util.find_spec("cupy") is None:
            return Availability(False, "cupy is not installed")
        try:
            count = _cupy().cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - no driver, no runtime: all mean "no GPU"
            return Availability(False, f"no CUDA device ({type(exc).__name__}: {exc})")
        return Availability(True) if count else Availability(False, "no CUDA device")

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        cp = _cupy()
        x_dev = cp.asarray(x)
        x_cl = x_dev if spec.channels_last else cp.moveaxis(x_dev, 1, -1)
        kernel_dev = cp.asarray(kernel, dtype=x.dtype)
        bias_dev = None if bias is None else cp.asarray(bias, dtype=x.dtype)
        on_device = spec.activation in DEVICE_ACTIVATIONS

        def run():
            out = conv3d_channels_last(cp, x_cl, kernel_dev, bias_dev, spec, self.workspace_bytes)
            if not spec.channels_last:
                out = cp.moveaxis(out, -1, 1)
            return cp.maximum(out, 0) if spec.activation == "relu" else out

        def to_numpy(out) -> np.ndarray:
            host = np.ascontiguousarray(cp.asnumpy(out))
            return host if on_device else apply_activation(host, spec.activation).astype(x.dtype)

        return Prepared(run=run, to_numpy=to_numpy, synchronize=cp.cuda.Device().synchronize)
