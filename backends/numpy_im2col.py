"""numpy-im2col: our NumPy backend. Tiled im2col + NumPy's BLAS GEMM (backends.im2col, the code
cupy-im2col shares), a multiply-add per tap for depthwise layers, one GEMM for pointwise ones.
It needs NumPy only (no numba). Extra memory per call stays within the workspace budget.
"""

from __future__ import annotations

import numpy as np

from backends import im2col, im2col_grad
from backends.base import Backend, Capabilities, Prepared, grad_arrays
from backends.phases import phase
from reference.activations import apply_activation
from reference.formats import LOW_PRECISION
from reference.spec import Conv3DSpec

DEFAULT_WORKSPACE_BYTES = 256 * 2**20

#: float16 and bfloat16 inputs are summed in float32 and the result rounded once, at the end
LOW_PRECISION_CAPABILITIES = dict(dtypes=("float32", "float64", *LOW_PRECISION),
                                  compute_precision={d: "float32" for d in LOW_PRECISION})


def working_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype our kernels compute in: float32 for float16/bfloat16 inputs, else the input's."""
    return np.dtype(np.float32) if dtype.name in LOW_PRECISION else dtype


def working_input(x_cl: np.ndarray) -> np.ndarray:
    """x (channels last) in the working dtype: a contiguous float32 copy of a low-precision input
    (made in each call: converting the user's array is part of the call), else x itself."""
    work = working_dtype(x_cl.dtype)
    return x_cl if work == x_cl.dtype else np.ascontiguousarray(x_cl, dtype=work)


def rounded(grads: object, dtype: np.dtype) -> object:
    """grad_arrays' (dx, dkernel, dbias) rounded to `dtype` (from the working dtype)."""
    grads = grad_arrays(grads)
    if not isinstance(grads, tuple):
        return grads
    return tuple(None if g is None else g.astype(dtype, copy=False) for g in grads)


def channels_last_operands(spec: Conv3DSpec, x, kernel, bias, dy=None) -> tuple:
    """(x channels last in its own dtype, kernel C-contiguous, bias, dy in the working dtype; bias
    and dy None when not given; dy keeps its layout)."""
    work = working_dtype(x.dtype)
    x_cl = x if spec.channels_last else np.moveaxis(x, 1, -1)
    return (x_cl, np.ascontiguousarray(kernel, dtype=work),
            *(None if a is None else np.asarray(a, dtype=work) for a in (bias, dy)))


def epilogue(out: np.ndarray, spec: Conv3DSpec, dtype: np.dtype) -> np.ndarray:
    """A channels-last pre-activation output in the input's layout, activated, in `dtype`."""
    with phase("epilogue"):
        if not spec.channels_last:  # before the activation: axis ones act on the last axis
            out = np.moveaxis(out, -1, 1)
        return apply_activation(out, spec.activation).astype(dtype, copy=False)


class NumpyIm2col(Backend):
    """Every SPEC.md feature; float32 and float64 accumulate in the input dtype, float16 and
    bfloat16 in float32."""

    name = "numpy-im2col"
    libraries = ("numpy",)
    capabilities = Capabilities(
        host_memory_traced=True, directions=("forward", "backward"), **LOW_PRECISION_CAPABILITIES,
        notes=("backward: dz by the reference's act', dkernel = im2col^T dz (the columns shared with "
               "the recomputed forward when they fit 64 MiB) and dx by col2im (depthwise: a "
               "multiply-add per tap)",
               "im2col + NumPy GEMM (pointwise: one GEMM; depthwise: a multiply-add per tap)",
               "activations evaluated by the reference's NumPy definitions",
               f"workspace budget {DEFAULT_WORKSPACE_BYTES // 2**20} MiB by default"))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> None:
        self.workspace_bytes = workspace_bytes

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        dtype = x.dtype
        x_cl, kernel, bias, _ = channels_last_operands(spec, x, kernel, bias)

        def run() -> np.ndarray:
            out = im2col.conv3d_channels_last(np, working_input(x_cl), kernel, bias, spec,
                                              self.workspace_bytes)
            return epilogue(out, spec, dtype)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        dtype, work = x.dtype, working_dtype(x.dtype)
        x_cl, kernel, bias, dy = channels_last_operands(spec, x, kernel, bias, dy)
        x_cl = working_input(x_cl)

        def pre_activation(cols) -> np.ndarray:
            if cols is not None:
                return im2col_grad.pre_activation_from_columns(np, cols, kernel, bias, spec)
            return im2col.conv3d_channels_last(np, x_cl, kernel, bias, spec, self.workspace_bytes)

        def run():
            # one set of columns for the recomputed forward and dkernel, when they fit
            cols = im2col_grad.all_columns(np, x_cl, spec) if im2col.choose_path(spec) == "im2col" else None
            dz = im2col_grad.pre_activation_cotangent(np, lambda: pre_activation(cols), dy, spec, work)
            dx, dkernel, dbias = im2col_grad.conv3d_grad_channels_last(np, x_cl, kernel, dz, spec, cols)
            dx = dx if spec.channels_last else np.moveaxis(dx, -1, 1)
            return dx, dkernel, dbias if bias is not None else None

        return Prepared(run=run, to_numpy=lambda grads: rounded(grads, dtype))
