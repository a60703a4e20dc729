"""Conv3D by im2col + GEMM, written once for any NumPy-like array namespace (numpy, cupy).

The output is computed tile by tile (a range of samples, or one sample's range of output depth
rows, or one depth row's range of height rows); each tile pads only the input slab it reads, so the
extra memory of a call is bounded by the workspace, whatever the layer. Three paths, chosen per
layer by `choose_path`:
- pointwise (1x1x1 kernel, no padding): the input rows are already the columns: one GEMM;
- depthwise (one input channel per group): a direct multiply-add per kernel tap, no GEMM;
- im2col: columns gathered per tile, one GEMM per group, written straight into the output when
  the tile is contiguous and there is one group.
Accumulation stays in the input dtype, so the float32 bound of VERIFICATION.md applies.
"""

from __future__ import annotations

from collections.abc import Iterator

from backends.phases import phase
from reference.spec import Conv3DSpec

CHUNK_TARGET_BYTES = 64 * 2**20  # column buffer per tile (measured: larger GEMMs win up to here)


def choose_path(spec: Conv3DSpec) -> str:
    if spec.kernel_size == (1, 1, 1) and not any(sum(p) for p in spec.pads):
        return "pointwise"
    if spec.in_channels == spec.groups and spec.groups > 1:
        return "depthwise"
    return "im2col"


def _taps(spec: Conv3DSpec) -> list[tuple[int, int, int]]:
    kd, kh, kw = spec.kernel_size
    return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]


def _extent(count: int, k: int, s: int, d: int) -> int:
    """Input extent read by `count` consecutive outputs along one axis."""
    return (count - 1) * s + d * (k - 1) + 1


def slab_window(spec: Conv3DSpec, tile: Tile) -> tuple[int, int, int, int]:
    """(d_start, d_size, h_start, h_size): the input rows a tile reads, padding included (a start
    below 0 or an end past the input lies in the zero padding)."""
    _, _, od0, od1, oh0, oh1 = tile
    (pd, _), (ph, _), _ = spec.pads
    (kd, kh, _), (sd, sh, _), (dd, dh, _) = spec.kernel_size, spec.strides, spec.dilation_rate
    return (od0 * sd - pd, _extent(od1 - od0, kd, sd, dd), oh0 * sh - ph, _extent(oh1 - oh0, kh, sh, dh))


def padded_slab(xp, x, spec: Conv3DSpec, tile: Tile):
    """The zero-padded input block read by a tile (all of W)."""
    n0, n1 = tile[:2]
    d_start, d_size, h_start, h_size = slab_window(spec, tile)
    (d_in, h_in), (pw0, pw1) = x.shape[1:3], spec.pads[2]
    d_lo, d_hi = max(d_start, 0), min(d_start + d_size, d_in)
    h_lo, h_hi = max(h_start, 0), min(h_start + h_size, h_in)
    block = x[n0:n1, d_lo:d_hi, h_lo:h_hi]
    return xp.pad(block, ((0, 0), (d_lo - d_start, d_start + d_size - d_hi),
                          (h_lo - h_start, h_start + h_size - h_hi), (pw0, pw1), (0, 0)))


def _tap_view(slab, spec: Conv3DSpec, rows: int, cols_h: int, tap: tuple[int, int, int]):
    """The input values a kernel tap meets over a tile: (samples, rows, cols_h, Wo, C)."""
    (sd, sh, sw), (dd, dh, dw) = spec.strides, spec.dilation_rate
    a, b, c = tap
    wo = spec.output_spatial[2]
    return slab[:, a * dd:a * dd + (rows - 1) * sd + 1:sd, b * dh:b * dh + (cols_h - 1) * sh + 1:sh,
                c * dw:c * dw + (wo - 1) * sw + 1:sw, :]


Tile = tuple[int, int, int, int, int, int]  # (n0, n1, od0, od1, oh0, oh1)


def tiles(spec: Conv3DSpec, bytes_per_output_pixel: int, target: int) -> Iterator[Tile]:
    """Tiles whose per-tile buffers stay under `target` bytes: whole samples when they fit,
    else depth rows of one sample, else height rows of one depth row."""
    n, (do, ho, wo) = spec.batch, spec.output_spatial
    pixels = max(1, target // max(bytes_per_output_pixel, 1))
    if pixels >= do * ho * wo:
        step = min(n, pixels // (do * ho * wo))
        for n0 in range(0, n, step):
            yield n0, min(n, n0 + step), 0, do, 0, ho
    elif pixels >= ho * wo:
        rows = pixels // (ho * wo)
        for i in range(n):
            for od0 in range(0, do, rows):
                yield i, i + 1, od0, min(do, od0 + rows), 0, ho
    else:
        hs = max(1, pixels // wo)
        for i in range(n):
            for od0 in range(do):
                for oh0 in range(0, ho, hs):
                    yield i, i + 1, od0, od0 + 1, oh0, min(ho, oh0 + hs)


def _pointwise(xp, x, kernel, spec: Conv3DSpec, target: int):
    """1x1x1 without padding: each (strided) input pixel row times the kernel, tile by tile."""
    sd, sh, sw = spec.strides
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    w = xp.moveaxis(kernel.reshape(cg, groups, fg), 1, 0)  # (G, Cg, Fg)
    out = xp.empty((spec.batch, *spec.output_spatial, spec.filters), dtype=x.dtype)
    for n0, n1, od0, od1, oh0, oh1 in tiles(spec, spec.in_channels * x.dtype.itemsize, target):
        rows = x[n0:n1, od0 * sd:(od1 - 1) * sd + 1:sd, oh0 * sh:(oh1 - 1) * sh + 1:sh, ::sw]
        a = xp.moveaxis(rows.reshape(-1, groups, cg), 1, 0)  # (G, M, Cg)
        with phase("gemm"):
            product = xp.matmul(a, w)  # (G, M, Fg)
        with phase("layout"):
            out[n0:n1, od0:od1, oh0:oh1] = xp.moveaxis(product, 0, 1).reshape(*rows.shape[:4], spec.filters)
    return out


def _depthwise(xp, x, kernel, spec: Conv3DSpec, target: int):
    """out[..., g*fg + j] = sum over taps of x[..., g] * w[tap, 0, g*fg + j], tile by tile."""
    fg = spec.filters // spec.groups
    w = kernel.reshape(-1, spec.filters)
    out = xp.zeros((spec.batch, *spec.output_spatial, spec.filters), dtype=x.dtype)
    per_pixel = spec.filters * x.dtype.itemsize * 4  # accumulator, product, slab share
    for tile in tiles(spec, per_pixel, target):
        n0, n1, od0, od1, oh0, oh1 = tile
        with phase("pad"):
            slab = padded_slab(xp, x, spec, tile)
            if fg > 1:  # channel g feeds filters g*fg .. g*fg + fg - 1
                slab = xp.repeat(slab, fg, axis=-1)
        acc = out[n0:n1, od0:od1, oh0:oh1]
        with phase("multiply-add"):
            for t, tap in enumerate(_taps(spec)):
                acc += _tap_view(slab, spec, od1 - od0, oh1 - oh0, tap) * w[t]
    return out


def _im2col(xp, x, kernel, spec: Conv3DSpec, target: int):
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    k, wo = spec.taps, spec.output_spatial[2]
    weights = xp.moveaxis(kernel.reshape(k, groups, fg), 1, 0)  # (G, K, Fg)
    out = xp.empty((spec.batch, *spec.output_spatial, spec.filters), dtype=x.dtype)
    for tile in tiles(spec, groups * k * x.dtype.itemsize, target):
        n0, n1, od0, od1, oh0, oh1 = tile
        samples, rows, hs = n1 - n0, od1 - od0, oh1 - oh0
        with phase("pad"):
            slab = padded_slab(xp, x, spec, tile)
        with phase("pack"):
            cols = xp.empty((groups, samples, rows, hs, wo, *spec.kernel_size, cg), dtype=x.dtype)
            for tap in _taps(spec):
                view = _tap_view(slab, spec, rows, hs, tap)  # (samples, rows, hs, wo, C)
                cols[(slice(None),) * 5 + tap] = xp.moveaxis(
                    view.reshape(samples, rows, hs, wo, groups, cg), 4, 0)
        cols = cols.reshape(groups, -1, k)
        target_view = out[n0:n1, od0:od1, oh0:oh1]
        if groups == 1 and target_view.flags.c_contiguous:  # the GEMM writes the output directly
            with phase("gemm"):
                xp.matmul(cols[0], weights[0], out=target_view.reshape(-1, spec.filters))
        else:
            with phase("gemm"):
                product = xp.matmul(cols, weights)  # (G, M, Fg)
            with phase("layout"):
                target_view[...] = xp.moveaxis(product, 0, 1).reshape(target_view.shape)
    return out


def conv3d_channels_last(xp, x, kernel, bias, spec: Conv3DSpec, workspace_bytes: int):
    """Pre-activation output (N, Do, Ho, Wo, F) for a channels-last input, in x's dtype."""
    path = choose_path(spec)
    target = min(workspace_bytes // 4, CHUNK_TARGET_BYTES)
    out = {"pointwise": _pointwise, "depthwise": _depthwise, "im2col": _im2col}[path](
        xp, x, kernel, spec, target)
    if bias is not None:
        with phase("bias"):
            out += bias
    return out
