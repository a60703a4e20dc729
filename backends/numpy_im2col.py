"""numpy-im2col: Conv3D as im2col plus one GEMM per group, in NumPy, chunked to a memory budget."""

from __future__ import annotations

import numpy as np

from backends.base import Backend, Capabilities, Prepared
from reference.activations import apply_activation
from reference.spec import Conv3DSpec

DEFAULT_WORKSPACE_BYTES = 256 * 2**20


def gather_columns(xpad: np.ndarray, spec: Conv3DSpec, od0: int, od1: int) -> np.ndarray:
    """Columns for output depth rows [od0, od1): shape (G, N*(od1-od0)*Ho*Wo, kd*kh*kw*Cg)."""
    (kd, kh, kw), (sd, sh, sw), (dd, dh, dw) = spec.kernel_size, spec.strides, spec.dilation_rate
    _, ho, wo = spec.output_spatial
    groups, cg = spec.groups, spec.in_channels // spec.groups
    n, rows = xpad.shape[0], od1 - od0
    cols = np.empty((groups, n, rows, ho, wo, kd, kh, kw, cg), dtype=xpad.dtype)
    for a in range(kd):
        d0 = od0 * sd + a * dd
        for b in range(kh):
            for c in range(kw):
                patch = xpad[:, d0:d0 + (rows - 1) * sd + 1:sd,
                             b * dh:b * dh + (ho - 1) * sh + 1:sh,
                             c * dw:c * dw + (wo - 1) * sw + 1:sw, :]
                cols[:, :, :, :, :, a, b, c, :] = np.moveaxis(
                    patch.reshape(n, rows, ho, wo, groups, cg), 4, 0)
    return cols.reshape(groups, n * rows * ho * wo, kd * kh * kw * cg)


def conv3d_channels_last(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                         spec: Conv3DSpec, workspace_bytes: int) -> np.ndarray:
    """Pre-activation output (N, Do, Ho, Wo, F) for a channels-last input, in x's dtype."""
    groups, fg = spec.groups, spec.filters // spec.groups
    n, (do, ho, wo), k = spec.batch, spec.output_spatial, spec.taps
    xpad = np.pad(x, ((0, 0), *spec.pads, (0, 0)))
    weights = np.moveaxis(kernel.reshape(k, groups, fg), 1, 0)  # (G, K, Fg)
    out = np.empty((n, do, ho, wo, spec.filters), dtype=x.dtype)
    bytes_per_depth_row = n * ho * wo * groups * k * x.dtype.itemsize
    rows = max(1, min(do, workspace_bytes // max(bytes_per_depth_row, 1)))
    for od0 in range(0, do, rows):
        od1 = min(do, od0 + rows)
        product = np.matmul(gather_columns(xpad, spec, od0, od1), weights)  # (G, M, Fg)
        out[:, od0:od1] = np.moveaxis(product, 0, 1).reshape(n, od1 - od0, ho, wo, spec.filters)
    if bias is not None:
        out += bias
    return out


class NumpyIm2col(Backend):
    """Our CPU backend: every SPEC.md feature, float32 and float64, BLAS via NumPy's matmul."""

    name = "numpy-im2col"
    capabilities = Capabilities(
        host_memory_traced=True,
        notes=("activations evaluated by the reference's NumPy definitions",))

    def __init__(self, workspace_bytes: int = DEFAULT_WORKSPACE_BYTES) -> None:
        self.workspace_bytes = workspace_bytes

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        x, kernel = np.asarray(x), np.asarray(kernel)
        dtype = x.dtype
        if spec.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        kernel = kernel.astype(dtype, copy=False)
        bias = None if bias is None else np.asarray(bias, dtype=dtype)

        def run() -> np.ndarray:
            out = conv3d_channels_last(x, kernel, bias, spec, self.workspace_bytes)
            if not spec.channels_last:  # before the activation: axis ones act on the last axis
                out = np.moveaxis(out, -1, 1)
            return apply_activation(out, spec.activation).astype(dtype, copy=False)

        return Prepared(run=run, to_numpy=np.ascontiguousarray)
