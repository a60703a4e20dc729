"""The four register-blocked numba kernels (see backends.numba_direct for how they work).

Each is a factory cached per block shape: the block sizes are compile-time constants, so LLVM
keeps the accumulators in registers and vectorises the innermost loop.

Inside a prange body the kernels create no array aliases (views, inline helpers taking arrays) and
no boolean variables from `and`/`or`: with either, numba's alias analysis drops its no-alias hints and
LLVM no longer vectorises the accumulation (measured: 5-30x slower). The depthwise and W-vector
kernels cast indices that cannot be negative to unsigned, sparing numba's negative-index fix-ups.
"""

from __future__ import annotations

import functools

import llvmlite.binding
import numba
import numpy as np

from reference.numba_target import configure

configure()  # numba's target, chosen before the first compile (reference.numba_target)

# LLVM fully unrolls constant-trip loops of up to 14 iterations: the row loop (rw <= 14) is
# unrolled into registers, while the filter loop (fb >= 16) stays a loop for the vectoriser.
# Without this, a 16- or 32-filter loop is unrolled into scalars and runs 30x slower.
llvmlite.binding.set_option("conv3d-parity", "-unroll-full-max-count=14")


@numba.njit(inline="always", cache=True)
def _unravel_job(job: int, inner: int, groups: int, rows: int, planes: int) -> tuple[int, ...]:
    """The digits of a job number in the radices (inner, groups, rows, planes, -), the first varying
    fastest: (inner, group, row, plane, batch) as most kernels use them. Scalars only: see the
    aliasing rule above."""
    t = job // inner
    u = t // groups
    v = u // rows
    return job % inner, t % groups, u % rows, v % planes, v // planes


@functools.cache
def broadcast_kernel(rw: int, fb: int):
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(slab, wp, bp, out, origin, source, strides, dilation):
        """out[n0+n, od0+i, oh0+j, ow, (g*blocks + blk)*fb + f] = sum over taps (a, b, c) and ci of
        slab[sn+n, sd0 + i*sd + a*dd, sh0 + j*sh + b*dh, ow*sw + c*dw, g*cg + ci]
        * wp[g, blk, a, b, c, ci, f] (+ bp[g, blk, f] unless bp is empty)."""
        n0, od0, oh0, ns, nd, nh = origin
        sn, sd0, sh0 = source
        sd, sh, sw = strides
        dd, dh, dw = dilation
        groups, nblk, kd, kh, kw, cg, _ = wp.shape
        w_out = out.shape[3]
        for job in numba.prange(ns * nd * nh * groups * nblk):
            # rows vary fastest: the threads' contiguous runs of jobs reuse one weight panel
            j, i, n, g, blk = _unravel_job(job, nh, nd, ns, groups)
            acc = np.empty((rw, fb), dtype=out.dtype)
            for block in range(0, w_out, rw):
                ow0 = min(block, w_out - rw)  # the last block overlaps: same sums, same values
                for r in range(rw):
                    for f in range(fb):
                        acc[r, f] = 0
                for a in range(kd):
                    for b in range(kh):
                        d, h = sd0 + i * sd + a * dd, sh0 + j * sh + b * dh
                        for c in range(kw):
                            for ci in range(cg):
                                channel = np.uint64(g * cg + ci)  # unsigned: no negative wrap-around
                                for r in range(rw):
                                    xv = slab[sn + n, d, h, (ow0 + r) * sw + c * dw, channel]
                                    for f in range(fb):
                                        acc[r, f] += xv * wp[g, blk, a, b, c, ci, f]
                if bp.size:
                    for r in range(rw):
                        for f in range(fb):
                            acc[r, f] += bp[g, blk, f]
                for r in range(rw):
                    for f in range(fb):
                        out[n0 + n, od0 + i, oh0 + j, ow0 + r, (g * nblk + blk) * fb + f] = acc[r, f]
    return kernel


@functools.cache
def lane_kernel(rw: int, fb: int, kw: int, sw: int, dw: int):
    """Specialised on the kernel width, stride and dilation along W as well: the rw x kw input
    vectors of a tap row are then known at compile time, and LLVM loads each distinct one once."""
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(slab, wp, bp, out, origin, source, strides, dilation):
        """out[n0+n, od0+i, oh0+j, ow, blk*fb + f] = sum over taps (a, b, c) and ci of
        slab[sn+n, sd0 + i*sd + a*dd, sh0 + j*sh + b*dh, ow*sw + c*dw, ci, blk, f]
        * wp[blk, a, b, c, ci, f] (+ bp[blk, f] unless bp is empty)."""
        n0, od0, oh0, ns, nd, nh = origin
        sn, sd0, sh0 = source
        sd, sh, _ = strides
        dd, dh, _ = dilation
        nblk, kd, kh, _, cg, _ = wp.shape
        w_out = out.shape[3]
        for job in numba.prange(ns * nd * nh * nblk):
            blk, _, j, i, n = _unravel_job(job, nblk, 1, nh, nd)
            acc = np.empty((rw, fb), dtype=out.dtype)
            for block in range(0, w_out, rw):
                ow0 = min(block, w_out - rw)  # the last block overlaps: same sums, same values
                for r in range(rw):
                    for f in range(fb):
                        acc[r, f] = 0
                for a in range(kd):
                    for b in range(kh):
                        d, h = sd0 + i * sd + a * dd, sh0 + j * sh + b * dh
                        for ci in range(cg):
                            for c in range(kw):
                                for r in range(rw):
                                    for f in range(fb):
                                        acc[r, f] += (slab[sn + n, d, h, (ow0 + r) * sw + c * dw, ci, blk, f]
                                                      * wp[blk, a, b, c, ci, f])
                if bp.size:
                    for r in range(rw):
                        for f in range(fb):
                            acc[r, f] += bp[blk, f]
                for r in range(rw):
                    for f in range(fb):
                        out[n0 + n, od0 + i, oh0 + j, ow0 + r, blk * fb + f] = acc[r, f]
    return kernel


@functools.cache
def wvector_kernel(cg: int, fg: int, vw: int, kw: int, dw: int):
    """Vectorised along W instead of over filters, for groups with few filters each (where a
    filter vector would be mostly padding): a block of vw output pixels of one row x the fg
    filters of one group, from an input slab transposed to (N, D, H, C, W), so that the vw
    inputs a tap meets are contiguous. Stride 1 along W."""
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(slab, wp, bp, out, origin, source, strides, dilation):
        """out[n0+n, od0+i, oh0+j, ow, g*fg + jj] = sum over taps (a, b, c) and ci of
        slab[sn+n, sd0 + i*sd + a*dd, sh0 + j*sh + b*dh, g*cg + ci, ow + c*dw]
        * wp[g, a, b, c, ci, jj] (+ bp[g, jj] unless bp is empty)."""
        n0, od0, oh0, ns, nd, nh = origin
        sn, sd0, sh0 = source
        sd, sh, _ = strides
        dd, dh, _ = dilation
        groups, kd, kh = wp.shape[0], wp.shape[1], wp.shape[2]
        w_out = out.shape[3]
        wblocks = -(-w_out // vw)
        for job in numba.prange(ns * nd * nh * groups * wblocks):
            wblk, g, j, i, n = _unravel_job(job, wblocks, groups, nh, nd)
            ow0 = wblk * vw
            acc = np.zeros((fg, vw), dtype=out.dtype)
            for a in range(kd):
                for b in range(kh):
                    d, h = sd0 + i * sd + a * dd, sh0 + j * sh + b * dh
                    for ci in range(cg):
                        for c in range(kw):
                            w0 = np.uint64(ow0 + c * dw)  # unsigned: no negative wrap-around
                            for jj in range(fg):
                                weight = wp[g, a, b, c, ci, jj]
                                for p in range(vw):
                                    acc[jj, p] += slab[sn + n, d, h, g * cg + ci, w0 + np.uint64(p)] * weight
            if bp.size:
                for jj in range(fg):
                    for p in range(vw):
                        acc[jj, p] += bp[g, jj]
            for p in range(min(vw, w_out - ow0)):
                for jj in range(fg):
                    out[n0 + n, od0 + i, oh0 + j, ow0 + p, g * fg + jj] = acc[jj, p]
    return kernel


@functools.cache
def depthwise_kernel(rh: int, rw: int, fb: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
                      checked: bool):
    """One channel per group, read where it lies: blocks of rh x rw output pixels (H x W) of fb
    channels. Specialised on the taps, strides and dilations along H and W too, so the input
    vectors of one depth tap are known at compile time and LLVM loads each distinct one once
    (an input row serves up to kh output rows of the block). Unchecked kernels run blocks whose
    H and W taps all lie in the input; `checked` ones load a padding tap's value clamped into the
    input and replace it by 0 (so it adds 0 * w, as in the reference). Depth taps outside the
    input are skipped (which is why the plan asks for finite weights)."""
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(x, wp, bp, starts, out, pads, sd, dd, row_starts, col_starts):
        """For output rows j0 .. j0+rh-1 of each j0 in row_starts, columns
        ow0 .. ow0+rw-1 of each ow0 in col_starts, and channel blocks [starts[blk], +fb):
        out[n, i, j, ow, c] = sum over in-input taps (a, b, c') of x[n, i*sd - pd + a*dd,
        j*sh - ph + b*dh, ow*sw - pw + c'*dw, c] * wp[blk, a, b, c', c - starts[blk]] (+ bias).
        The lanes of a block that the block before it covers are not stored (the last block
        overlaps), so no two threads write one element."""
        _, d_in, h_in, w_in, _ = x.shape
        n_out, d_out = out.shape[:2]
        nblk, kd = wp.shape[0], wp.shape[1]
        pd, ph, pw = pads
        nh = row_starts.size
        zero = out.dtype.type(0)
        for job in numba.prange(n_out * d_out * nh * nblk):
            blk, _, row, i, n = _unravel_job(job, nblk, 1, nh, d_out)
            j0 = row_starts[row]
            c0 = np.uint64(starts[blk])  # unsigned channel index: no negative wrap-around
            first = 0 if blk == 0 else starts[blk - 1] + fb - starts[blk]
            h0 = j0 * sh - ph
            acc = np.empty((rh, rw, fb), dtype=out.dtype)
            for ow0 in col_starts:
                w0 = ow0 * sw - pw
                for q in range(rh):
                    for r in range(rw):
                        for f in range(fb):
                            acc[q, r, f] = 0
                for a in range(kd):
                    d = i * sd - pd + a * dd
                    if d < 0 or d >= d_in:
                        continue
                    for q in range(rh):
                        for b in range(kh):
                            h = h0 + q * sh + b * dh
                            row_in = (h >= 0) & (h < h_in)
                            if checked:
                                h = min(max(h, 0), h_in - 1)
                            for c in range(kw):
                                for r in range(rw):
                                    col = w0 + r * sw + c * dw
                                    tap_in = row_in & (col >= 0) & (col < w_in)
                                    if checked:
                                        col = min(max(col, 0), w_in - 1)
                                    for f in range(fb):
                                        v = x[n, d, np.uint64(h), np.uint64(col), c0 + np.uint64(f)]
                                        if checked and not tap_in:  # a padding tap: load clamped, value 0
                                            v = zero
                                        acc[q, r, f] += v * wp[blk, a, b, c, f]
                if bp.size:
                    for q in range(rh):
                        for r in range(rw):
                            for f in range(fb):
                                acc[q, r, f] += bp[blk, f]
                for q in range(rh):
                    for r in range(rw):
                        for f in range(fb):
                            if f >= first:
                                out[n, i, j0 + q, ow0 + r, c0 + np.uint64(f)] = acc[q, r, f]
    return kernel
