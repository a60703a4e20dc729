"""Input slabs of the numba-direct kernels: zero-padded blocks of the input, filled in one parallel
numba pass into aligned buffers, transposed for the W-vector kernel, or expanded into lanes for
the lane kernel."""

from __future__ import annotations

import numba
import numpy as np

from backends.im2col import slab_window
from backends.numba_direct.layout import aligned_empty
from reference.numba_target import configure
from reference.spec import Conv3DSpec

configure()  # numba's target, chosen before the first compile (reference.numba_target)


@numba.njit(parallel=True, cache=True)
def fill_slab(x, slab, n0, d_start, h_start, w_start):
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


def padded_slab(x: np.ndarray, spec: Conv3DSpec, tile, channels: int) -> np.ndarray:
    """The zero-padded input block a tile reads, with `channels` channels (>= x's; the rest 0),
    filled in one parallel pass into an aligned buffer."""
    d_start, d_size, h_start, h_size = slab_window(spec, tile)
    pw0, pw1 = spec.pads[2]
    slab = aligned_empty((tile[1] - tile[0], d_size, h_size, x.shape[3] + pw0 + pw1, channels), x.dtype)
    fill_slab(x, slab, tile[0], d_start, h_start, -pw0)
    return slab


def transposed_slab(x: np.ndarray, spec: Conv3DSpec, tile, width: int) -> np.ndarray:
    """The zero-padded input block a tile reads, as (N, D, H, C, width): each channel's row of W
    contiguous (zeros past the input's right padding)."""
    d_start, d_size, h_start, h_size = slab_window(spec, tile)
    slab = aligned_empty((tile[1] - tile[0], d_size, h_size, x.shape[4], width), x.dtype)
    fill_slab(x, np.swapaxes(slab, 3, 4), tile[0], d_start, h_start, -spec.pads[2][0])
    return slab


@numba.njit(parallel=True, cache=True)
def lane_input(slab, out, fg):
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


def lanes(slab: np.ndarray, spec: Conv3DSpec, wp: np.ndarray) -> np.ndarray:
    """The lane kernel's input: (N, D, H, W, Cg, blocks, fb)."""
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    blocks, fb = wp.shape[0], wp.shape[-1]
    out = aligned_empty((*slab.shape[:4], cg, blocks, fb), slab.dtype)
    flat = out.reshape(-1, cg, blocks * fb)
    if fg == 1:  # one filter per group: a plain (strided) copy
        flat[..., :groups] = np.swapaxes(slab.reshape(-1, groups, cg), 1, 2)
        flat[..., groups:] = 0
    else:
        lane_input(slab.reshape(-1, slab.shape[-1]), flat, fg)
    return out
