"""Direct Conv3D kernels compiled by numba and register-blocked like a GEMM micro-kernel.

Each kernel computes a block of outputs held in vector registers while it runs over every kernel
tap and input channel; the block sizes are compile-time constants, so LLVM keeps the accumulators
in registers and vectorises the innermost loop. Four kernels, chosen by `plan`:
- broadcast: `rw` output pixels x `fb` filters, one input value times a vector of filters (dense
  layers, and groups with at least MIN_BROADCAST_FILTERS filters each);
- wvector: `rw` output pixels along W (the vector) x the filters of one group, one weight times a
  vector of inputs, from a slab transposed to (N, D, H, C, W) (groups of 2 to 15 filters);
- depthwise: rh x rw output pixels x `fb` channels, reading the input where it lies (one channel
  per group);
- lane: a vector of input values (one per filter) times a vector of weights, for the rest (the
  input is expanded so that lane f holds the channel that feeds filter f).
numba may reassociate and fuse (fastmath 'reassoc' and 'contract', never the no-NaN/no-inf flags),
which the VERIFICATION.md bound allows for any summation order. Rows whose width is not a multiple
of the block end with a block that overlaps the one before (recomputing, never reading past the
row). Unpadded dense layers and depthwise layers are read where they lie; the others in padded
slabs (backends.im2col tiles), so the extra memory stays within the workspace.
Inside a prange body the kernels create no array aliases (views, inline helpers taking arrays) and
no boolean variables from `and`/`or`: with either, numba's alias analysis drops its no-alias hints and
LLVM no longer vectorises the accumulation (measured: 5-30x slower). The depthwise and W-vector
kernels cast indices that cannot be negative to unsigned, sparing numba's negative-index fix-ups.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from backends.im2col import slab_window, tiles
from backends.phases import phase
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
# Rows per register block by kernel and vectors per filter block (the lane kernel also holds the
# input vectors of a tap row in registers), and the relative speed of each filter block width
# (measured on this machine's layers: one-vector blocks lose about a quarter to the loads).
MAX_ROWS = {"broadcast": {1: 12, 2: 8, 4: 6}, "lane": {1: 8, 2: 8, 4: 4}}
EFFICIENCY = {1: 0.75, 2: 1.0, 4: 1.0}
MIN_BROADCAST_FILTERS = 16
# Output block (rows along H, pixels along W) of the depthwise kernel by vectors per channel block.
DEPTHWISE_BLOCK = {1: (4, 4), 2: (3, 3)}


@dataclass(frozen=True)
class Plan:
    kernel: str  # "broadcast", "lane", "depthwise" or "wvector"
    fb: int  # filters per register block
    rw: int  # output pixels along W per register block (one vector each for "wvector")
    rh: int = 1  # output rows along H per register block (depthwise)


def plan(spec: Conv3DSpec, dtype: np.dtype, in_place: bool = True) -> Plan | None:
    """The kernel and block sizes for a layer, or None where numba is missing. `in_place`: the
    depthwise kernel may be used: the input is a C-contiguous channels-last array (read where it
    lies) and the weights are finite (depth padding taps are skipped, where the reference adds 0 * w)."""
    if numba is None:
        return None
    lanes = VECTOR_BYTES // np.dtype(dtype).itemsize
    _, ho, wo = spec.output_spatial
    channels = spec.in_channels
    if spec.groups == channels == spec.filters > 1 and channels >= lanes and spec.channels_last and in_place:
        fb = 2 * lanes if channels >= 2 * lanes else lanes
        rh, rw = DEPTHWISE_BLOCK[fb // lanes]
        return Plan("depthwise", fb, min(rw, wo), min(rh, ho))
    fg = spec.filters // spec.groups
    if spec.groups > 1 and 2 <= fg < MIN_BROADCAST_FILTERS and spec.strides[2] == 1:
        vectors = 4 if fg <= 4 else 2 if fg <= 8 else 1  # accumulators: fg x vectors <= 16
        row_vectors = 1 << (-(-wo // lanes) - 1).bit_length()  # a power of two covering a row
        return Plan("wvector", fg, lanes * min(vectors, row_vectors))
    kernel = "broadcast" if fg >= MIN_BROADCAST_FILTERS else "lane"
    width = fg if kernel == "broadcast" else spec.filters
    # filter blocks of 16, 32 or 64: a loop of 16 or more stays vectorised (see the unroll limit)
    choices = [fb for fb in (64, 32, 16) if fb // lanes in EFFICIENCY]
    fb = min(choices, key=lambda f: (-(-width // f) * f / EFFICIENCY[f // lanes], -f))
    max_rw = min(MAX_ROWS[kernel][fb // lanes], wo)  # the last block of a row overlaps the one before
    # blocks of at least 2/3 of the registers (they amortise the loads), then least recomputation
    # (V-Net, 16 outputs: 4+4+4+4 is 15% faster than 6+6+6 with two recomputed), then the widest
    rw = min(range(-(-2 * max_rw // 3), max_rw + 1), key=lambda r: (-(-wo // r) * r, -r))
    return Plan(kernel, fb, rw)


def _unravel_job(job: int, inner: int, groups: int, rows: int, planes: int) -> tuple[int, ...]:
    """(inner, group, row, plane, batch) indices of a kernel's job number, the inner index (a
    filter, channel or W block) varying fastest. Scalars only: see the aliasing rule above."""
    t = job // inner
    u = t // groups
    v = u // rows
    return job % inner, t % groups, u % rows, v % planes, v // planes


if numba is not None:
    _unravel_job = numba.njit(inline="always", cache=True)(_unravel_job)


@functools.cache
def _broadcast_kernel(rw: int, fb: int):
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
            blk, g, j, i, n = _unravel_job(job, nblk, groups, nh, nd)
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
                if bp.size:
                    for r in range(rw):
                        for f in range(fb):
                            acc[r, f] += bp[g, blk, f]
                for r in range(rw):
                    for f in range(fb):
                        out[n0 + n, od0 + i, oh0 + j, ow0 + r, (g * nblk + blk) * fb + f] = acc[r, f]
    return kernel


@functools.cache
def _lane_kernel(rw: int, fb: int, kw: int, sw: int, dw: int):
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
def _wvector_kernel(cg: int, fg: int, vw: int, kw: int, dw: int):
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
def _depthwise_kernel(rh: int, rw: int, fb: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int,
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


def _inside(count: int, size: int, k: int, s: int, d: int, pad: int) -> tuple[int, int]:
    """[lo, hi): the outputs along one axis whose taps all lie in the input of `size`."""
    hi = min(count, (size - 1 + pad - (k - 1) * d) // s + 1)
    return min(-(-pad // s), max(hi, 0)), max(hi, 0)


def _starts(lo: int, hi: int, block: int) -> np.ndarray:
    """Starts of blocks covering [lo, hi), the last one ending at hi (overlapping the one before)."""
    return np.minimum(np.arange(lo, hi, block), hi - block) if hi - lo >= block else np.arange(0)


def aligned_empty(shape: tuple[int, ...], dtype, align: int = VECTOR_BYTES) -> np.ndarray:
    """np.empty starting on an `align`-byte boundary: a vector load that straddles two cache lines
    costs two (NumPy aligns to 16 bytes only, and which allocations happen to land on 64 varies)."""
    dtype = np.dtype(dtype)
    raw = np.empty(int(np.prod(shape)) * dtype.itemsize + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


def _blocks(count: int, fb: int) -> int:
    return -(-count // fb)


def _depthwise_channels(spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """(blocks, fb): the channel each lane of each depthwise block computes."""
    return _starts(0, spec.filters, p.fb)[:, None] + np.arange(p.fb)


def pack_weights(kernel: np.ndarray, spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """Broadcast: (G, blocks, kd, kh, kw, Cg, fb); lane: (blocks, kd, kh, kw, Cg, fb); the
    filters past the last one are zero (computed into the padding of the output buffer).
    Depthwise: (blocks, kd, kh, kw, fb), block b holding channels _starts(0, F, fb)[b] + f.
    W-vector: (G, kd, kh, kw, Cg, F/G)."""
    groups, cg = spec.groups, spec.in_channels // spec.groups
    fg = spec.filters // groups
    if p.kernel == "depthwise":
        return _aligned_copy(np.moveaxis(kernel[..., 0, _depthwise_channels(spec, p)], 3, 0))
    if p.kernel == "wvector":
        return np.ascontiguousarray(np.moveaxis(kernel.reshape(*kernel.shape[:4], groups, fg), 4, 0))
    if p.kernel == "lane":  # lane f of input position ci meets w[..., ci, f]
        width = _blocks(spec.filters, p.fb) * p.fb
        w = np.zeros((*spec.kernel_size, cg, width), dtype=kernel.dtype)
        w[..., :spec.filters] = kernel
        return _aligned_copy(np.moveaxis(w.reshape(*w.shape[:4], -1, p.fb), 4, 0))
    width = _blocks(fg, p.fb) * p.fb
    w = np.zeros((*spec.kernel_size, cg, groups, width), dtype=kernel.dtype)
    w[..., :fg] = kernel.reshape(*spec.kernel_size, cg, groups, fg)
    w = w.reshape(*spec.kernel_size, cg, groups, -1, p.fb)
    return _aligned_copy(np.moveaxis(w, (4, 5), (0, 1)))


def _aligned_copy(a: np.ndarray) -> np.ndarray:
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def pack_bias(bias: np.ndarray | None, spec: Conv3DSpec, p: Plan, dtype) -> np.ndarray:
    """The bias in the weights' block layout, (G, blocks, fb), (blocks, fb) or (G, F/G); empty
    for none."""
    broadcast = p.kernel == "broadcast"
    if bias is None:
        return np.zeros((0,) * (3 if broadcast else 2), dtype=dtype)
    if p.kernel == "depthwise":
        return np.ascontiguousarray(bias[_depthwise_channels(spec, p)], dtype=dtype)
    if p.kernel == "wvector":
        return np.ascontiguousarray(bias.reshape(spec.groups, -1), dtype=dtype)
    groups = spec.groups if broadcast else 1
    out = np.zeros((groups, _blocks(spec.filters // groups, p.fb) * p.fb), dtype=dtype)
    out[:, :spec.filters // groups] = bias.reshape(groups, -1)
    return out.reshape(groups, -1, p.fb) if broadcast else out.reshape(-1, p.fb)


def _fill_slab(x, slab, n0, d_start, h_start, w_start):
    """slab[n, d, h, w, c] = x[n0 + n, d_start + d, h_start + h, w_start + w, c] where that lies in
    x, else 0 (the padding, and the channels past x's)."""
    slabs, depth, height, width, channels = slab.shape
    _, d_in, h_in, w_in, c_in = x.shape
    for job in numba.prange(slabs * depth * height):
        h = job % height
        d = job // height % depth
        n = job // (height * depth)
        di, hi = d_start + d, h_start + h
        row_inside = 0 <= di < d_in and 0 <= hi < h_in
        for w in range(width):
            wi = w_start + w
            copied = c_in if row_inside and 0 <= wi < w_in else 0
            for c in range(copied):
                slab[n, d, h, w, c] = x[n0 + n, di, hi, wi, c]
            for c in range(copied, channels):
                slab[n, d, h, w, c] = 0


_fill_slab_kernel = None if numba is None else numba.njit(parallel=True, cache=True)(_fill_slab)


def padded_slab(x: np.ndarray, spec: Conv3DSpec, tile, channels: int) -> np.ndarray:
    """The zero-padded input block a tile reads, with `channels` channels (>= x's; the rest 0),
    filled in one parallel pass into an aligned buffer."""
    d_start, d_size, h_start, h_size = slab_window(spec, tile)
    pw0, pw1 = spec.pads[2]
    slab = aligned_empty((tile[1] - tile[0], d_size, h_size, x.shape[3] + pw0 + pw1, channels), x.dtype)
    _fill_slab_kernel(x, slab, tile[0], d_start, h_start, -pw0)
    return slab


def transposed_slab(x: np.ndarray, spec: Conv3DSpec, tile, width: int) -> np.ndarray:
    """The zero-padded input block a tile reads, as (N, D, H, C, width): each channel's row of W
    contiguous (zeros past the input's right padding)."""
    d_start, d_size, h_start, h_size = slab_window(spec, tile)
    slab = aligned_empty((tile[1] - tile[0], d_size, h_size, x.shape[4], width), x.dtype)
    _fill_slab_kernel(x, np.swapaxes(slab, 3, 4), tile[0], d_start, h_start, -spec.pads[2][0])
    return slab


def _wvector(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan,
             workspace_bytes: int) -> np.ndarray:
    """The W-vector kernel, tile by tile over transposed slabs."""
    (_, _, kw), (sd, sh, _), (_, _, dw) = spec.kernel_size, spec.strides, spec.dilation_rate
    wo = spec.output_spatial[2]
    width = -(-wo // p.rw) * p.rw + (kw - 1) * dw  # every vector load of the last block inside
    out = np.empty((spec.batch, *spec.output_spatial, spec.filters), x.dtype)
    run = _wvector_kernel(spec.in_channels // spec.groups, p.fb, p.rw, kw, dw)
    per_pixel = x.dtype.itemsize * sd * sh * spec.in_channels * width // wo
    for tile in tiles(spec, int(per_pixel), min(workspace_bytes // 4, 64 * 2**20)):
        n0, n1, od0, od1, oh0, oh1 = tile
        with phase("pad"):
            slab = transposed_slab(x, spec, tile, width)
        with phase("kernel"):
            run(slab, wp, bp, out, (n0, od0, oh0, n1 - n0, od1 - od0, oh1 - oh0), (0, 0, 0), spec.strides,
                spec.dilation_rate)
    return out


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
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    blocks, fb = wp.shape[0], wp.shape[-1]
    out = aligned_empty((*slab.shape[:4], cg, blocks, fb), slab.dtype)
    flat = out.reshape(-1, cg, blocks * fb)
    if fg == 1:  # one filter per group: a plain (strided) copy
        flat[..., :groups] = np.swapaxes(slab.reshape(-1, groups, cg), 1, 2)
        flat[..., groups:] = 0
    else:
        _lane_input_kernel(slab.reshape(-1, slab.shape[-1]), flat, fg)
    return out


def _depthwise(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """The depthwise kernel over the whole output, no workspace. The outputs whose H and W taps
    all lie in the input are computed in rh x rw blocks without bounds checks; the rows and the
    columns around them (one or two each, for "same" padding) one row or one column at a time,
    with them."""
    (_, kh, kw), (sd, sh, sw), (dd, dh, dw) = spec.kernel_size, spec.strides, spec.dilation_rate
    _, ho, wo = spec.output_spatial
    pads = tuple(before for before, _ in spec.pads)
    row_lo, row_hi = _inside(ho, x.shape[2], kh, sh, dh, pads[1])
    col_lo, col_hi = _inside(wo, x.shape[3], kw, sw, dw, pads[2])
    rows = np.arange(row_lo, row_hi - p.rh + 1, p.rh)  # whole blocks; the rows after them are edges
    cols = _starts(col_lo, col_hi, p.rw)
    edge_rows = np.concatenate((np.arange(row_lo), np.arange(row_lo + rows.size * p.rh, ho)))
    edge_cols = np.concatenate((np.arange(col_lo), np.arange(col_hi, wo))) if cols.size else np.arange(wo)
    out = np.empty((spec.batch, *spec.output_spatial, spec.filters), x.dtype)
    starts = _starts(0, spec.filters, p.fb)  # the last channel block overlaps the one before
    parts = [((p.rh, p.rw, False), rows, cols), ((1, p.rw, True), edge_rows, _starts(0, wo, p.rw)),
             ((p.rh, 1, True), rows, edge_cols)]
    for (rh, rw, checked), row_starts, col_starts in parts:
        if row_starts.size and col_starts.size:
            run = _depthwise_kernel(rh, rw, p.fb, kh, kw, sh, sw, dh, dw, checked)
            with phase("kernel"):
                run(x, wp, bp, starts, out, pads, sd, dd, row_starts, col_starts)
    return out


def conv3d_channels_last(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan,
                         workspace_bytes: int) -> np.ndarray:
    """Pre-activation output (N, Do, Ho, Wo, F) for a channels-last input, in x's dtype, from the
    weights and bias packed by `pack_weights` and `pack_bias`. The kernels store whole filter
    blocks, so where F is not a multiple of the block the result is a view of a channel-padded
    buffer (a blocked layout, as oneDNN's), or a compacted copy for grouped layers."""
    if p.kernel == "depthwise":
        return _depthwise(x, wp, bp, spec, p)
    if p.kernel == "wvector":
        return _wvector(x, wp, bp, spec, p, workspace_bytes)
    blocks = wp.shape[-6]
    groups = spec.groups if p.kernel == "broadcast" else 1
    out = aligned_empty((spec.batch, *spec.output_spatial, groups * blocks * p.fb), x.dtype)
    if p.kernel == "broadcast":
        run = _broadcast_kernel(p.rw, p.fb)
    else:
        run = _lane_kernel(p.rw, p.fb, spec.kernel_size[2], spec.strides[2], spec.dilation_rate[2])
    sd, sh, _ = spec.strides
    unpadded = p.kernel == "broadcast" and not any(sum(pad) for pad in spec.pads)
    lane_width = blocks * p.fb
    # one input channel per filter: the channel-padded slab already is the lane kernel's input
    lanes_by_padding = p.kernel == "lane" and spec.in_channels == spec.filters == spec.groups
    lane_values = 0 if p.kernel == "broadcast" else lane_width * wp.shape[-2]
    per_pixel = 0 if unpadded else x.dtype.itemsize * np.prod(spec.strides) * (spec.in_channels + lane_values)
    for tile in tiles(spec, int(per_pixel), min(workspace_bytes // 4, 64 * 2**20)):
        n0, n1, od0, od1, oh0, oh1 = tile
        origin = (n0, od0, oh0, n1 - n0, od1 - od0, oh1 - oh0)
        if unpadded:  # the kernel reads the input where it lies
            slab, source = x, (n0, od0 * sd, oh0 * sh)
        else:
            channels = lane_width if lanes_by_padding else spec.in_channels
            with phase("pad"):
                slab, source = padded_slab(x, spec, tile, channels), (0, 0, 0)
        if lanes_by_padding:
            slab = slab.reshape(*slab.shape[:4], 1, -1, p.fb)
        elif p.kernel == "lane":
            with phase("lanes"):
                slab = _lanes(slab, spec, wp)
        with phase("kernel"):
            run(slab, wp, bp, out, origin, source, spec.strides, spec.dilation_rate)
    if out.shape[-1] == spec.filters:
        return out
    if groups == 1:
        return out[..., :spec.filters]
    with phase("layout"):
        padded = out.reshape(*out.shape[:4], groups, blocks * p.fb)
        return np.ascontiguousarray(padded[..., :spec.filters // groups]).reshape(*out.shape[:4], -1)
