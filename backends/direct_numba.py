"""Direct Conv3D kernels compiled by numba and register-blocked like a GEMM micro-kernel.

Each kernel call computes, for one output row (sample, depth, height), a block of `rw` output
pixels x `fb` filters held in vector registers while it runs over every kernel tap and input
channel; the block sizes are compile-time constants, so LLVM keeps the accumulators in registers
and vectorises over the filters. Two kernels:
- broadcast: one input value times a vector of filters (dense layers, and groups with at least
  MIN_BROADCAST_FILTERS filters each);
- lane: a vector of input values (one per filter) times a vector of weights, for depthwise layers
  and groups with few filters each (the input is expanded so that lane f holds the channel that
  feeds filter f).
numba may reassociate and fuse (fastmath 'reassoc' and 'contract', never the no-NaN/no-inf flags),
which the VERIFICATION.md bound allows for any summation order. The input is processed in padded
slabs (backends.im2col tiles), so the extra memory stays within the workspace.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from backends.im2col import padded_slab, tiles
from reference.spec import Conv3DSpec

try:
    import llvmlite.binding
    import numba
except ImportError:  # then numpy-im2col uses im2col for every layer
    numba = None
else:
    # LLVM fully unrolls constant-trip loops of up to 14 iterations: the row loop (rw <= 14) is
    # unrolled into registers, while the filter loop (fb >= 16) stays a loop for the vectoriser.
    # Without this, a 16- or 32-filter loop is unrolled into scalars and runs 30x slower.
    llvmlite.binding.set_option("conv3d-parity", "-unroll-full-max-count=14")

VECTOR_BYTES = 64  # AVX-512; on narrower machines LLVM splits the vectors, still correct
# Rows per register block by vectors per filter block, and the relative speed of each filter
# block (measured on this machine's layers: one-vector blocks lose about a quarter to the loads).
MAX_ROWS = {1: 12, 2: 8, 4: 6}
EFFICIENCY = {1: 0.75, 2: 1.0, 4: 1.0}
MIN_BROADCAST_FILTERS = 16


@dataclass(frozen=True)
class Plan:
    kernel: str  # "broadcast" or "lane"
    fb: int  # filters per register block
    rw: int  # output pixels along W per register block


def plan(spec: Conv3DSpec, dtype: np.dtype) -> Plan | None:
    """The kernel and block sizes for a layer, or None where numba is missing."""
    if numba is None:
        return None
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    fg = spec.filters // spec.groups
    kernel = "broadcast" if fg >= MIN_BROADCAST_FILTERS else "lane"
    width = fg if kernel == "broadcast" else spec.filters
    # filter blocks of 16, 32 or 64: a loop of 16 or more stays vectorised (see the unroll limit)
    choices = [fb for fb in (64, 32, 16) if fb // lanes in MAX_ROWS]
    fb = min(choices, key=lambda f: (-(-width // f) * f / EFFICIENCY[f // lanes], -f))
    max_rw = min(MAX_ROWS[fb // lanes], spec.output_spatial[2])  # the last block overlaps
    wo = spec.output_spatial[2]
    rw = min(range(max(1, max_rw // 2), max_rw + 1), key=lambda r: (-(-wo // r) * r, -r))
    return Plan(kernel, fb, rw)


@functools.cache
def _broadcast_kernel(rw: int, fb: int):
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(slab, wp, out, origin, source, strides, dilation):
        """out[n0+n, od0+i, oh0+j, ow, g*fg + blk*fb + f] = sum over taps (a, b, c) and ci of
        slab[sn+n, sd0 + i*sd + a*dd, sh0 + j*sh + b*dh, ow*sw + c*dw, g*cg + ci]
        * wp[g, blk, a, b, c, ci, f]."""
        n0, od0, oh0, ns, nd, nh = origin
        sn, sd0, sh0 = source
        sd, sh, sw = strides
        dd, dh, dw = dilation
        groups, nblk, kd, kh, kw, cg, _ = wp.shape
        w_out, filters = out.shape[3], out.shape[4]
        fg = filters // groups
        for job in numba.prange(ns * nd * nh * groups * nblk):
            blk = job % nblk
            t = job // nblk
            g = t % groups
            t //= groups
            j = t % nh
            t //= nh
            i = t % nd
            n = t // nd
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
                                for r in range(rw):
                                    xv = slab[sn + n, d, h, (ow0 + r) * sw + c * dw, g * cg + ci]
                                    for f in range(fb):
                                        acc[r, f] += xv * wp[g, blk, a, b, c, ci, f]
                for r in range(rw):
                    for f in range(min(fb, fg - blk * fb)):
                        out[n0 + n, od0 + i, oh0 + j, ow0 + r, g * fg + blk * fb + f] = acc[r, f]
    return kernel


@functools.cache
def _lane_kernel(rw: int, fb: int):
    @numba.njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def kernel(slab, wp, out, origin, source, strides, dilation):
        """out[n0+n, od0+i, oh0+j, ow, blk*fb + f] = sum over taps (a, b, c) and ci of
        slab[sn+n, sd0 + i*sd + a*dd, sh0 + j*sh + b*dh, ow*sw + c*dw, ci, blk, f]
        * wp[blk, a, b, c, ci, f]."""
        n0, od0, oh0, ns, nd, nh = origin
        sn, sd0, sh0 = source
        sd, sh, sw = strides
        dd, dh, dw = dilation
        nblk, kd, kh, kw, cg, _ = wp.shape
        w_out, filters = out.shape[3], out.shape[4]
        for job in numba.prange(ns * nd * nh * nblk):
            blk = job % nblk
            t = job // nblk
            j = t % nh
            t //= nh
            i = t % nd
            n = t // nd
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
                                for r in range(rw):
                                    for f in range(fb):
                                        acc[r, f] += (slab[sn + n, d, h, (ow0 + r) * sw + c * dw, ci, blk, f]
                                                      * wp[blk, a, b, c, ci, f])
                for r in range(rw):
                    for f in range(min(fb, filters - blk * fb)):
                        out[n0 + n, od0 + i, oh0 + j, ow0 + r, blk * fb + f] = acc[r, f]
    return kernel


def _blocks(count: int, fb: int) -> int:
    return -(-count // fb)


def pack_weights(kernel: np.ndarray, spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """Broadcast: (G, blocks, kd, kh, kw, Cg, fb); lane: (blocks, kd, kh, kw, Cg, fb); the
    filters past the last one are zero (computed, never stored)."""
    groups, cg = spec.groups, spec.in_channels // spec.groups
    fg = spec.filters // groups
    if p.kernel == "lane":  # lane f of input position ci meets w[..., ci, f]
        width = _blocks(spec.filters, p.fb) * p.fb
        w = np.zeros((*spec.kernel_size, cg, width), dtype=kernel.dtype)
        w[..., :spec.filters] = kernel
        return np.ascontiguousarray(np.moveaxis(w.reshape(*w.shape[:4], -1, p.fb), 4, 0))
    width = _blocks(fg, p.fb) * p.fb
    w = np.zeros((*spec.kernel_size, cg, groups, width), dtype=kernel.dtype)
    w[..., :fg] = kernel.reshape(*spec.kernel_size, cg, groups, fg)
    w = w.reshape(*spec.kernel_size, cg, groups, -1, p.fb)
    return np.ascontiguousarray(np.moveaxis(w, (4, 5), (0, 1)))


def _lane_input(slab, out, fg):
    """out[p, ci, g*fg + j] = slab[p, g*cg + ci]: lane f holds the input channel that feeds
    filter f; the lanes past the last filter are zero."""
    pixels, cg, width = out.shape
    groups = slab.shape[1] // cg
    for p in numba.prange(pixels):
        for ci in range(cg):
            for g in range(groups):
                value = slab[p, g * cg + ci]
                for j in range(fg):
                    out[p, ci, g * fg + j] = value
            for f in range(groups * fg, width):
                out[p, ci, f] = 0


_lane_input_kernel = None if numba is None else numba.njit(parallel=True, cache=True)(_lane_input)


def _lanes(slab: np.ndarray, spec: Conv3DSpec, wp: np.ndarray) -> np.ndarray:
    """The lane kernel's input: (N, D, H, W, Cg, blocks, fb)."""
    cg, (blocks, fb) = spec.in_channels // spec.groups, (wp.shape[0], wp.shape[-1])
    out = np.empty((*slab.shape[:4], cg, blocks, fb), dtype=slab.dtype)
    _lane_input_kernel(slab.reshape(-1, slab.shape[-1]), out.reshape(-1, cg, blocks * fb),
                       spec.filters // spec.groups)
    return out


def conv3d_channels_last(x: np.ndarray, wp: np.ndarray, bias, spec: Conv3DSpec, p: Plan,
                         workspace_bytes: int) -> np.ndarray:
    """Pre-activation output (N, Do, Ho, Wo, F) for a channels-last input, in x's dtype, from
    weights packed by `pack_weights`."""
    out = np.empty((spec.batch, *spec.output_spatial, spec.filters), dtype=x.dtype)
    run = (_broadcast_kernel if p.kernel == "broadcast" else _lane_kernel)(p.rw, p.fb)
    sd, sh, _ = spec.strides
    unpadded = p.kernel == "broadcast" and not any(sum(pad) for pad in spec.pads)
    lane_values = 0 if p.kernel == "broadcast" else wp.shape[0] * p.fb * wp.shape[-2]
    per_pixel = 0 if unpadded else x.dtype.itemsize * np.prod(spec.strides) * (spec.in_channels + lane_values)
    for tile in tiles(spec, int(per_pixel), min(workspace_bytes // 4, 64 * 2**20)):
        n0, n1, od0, od1, oh0, oh1 = tile
        origin = (n0, od0, oh0, n1 - n0, od1 - od0, oh1 - oh0)
        if unpadded:  # the kernel reads the input where it lies
            run(x, wp, out, origin, (n0, od0 * sd, oh0 * sh), spec.strides, spec.dilation_rate)
            continue
        slab = padded_slab(np, x, spec, tile)
        if p.kernel == "lane":
            slab = _lanes(slab, spec, wp)
        run(slab, wp, out, origin, (0, 0, 0), spec.strides, spec.dilation_rate)
    if bias is not None:
        out += bias
    return out
