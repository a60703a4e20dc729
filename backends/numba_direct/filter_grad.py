"""dkernel of numba-direct for layers of many groups: the sum over batch and outputs of x (padded)
times dz, one kernel tap per parallel job, accumulated in the input dtype, vectorised over groups.

x and dz are first transposed to (..., C/groups, groups) and (..., F/groups, groups), so that for
each output position the job adds the outer products x[ci, :] * dz[f, :] lane by lane, one lane
per group (a depthwise layer: one vector over the channels). Layers of few groups take NumPy's GEMM
per tap instead (backends.im2col_grad.kernel_grad), what BLAS does best; with many small groups
that would be G tiny products per tap. numba may reassociate and fuse, which the bound allows
for any summation order.
"""

from __future__ import annotations

import numba
import numpy as np

from reference.numba_target import configure
from reference.spec import Conv3DSpec

configure()  # numba's target, chosen before the first compile (reference.numba_target)

MIN_GROUPS = 8  # from here on the group lanes fill half a 512-bit vector of float32 or more


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _grouped_filter_grad(xt, dzt, acc, strides, dilation, kh, kw):
    """acc[tap, ci, f, g] = sum over n, o of xt[n, o*s + tap*d, ci, g] * dzt[n, o, f, g], tap =
    (a, b, c) numbered a*kh*kw + b*kw + c."""
    taps, cg, fg, groups = acc.shape
    batch, do, ho, wo = dzt.shape[0], dzt.shape[1], dzt.shape[2], dzt.shape[3]
    for tap in numba.prange(taps):
        a, b, c = tap // (kh * kw), tap // kw % kh, tap % kw
        local = np.zeros((cg, fg, groups), acc.dtype)  # not a view of acc: see kernels.py
        for n in range(batch):
            for i in range(do):
                p = i * strides[0] + a * dilation[0]
                for j in range(ho):
                    q = j * strides[1] + b * dilation[1]
                    for k in range(wo):
                        r = k * strides[2] + c * dilation[2]
                        for ci in range(cg):
                            for f in range(fg):
                                for g in range(groups):
                                    local[ci, f, g] += xt[n, p, q, r, ci, g] * dzt[n, i, j, k, f, g]
        acc[tap] = local


def grouped_kernel_grad(x_cl: np.ndarray, dz: np.ndarray, spec: Conv3DSpec) -> np.ndarray:
    """dkernel (kd, kh, kw, C/groups, F) of a grouped layer, in dz's dtype."""
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    xpad = np.pad(x_cl, ((0, 0), *spec.pads, (0, 0)))
    xt = np.ascontiguousarray(xpad.reshape(*xpad.shape[:4], groups, cg).swapaxes(4, 5))
    dzt = np.ascontiguousarray(dz.reshape(*dz.shape[:4], groups, fg).swapaxes(4, 5))
    acc = np.zeros((int(np.prod(spec.kernel_size)), cg, fg, groups), dz.dtype)
    _grouped_filter_grad(xt, dzt, acc, np.array(spec.strides), np.array(spec.dilation_rate),
                         *spec.kernel_size[1:])
    # acc[tap, ci, f, g] -> dkernel[tap, ci, g*fg + f]
    return np.ascontiguousarray(acc.swapaxes(2, 3)).reshape(*spec.kernel_size, cg, spec.filters)
