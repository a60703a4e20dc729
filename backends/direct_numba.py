"""A direct (loop) depthwise Conv3D compiled by numba: im2col is poor when every group has one
input channel (columns copied one value at a time, GEMMs with K = kd*kh*kw).

Each output pixel accumulates its taps directly, vectorised over the channels and parallel over
(sample, depth row). numba may reassociate and fuse (fastmath 'reassoc' and 'contract' only,
never the no-NaN/no-inf flags), which the VERIFICATION.md bound allows for any summation order;
NaN and inf propagate as usual. The input is processed in padded slabs (backends.im2col tiles),
so the extra memory stays within the workspace. A depth multiplier > 1 repeats each input
channel for its filters.
"""

from __future__ import annotations

import numpy as np

from backends.im2col import padded_slab, tiles
from reference.spec import Conv3DSpec

try:
    import numba
except ImportError:  # then numpy-im2col uses im2col for every layer
    numba = None

_kernel = None


def applies(spec: Conv3DSpec) -> bool:
    return numba is not None and spec.groups > 1 and spec.in_channels == spec.groups


def _accumulate(slab, w, out, strides, dilation):
    """out[n, od, oh, ow, f] += sum over taps of slab[n, d, h, x, f] * w[a, b, c, f]."""
    n_batch, d_out, h_out, w_out, filters = out.shape
    kd, kh, kw, _ = w.shape
    sd, sh, sw = strides
    dd, dh, dw = dilation
    for nd in numba.prange(n_batch * d_out):
        n = nd // d_out
        od = nd % d_out
        for oh in range(h_out):
            for ow in range(w_out):
                for a in range(kd):
                    for b in range(kh):
                        for c in range(kw):
                            d, h, x = od * sd + a * dd, oh * sh + b * dh, ow * sw + c * dw
                            for f in range(filters):
                                out[n, od, oh, ow, f] += slab[n, d, h, x, f] * w[a, b, c, f]


def conv3d_channels_last(x: np.ndarray, kernel: np.ndarray, bias, spec: Conv3DSpec,
                         workspace_bytes: int) -> np.ndarray:
    """Pre-activation output (N, Do, Ho, Wo, F) of a depthwise layer, channels last, x's dtype."""
    global _kernel
    if _kernel is None:
        _kernel = numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})(_accumulate)
    multiplier = spec.filters // spec.groups
    weights = np.ascontiguousarray(kernel.reshape(*spec.kernel_size, spec.filters))
    out = np.zeros((spec.batch, *spec.output_spatial, spec.filters), dtype=x.dtype)
    per_pixel = 2 * spec.filters * x.dtype.itemsize
    for tile in tiles(spec, per_pixel, min(workspace_bytes // 4, 64 * 2**20)):
        n0, n1, od0, od1, oh0, oh1 = tile
        padded = padded_slab(np, x, spec, tile)
        if multiplier > 1:  # input channel g feeds filters g*m .. g*m + m - 1
            padded = np.repeat(padded, multiplier, axis=-1)
        view = out[n0:n1, od0:od1, oh0:oh1]
        block = view if view.flags.c_contiguous else np.ascontiguousarray(view)
        _kernel(padded, weights, block, spec.strides, spec.dilation_rate)
        if block is not view:
            view[...] = block
    if bias is not None:
        out += bias
    return out
