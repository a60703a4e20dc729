"""The numba-direct drivers: each layer's output computed by its planned kernel, tile by tile
(backends.im2col tiles, so the padded slabs stay within the workspace) or, for depthwise layers,
over the whole input in place."""

from __future__ import annotations

import numpy as np

from backends.im2col import tiles
from backends.numba_direct.kernels import broadcast_kernel, depthwise_kernel, lane_kernel, wvector_kernel
from backends.numba_direct.layout import aligned_empty, block_starts
from backends.numba_direct.plan import Plan
from backends.numba_direct.slabs import lanes, padded_slab, transposed_slab
from backends.phases import phase
from reference.spec import Conv3DSpec


def inside(count: int, size: int, k: int, s: int, d: int, pad: int) -> tuple[int, int]:
    """[lo, hi): the outputs along one axis whose taps all lie in the input of `size`."""
    hi = min(count, (size - 1 + pad - (k - 1) * d) // s + 1)
    return min(-(-pad // s), max(hi, 0)), max(hi, 0)


def _wvector(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan,
             workspace_bytes: int) -> np.ndarray:
    """The W-vector kernel, tile by tile over transposed slabs."""
    (_, _, kw), (sd, sh, _), (_, _, dw) = spec.kernel_size, spec.strides, spec.dilation_rate
    wo = spec.output_spatial[2]
    width = -(-wo // p.rw) * p.rw + (kw - 1) * dw  # every vector load of the last block inside
    out = np.empty((spec.batch, *spec.output_spatial, spec.filters), x.dtype)
    run = wvector_kernel(spec.in_channels // spec.groups, p.fb, p.rw, kw, dw)
    per_pixel = x.dtype.itemsize * sd * sh * spec.in_channels * width // wo
    for tile in tiles(spec, int(per_pixel), min(workspace_bytes // 4, 64 * 2**20)):
        n0, n1, od0, od1, oh0, oh1 = tile
        with phase("pad"):
            slab = transposed_slab(x, spec, tile, width)
        with phase("kernel"):
            run(slab, wp, bp, out, (n0, od0, oh0, n1 - n0, od1 - od0, oh1 - oh0), (0, 0, 0), spec.strides,
                spec.dilation_rate)
    return out


def _depthwise(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan) -> np.ndarray:
    """The depthwise kernel over the whole output, no workspace. The outputs whose H and W taps
    all lie in the input are computed in rh x rw blocks without bounds checks; the rows and the
    columns around them (one or two each, for "same" padding) one row or one column at a time,
    with them."""
    (_, kh, kw), (sd, sh, sw), (dd, dh, dw) = spec.kernel_size, spec.strides, spec.dilation_rate
    _, ho, wo = spec.output_spatial
    pads = tuple(before for before, _ in spec.pads)
    row_lo, row_hi = inside(ho, x.shape[2], kh, sh, dh, pads[1])
    col_lo, col_hi = inside(wo, x.shape[3], kw, sw, dw, pads[2])
    rows = np.arange(row_lo, row_hi - p.rh + 1, p.rh)  # whole blocks; the rows after them are edges
    cols = block_starts(col_lo, col_hi, p.rw)
    edge_rows = np.concatenate((np.arange(row_lo), np.arange(row_lo + rows.size * p.rh, ho)))
    edge_cols = np.concatenate((np.arange(col_lo), np.arange(col_hi, wo))) if cols.size else np.arange(wo)
    out = np.empty((spec.batch, *spec.output_spatial, spec.filters), x.dtype)
    starts = block_starts(0, spec.filters, p.fb)  # the last channel block overlaps the one before
    parts = [((p.rh, p.rw, False), rows, cols), ((1, p.rw, True), edge_rows, block_starts(0, wo, p.rw)),
             ((p.rh, 1, True), rows, edge_cols)]
    for (rh, rw, checked), row_starts, col_starts in parts:
        if row_starts.size and col_starts.size:
            run = depthwise_kernel(rh, rw, p.fb, kh, kw, sh, sw, dh, dw, checked)
            with phase("kernel"):
                run(x, wp, bp, starts, out, pads, sd, dd, row_starts, col_starts)
    return out


def conv3d_channels_last(x: np.ndarray, wp: np.ndarray, bp: np.ndarray, spec: Conv3DSpec, p: Plan,
                         workspace_bytes: int) -> np.ndarray:
    """Pre-activation output (N, Do, Ho, Wo, F) for a channels-last input, in x's dtype, from the
    weights and bias packed by `pack_weights` and `pack_bias`. The kernels store whole filter
    blocks: where F is not a multiple of the block, each tile is computed into a channel-padded
    scratch buffer (a blocked layout, as oneDNN's) and its F channels copied out, so the padding
    never costs more memory than a tile (3 filters in blocks of 16 would otherwise take 5.3x the
    output's memory)."""
    if p.kernel == "depthwise":
        return _depthwise(x, wp, bp, spec, p)
    if p.kernel == "wvector":
        return _wvector(x, wp, bp, spec, p, workspace_bytes)
    blocks = wp.shape[-6]
    groups = spec.groups if p.kernel == "broadcast" else 1
    width = groups * blocks * p.fb
    compact = width != spec.filters
    out = aligned_empty((spec.batch, *spec.output_spatial, spec.filters), x.dtype)
    if p.kernel == "broadcast":
        run = broadcast_kernel(p.rw, p.fb)
    else:
        run = lane_kernel(p.rw, p.fb, spec.kernel_size[2], spec.strides[2], spec.dilation_rate[2])
    sd, sh, _ = spec.strides
    unpadded = p.kernel == "broadcast" and not any(sum(pad) for pad in spec.pads)
    lane_width = blocks * p.fb
    # one input channel per filter: the channel-padded slab already is the lane kernel's input
    lanes_by_padding = p.kernel == "lane" and spec.in_channels == spec.filters == spec.groups
    lane_values = 0 if p.kernel == "broadcast" else lane_width * wp.shape[-2]
    per_pixel = 0 if unpadded else x.dtype.itemsize * np.prod(spec.strides) * (spec.in_channels + lane_values)
    per_pixel += x.dtype.itemsize * width if compact else 0
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
                slab = lanes(slab, spec, wp)
        target = out
        if compact:
            target = aligned_empty((*origin[3:], spec.output_spatial[2], width), x.dtype)
            origin = (0, 0, 0, *origin[3:])
        with phase("kernel"):
            run(slab, wp, bp, target, origin, source, spec.strides, spec.dilation_rate)
        if compact:
            with phase("layout"):
                padded = target.reshape(*target.shape[:4], groups, blocks * p.fb)
                out[n0:n1, od0:od1, oh0:oh1] = padded[..., :spec.filters // groups].reshape(
                    *target.shape[:4], -1)
    return out
