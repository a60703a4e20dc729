"""numpy-im2col: our CPU backend. Register-blocked direct kernels compiled by numba
(backends.direct_numba) where numba is installed; tiled im2col + NumPy's BLAS GEMM
(backends.im2col) otherwise, or when asked for with `direct=False`.

Extra memory per call stays within the workspace budget.
"""

from __future__ import annotations

import numpy as np

from backends import direct_numba, im2col
from backends.base import Backend, Capabilities, Prepared
from backends.phases import phase
from reference.activations import apply_activation

DEFAULT_WORKSPACE_BYTES = 256 * 2**20


class NumpyIm2col(Backend):
    """Every SPEC.md feature, float32 and float64, accumulation in the input dtype."""

    name = "numpy-im2col"
    capabilities = Capabilities(
        host_memory_traced=True,
        notes=("activations evaluated by the reference's NumPy definitions",
               f"workspace budget {DEFAULT_WORKSPACE_BYTES // 2**20} MiB by default"))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES, direct: bool = True) -> None:
        self.workspace_bytes = workspace_bytes
        self.direct = direct
        if not direct:
            self.name = "numpy-im2col[gemm]"

    def set_threads(self, threads: int) -> None:
        super().set_threads(threads)  # NumPy's BLAS
        if direct_numba.numba is not None:
            direct_numba.numba.set_num_threads(min(threads, direct_numba.numba.config.NUMBA_NUM_THREADS))

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        dtype = x.dtype
        x_cl = x if spec.channels_last else np.moveaxis(x, 1, -1)
        kernel = np.ascontiguousarray(kernel, dtype=dtype)
        bias = None if bias is None else np.asarray(bias, dtype=dtype)
        in_place = x_cl.flags.c_contiguous and bool(np.isfinite(kernel).all())
        plan = direct_numba.plan(spec, dtype, in_place) if self.direct else None
        if plan is not None:
            wp = direct_numba.pack_weights(kernel, spec, plan)
            bp = direct_numba.pack_bias(bias, spec, plan, dtype)

        def run() -> np.ndarray:
            if plan is not None:
                out = direct_numba.conv3d_channels_last(x_cl, wp, bp, spec, plan, self.workspace_bytes)
            else:
                out = im2col.conv3d_channels_last(np, x_cl, kernel, bias, spec, self.workspace_bytes)
            with phase("epilogue"):
                if not spec.channels_last:  # before the activation: axis ones act on the last axis
                    out = np.moveaxis(out, -1, 1)
                return apply_activation(out, spec.activation).astype(dtype, copy=False)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)


gemm_only = NumpyIm2col(direct=False)  # `--backend backends.numpy_im2col:gemm_only` in the bench
