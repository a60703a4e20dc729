"""The Conv3D backward pass by im2col + GEMM, one kernel tap at a time, for any NumPy-like
namespace (numpy, cupy).

With dz = dy * act'(z) (z recomputed by the caller's forward pass), per tap t and group g:
- dkernel[t]_g = cols_t,g^T @ dz_g: the padded input's values that tap t read, against dz;
- dx (col2im): dz_g @ kernel[t]_g^T is added back into the padded input's gradient at the
  positions tap t read (strided, dilated), padding cropped;
- dbias = dz summed over batch and space.
Everything stays in the input dtype (the float32 bound applies). dkernel takes as many taps at
once as WORKSPACE_BYTES of columns hold (one GEMM for them); col2im goes tap by tap. With groups,
both work on a group-major copy (G, N, D, H, W, C/G) tap by tap: a tap-major column of C/G
channels per group is too narrow a run to copy fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from reference.derivatives import vjp
from reference.spec import Conv3DSpec

WORKSPACE_BYTES = 64 * 2**20  # columns held at once by kernel_grad
SMALL_GEMM_MACS = 64 * 10**6  # dkernel products below this many multiply-adds: one BLAS thread


def tap_slices(spec: Conv3DSpec, tap: tuple[int, int, int]) -> tuple[slice, ...]:
    """Where tap (a, b, c) reads the padded channels-last input for every output position."""
    return (slice(None),) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, o, s in zip(tap, spec.dilation_rate, spec.output_spatial, spec.strides)) + (slice(None),)


def pre_activation_cotangent(xp, pre_activation: Callable[[], object], dy_api, spec: Conv3DSpec,
                             dtype: np.dtype):
    """dz (channels last, `dtype`): dy times act' at the pre-activation that `pre_activation()`
    (channels last) computes, called only for a non-linear activation."""
    if spec.activation in (None, "linear"):
        dz = dy_api
    else:
        z = pre_activation()
        if not spec.channels_last:  # the activation acts on the last axis of y's own layout
            z = xp.moveaxis(z, -1, 1)
        dz = xp.asarray(vjp(spec.activation, np.asarray(z), np.asarray(dy_api)), dtype=dtype)
    return dz if spec.channels_last else xp.moveaxis(dz, 1, -1)


def _grouped(a, groups: int):
    """(..., G*k) channels last -> (G, M, k)."""
    return a.reshape(-1, groups, a.shape[-1] // groups).swapaxes(0, 1)


def _tap_chunks(spec: Conv3DSpec, itemsize: int, workspace_bytes: int) -> list[list[tuple[int, ...]]]:
    """The kernel taps in consecutive runs whose columns (N*Do*Ho*Wo x C each) fit the workspace."""
    taps = list(np.ndindex(*spec.kernel_size))
    per_tap = spec.batch * math.prod(spec.output_spatial) * spec.in_channels * itemsize
    size = max(1, min(len(taps), workspace_bytes // max(per_tap, 1)))
    return [taps[i:i + size] for i in range(0, len(taps), size)]


def kernel_grad(xp, x_cl, dz, spec: Conv3DSpec, workspace_bytes: int = WORKSPACE_BYTES, cols=None):
    """dkernel (kd, kh, kw, C/groups, F) = sum over batch and outputs of x (padded) times dz: one
    GEMM per group for as many taps as the workspace holds columns of (few, large products), or
    one for every tap when `cols` (from `all_columns`) are given."""
    dz_g = xp.ascontiguousarray(_grouped(dz, spec.groups))  # (G, M, Fg)
    dkernel = xp.empty((*spec.kernel_size, spec.in_channels // spec.groups, spec.filters), dz.dtype)
    # a small product on one BLAS thread: a second one would go on spinning after the call,
    # taking the core from whatever parallel kernel comes next (numba-direct's)
    with threadpool_limits(1 if spec.flops // 2 < SMALL_GEMM_MACS else None, user_api="blas"):
        if cols is not None:
            _store_taps(xp.matmul(cols.swapaxes(1, 2), dz_g), list(np.ndindex(*spec.kernel_size)), dkernel)
        elif spec.groups > 1:  # group-major: each tap's columns one contiguous copy, not C/G-wide runs
            xpad = padded_input(xp, x_cl, spec)
            xpad = xp.ascontiguousarray(xp.moveaxis(
                xpad.reshape(*xpad.shape[:4], spec.groups, -1), 4, 0))  # (G, N, Dp, Hp, Wp, Cg)
            for tap in np.ndindex(*spec.kernel_size):
                read = xp.ascontiguousarray(xpad[(slice(None), *tap_slices(spec, tap))])
                _store_taps(xp.matmul(read.reshape(spec.groups, -1, read.shape[-1]).swapaxes(1, 2), dz_g),
                            [tap], dkernel)
        else:
            xpad = padded_input(xp, x_cl, spec)
            for chunk in _tap_chunks(spec, dz.dtype.itemsize, workspace_bytes):
                _store_taps(xp.matmul(columns(xp, xpad, spec, chunk).swapaxes(1, 2), dz_g), chunk, dkernel)
    return dkernel


def columns(xp, xpad, spec: Conv3DSpec, taps: list[tuple[int, ...]]):
    """The padded input's values read by `taps`, per group: (G, M, len(taps) * Cg), tap-major,
    each tap's values copied once, straight into place."""
    groups, cg = spec.groups, spec.in_channels // spec.groups
    cols = xp.empty((groups, spec.batch, *spec.output_spatial, len(taps), cg), xpad.dtype)
    for i, tap in enumerate(taps):
        read = xpad[tap_slices(spec, tap)]  # (N, Do, Ho, Wo, C)
        cols[..., i, :] = xp.moveaxis(read.reshape(*read.shape[:4], groups, cg), 4, 0)
    return cols.reshape(groups, -1, len(taps) * cg)


def all_columns(xp, x_cl, spec: Conv3DSpec, workspace_bytes: int = WORKSPACE_BYTES):
    """`columns` of every tap at once, or None when they exceed the workspace or there are groups
    (kernel_grad goes group-major then)."""
    chunks = _tap_chunks(spec, x_cl.dtype.itemsize, workspace_bytes)
    if len(chunks) > 1 or spec.groups > 1:
        return None
    return columns(xp, padded_input(xp, x_cl, spec), spec, chunks[0])


def pre_activation_from_columns(xp, cols, kernel, bias, spec: Conv3DSpec):
    """The pre-activation output (channels last) from `all_columns`: one GEMM per group."""
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    weights = kernel.reshape(-1, cg, groups, fg).transpose(2, 0, 1, 3).reshape(groups, -1, fg)
    z = xp.matmul(cols, weights).swapaxes(0, 1).reshape(spec.batch, *spec.output_spatial, spec.filters)
    if bias is not None:
        z += bias
    return z


def _store_taps(dk, taps: list[tuple[int, ...]], dkernel) -> None:
    """dkernel[tap] for each of `taps` from the per-group product (G, T*Cg, Fg)."""
    groups, cg = dk.shape[0], dkernel.shape[-2]
    dk = dk.reshape(groups, len(taps), cg, -1).transpose(1, 2, 0, 3).reshape(len(taps), cg, -1)
    for tap, value in zip(taps, dk):
        dkernel[tap] = value


def padded_input(xp, x_cl, spec: Conv3DSpec):
    """x (channels last) with the layer's zero padding around its three spatial axes."""
    return xp.pad(x_cl, ((0, 0), *spec.pads, (0, 0)))


def _added_at_taps(xp, spec: Conv3DSpec, dtype, tap_values: Callable[[tuple[int, int, int]], object],
                   groups: int = 1):
    """dx (channels last): for every tap, tap_values(tap) added where that tap read the padded
    input, padding cropped. tap_values gives (N, Do, Ho, Wo, C), or with `groups` > 1 the
    group-major (G, N, Do, Ho, Wo, C/G), summed group-major and reordered once at the end."""
    (d0, d1), (h0, h1), (w0, w1) = spec.pads
    d, h, w = spec.in_spatial
    padded = (spec.batch, d + d0 + d1, h + h0 + h1, w + w0 + w1)
    dxpad = xp.zeros((groups, *padded, spec.in_channels // groups), dtype)
    for tap in np.ndindex(*spec.kernel_size):
        dxpad[(slice(None), *tap_slices(spec, tap))] += tap_values(tap)
    dx = dxpad[:, :, d0:d0 + d, h0:h0 + h, w0:w0 + w]
    return dx[0] if groups == 1 else xp.moveaxis(dx, 0, -2).reshape(*dx.shape[1:5], spec.in_channels)


def input_grad_col2im(xp, kernel, dz, spec: Conv3DSpec):
    """dx (channels last): each tap's dz @ kernel[t]^T added where the tap read, padding cropped
    (group-major while summing when there are groups, so every add is a contiguous run)."""
    groups, cg = spec.groups, spec.in_channels // spec.groups
    dz_g = xp.ascontiguousarray(_grouped(dz, groups))  # (G, M, Fg)

    def dcols(tap):
        w_g = kernel[tap].reshape(cg, groups, -1).swapaxes(0, 1)  # (G, Cg, Fg)
        product = xp.matmul(dz_g, w_g.swapaxes(1, 2))  # (G, M, Cg)
        return product.reshape(*(() if groups == 1 else (groups,)), spec.batch, *spec.output_spatial, cg)

    return _added_at_taps(xp, spec, dz.dtype, dcols, groups)


def depthwise_input_grad(xp, kernel, dz, spec: Conv3DSpec):
    """dx (channels last) of a layer of one input channel per group: per tap, dz times the tap's
    weights (summed over each channel's filters) added where the tap read; no GEMM."""
    fg = spec.filters // spec.groups
    product = xp.empty_like(dz)

    def weighted(tap):
        xp.multiply(dz, kernel[tap][0], out=product)
        return product if fg == 1 else product.reshape(*dz.shape[:4], spec.in_channels, fg).sum(axis=-1)

    return _added_at_taps(xp, spec, dz.dtype, weighted)


def depthwise_kernel_grad(xp, x_cl, dz, spec: Conv3DSpec):
    """dkernel (kd, kh, kw, 1, F) of a layer of one input channel per group: per tap, the sum over
    batch and outputs of x (padded, each channel repeated for its filters) times dz; no GEMM."""
    fg = spec.filters // spec.groups
    xpad = padded_input(xp, x_cl, spec)
    dkernel = xp.empty((*spec.kernel_size, 1, spec.filters), dz.dtype)
    for tap in np.ndindex(*spec.kernel_size):
        taken = xpad[tap_slices(spec, tap)]
        dkernel[tap][0] = xp.einsum("nijkc,nijkc->c", taken if fg == 1 else xp.repeat(taken, fg, axis=-1), dz)
    return dkernel


def conv3d_grad_channels_last(xp, x_cl, kernel, dz, spec: Conv3DSpec, cols=None):
    """(dx channels last, dkernel, dbias) from dz, all in dz's dtype: col2im and im2col^T dz (with
    the columns `cols` when given), or for one input channel per group a multiply-add per tap."""
    dbias = dz.reshape(-1, spec.filters).sum(axis=0)
    if spec.in_channels == spec.groups > 1:
        return depthwise_input_grad(xp, kernel, dz, spec), depthwise_kernel_grad(xp, x_cl, dz, spec), dbias
    return input_grad_col2im(xp, kernel, dz, spec), kernel_grad(xp, x_cl, dz, spec, cols=cols), dbias
