"""dkernel of numba-direct for depthwise layers: per channel, the sum over batch and outputs of x
(padded) times dz, one kernel tap per parallel job, accumulated in the input dtype.

Other layers take NumPy's GEMM per tap (backends.im2col_grad.kernel_grad): for a depthwise layer
that would be C products of 1 x M by M x 1 per tap; here each job runs over the outputs once with
one accumulator vector over the channels. numba may reassociate and fuse, which the bound allows
for any summation order.
"""

from __future__ import annotations

import numba
import numpy as np

from reference.spec import Conv3DSpec


@numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def _depthwise_filter_grad(xpad, dz, out, strides, dilation):
    """out[a, b, c, 0, ch] = sum over n, o of xpad[n, o*s + (a, b, c)*d, ch] * dz[n, o, ch]."""
    kd, kh, kw = out.shape[0], out.shape[1], out.shape[2]
    batch, do, ho, wo, channels = dz.shape
    for job in numba.prange(kd * kh * kw):
        a, b, c = job // (kh * kw), job // kw % kh, job % kw
        acc = np.zeros(channels, dz.dtype)
        for n in range(batch):
            for i in range(do):
                for j in range(ho):
                    for k in range(wo):
                        xrow = xpad[n, i * strides[0] + a * dilation[0], j * strides[1] + b * dilation[1],
                                    k * strides[2] + c * dilation[2]]
                        drow = dz[n, i, j, k]
                        for ch in range(channels):
                            acc[ch] += xrow[ch] * drow[ch]
        out[a, b, c, 0] = acc


def depthwise_kernel_grad(x_cl: np.ndarray, dz: np.ndarray, spec: Conv3DSpec) -> np.ndarray:
    """dkernel (kd, kh, kw, 1, C) of a depthwise layer (groups = channels = filters), dz's dtype."""
    xpad = np.pad(x_cl, ((0, 0), *spec.pads, (0, 0)))
    out = np.empty((*spec.kernel_size, 1, spec.filters), dz.dtype)
    _depthwise_filter_grad(xpad, np.ascontiguousarray(dz), out, np.array(spec.strides),
                           np.array(spec.dilation_rate))
    return out
