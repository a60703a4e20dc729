"""dkernel of numba-direct by numba kernels: the sum over batch and outputs of x (padded) times
dz, accumulated in the input dtype. Two kernels:
- grouped (layers of MIN_GROUPS groups or more): one kernel tap per parallel job, vectorised over
  groups. x and dz are first transposed to (..., C/groups, groups) and (..., F/groups, groups), so
  that for each output position the job adds the outer products x[ci, :] * dz[f, :] lane by lane,
  one lane per group (a depthwise layer: one vector over the channels);
- blocked (groups of 16 to 64 filters, see plan.filter_grad_blocks): a block of channels x filters
  per job, in registers, like the forward broadcast kernel with the output positions as the sum.
Other layers take NumPy's GEMM of im2col^T dz (backends.im2col_grad.kernel_grad). numba may
reassociate and fuse, which the bound allows for any summation order.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from backends.im2col_grad import padded_input
from backends.numba_direct.kernels import _unravel_job
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
    xpad = padded_input(np, x_cl, spec)
    xt = np.ascontiguousarray(xpad.reshape(*xpad.shape[:4], groups, cg).swapaxes(4, 5))
    dzt = np.ascontiguousarray(dz.reshape(*dz.shape[:4], groups, fg).swapaxes(4, 5))
    acc = np.zeros((int(np.prod(spec.kernel_size)), cg, fg, groups), dz.dtype)
    _grouped_filter_grad(xt, dzt, acc, np.array(spec.strides), np.array(spec.dilation_rate),
                         *spec.kernel_size[1:])
    # acc[tap, ci, f, g] -> dkernel[tap, ci, g*fg + f]
    return np.ascontiguousarray(acc.swapaxes(2, 3)).reshape(*spec.kernel_size, cg, spec.filters)


@functools.cache
def _blocked_filter_grad(rc: int, fb: int):
    """The dense (and few-group) dkernel kernel for blocks of rc input channels x fb filters, held
    in registers while a job runs over every output position: per position, fb/lanes vectors of
    dz times rc broadcast inputs, like the forward's broadcast kernel with pixels as the sum."""
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(xpad, dz, out, c_starts, f_starts, strides, dilation):
        """out[g, a, b, c, ci, f] = sum over n, i, j, k of xpad[n, i*sd + a*dd, j*sh + b*dh,
        k*sw + c*dw, g*cg + ci] * dz[n, i, j, k, g*fg + f], for the blocks of channels starting at
        c_starts and of filters at f_starts (the last of each overlaps the one before; its lanes
        the one before covers are not stored, so no two threads write one element)."""
        groups, kd, kh, kw, cg, fg = out.shape
        batch, do, ho, wo = dz.shape[0], dz.shape[1], dz.shape[2], dz.shape[3]
        sd, sh, sw = strides
        dd, dh, dw = dilation
        nc, nf = c_starts.size, f_starts.size
        for job in numba.prange(groups * kd * kh * kw * nc * nf):
            fblk, cblk, t, g, _ = _unravel_job(job, nf, nc, kd * kh * kw, groups)
            a, b, c = t // (kh * kw), t // kw % kh, t % kw
            c0, f0 = c_starts[cblk], f_starts[fblk]
            x0 = np.uint64(g * cg + c0)  # unsigned channel indices: no negative wrap-around
            z0 = np.uint64(g * fg + f0)
            acc = np.zeros((rc, fb), dtype=out.dtype)
            for n in range(batch):
                for i in range(do):
                    d = i * sd + a * dd
                    for j in range(ho):
                        h = j * sh + b * dh
                        for k in range(wo):
                            w = k * sw + c * dw
                            for q in range(rc):
                                xv = xpad[n, d, h, w, x0 + np.uint64(q)]
                                for f in range(fb):
                                    acc[q, f] += xv * dz[n, i, j, k, z0 + np.uint64(f)]
            first_c = 0 if cblk == 0 else c_starts[cblk - 1] + rc - c0
            first_f = 0 if fblk == 0 else f_starts[fblk - 1] + fb - f0
            for q in range(first_c, rc):
                for f in range(first_f, fb):
                    out[g, a, b, c, c0 + q, f0 + f] = acc[q, f]
    return kernel


def blocked_kernel_grad(x_cl: np.ndarray, dz: np.ndarray, spec: Conv3DSpec, rc: int, fb: int) -> np.ndarray:
    """dkernel (kd, kh, kw, C/groups, F) in dz's dtype by `_blocked_filter_grad` (C/groups >= rc,
    F/groups >= fb)."""
    from backends.numba_direct.layout import block_starts

    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    xpad = padded_input(np, x_cl, spec)
    out = np.empty((groups, *spec.kernel_size, cg, fg), dz.dtype)
    _blocked_filter_grad(rc, fb)(xpad, np.ascontiguousarray(dz), out, block_starts(0, cg, rc),
                                 block_starts(0, fg, fb), spec.strides, spec.dilation_rate)
    return np.ascontiguousarray(np.moveaxis(out, 0, 4)).reshape(*spec.kernel_size, cg, spec.filters)
