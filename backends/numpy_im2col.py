"""numpy-im2col: Conv3D as tiled im2col + GEMM in NumPy (the algorithm lives in backends.im2col),
with a numba direct path for grouped layers with few channels per group (backends.direct_numba).

Extra memory per call stays within the workspace budget; the GEMM uses NumPy's BLAS threads.
"""

from __future__ import annotations

import numpy as np

from backends import direct_numba, im2col
from backends.base import Backend, Capabilities, Prepared
from reference.activations import apply_activation

DEFAULT_WORKSPACE_BYTES = 256 * 2**20


class NumpyIm2col(Backend):
    """Our CPU backend: every SPEC.md feature, float32 and float64, BLAS via NumPy's matmul."""

    name = "numpy-im2col"
    capabilities = Capabilities(
        host_memory_traced=True,
        notes=("activations evaluated by the reference's NumPy definitions",
               f"workspace budget {DEFAULT_WORKSPACE_BYTES // 2**20} MiB by default"))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> None:
        self.workspace_bytes = workspace_bytes

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        dtype = x.dtype
        x_cl = x if spec.channels_last else np.moveaxis(x, 1, -1)
        kernel = np.ascontiguousarray(kernel, dtype=dtype)
        bias = None if bias is None else np.asarray(bias, dtype=dtype)

        def run() -> np.ndarray:
            if direct_numba.applies(spec):  # few channels per group: direct loops beat im2col
                out = direct_numba.conv3d_channels_last(x_cl, kernel, bias, spec, self.workspace_bytes)
            else:
                out = im2col.conv3d_channels_last(np, x_cl, kernel, bias, spec, self.workspace_bytes)
            if not spec.channels_last:  # before the activation: axis ones act on the last axis
                out = np.moveaxis(out, -1, 1)
            return apply_activation(out, spec.activation).astype(dtype, copy=False)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)
