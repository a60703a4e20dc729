"""The Conv3D backward pass by im2col + GEMM, for any NumPy-like namespace (numpy, cupy).

With dz = dy * act'(z) (z recomputed by the forward im2col path), per group g:
- dkernel_g = cols_g^T @ dz_g: the im2col columns of the padded input against dz;
- dx: dcols_g = dz_g @ kernel_g^T, then col2im: each tap's column block is added back into the
  padded input's gradient at the positions that tap read (strided, dilated), padding cropped;
- dbias = dz summed over batch and space.
Everything stays in the input dtype (the float32 bound applies). Columns are built for the whole
call: fine for conformance shapes; the forward path's tiling is not repeated here.
"""

from __future__ import annotations

import numpy as np

from backends.im2col import conv3d_channels_last
from reference.derivatives import vjp
from reference.spec import Conv3DSpec


def _tap_slices(spec: Conv3DSpec, tap: tuple[int, int, int]) -> tuple[slice, ...]:
    """Where tap (a, b, c) reads the padded input for every output position."""
    return (slice(None),) + tuple(
        slice(t * d, t * d + (o - 1) * s + 1, s)
        for t, d, o, s in zip(tap, spec.dilation_rate, spec.output_spatial, spec.strides)) + (slice(None),)


def _taps(spec: Conv3DSpec) -> list[tuple[int, int, int]]:
    kd, kh, kw = spec.kernel_size
    return [(a, b, c) for a in range(kd) for b in range(kh) for c in range(kw)]


def pre_activation_cotangent(xp, x_cl, kernel, bias, dy_api, spec: Conv3DSpec, workspace_bytes: int):
    """dz (channels last, x's dtype): dy times act' at the recomputed pre-activation."""
    if spec.activation in (None, "linear"):
        dz = dy_api
    else:
        z = conv3d_channels_last(xp, x_cl, kernel, bias, spec, workspace_bytes)
        if not spec.channels_last:  # the activation acts on the last axis of y's own layout
            z = xp.moveaxis(z, -1, 1)
        dz = xp.asarray(vjp(spec.activation, np.asarray(z), np.asarray(dy_api)), dtype=x_cl.dtype)
    return dz if spec.channels_last else xp.moveaxis(dz, 1, -1)


def conv3d_grad_channels_last(xp, x_cl, kernel, dz, spec: Conv3DSpec):
    """(dx channels last, dkernel, dbias) from dz, all in x's dtype."""
    groups, cg, fg = spec.groups, spec.in_channels // spec.groups, spec.filters // spec.groups
    taps = _taps(spec)
    xpad = xp.pad(x_cl, ((0, 0), *spec.pads, (0, 0)))
    m = spec.batch * int(np.prod(spec.output_spatial))
    cols = xp.stack([xpad[_tap_slices(spec, t)] for t in taps], axis=-2)  # (N, Do, Ho, Wo, K, C)
    cols = xp.moveaxis(cols.reshape(m, len(taps), groups, cg), 2, 0).reshape(groups, m, -1)
    dz_g = xp.moveaxis(dz.reshape(m, groups, fg), 1, 0)  # (G, M, Fg)
    w_g = xp.moveaxis(kernel.reshape(len(taps), cg, groups, fg), 2, 0).reshape(groups, -1, fg)
    dkernel = xp.matmul(xp.swapaxes(cols, 1, 2), dz_g)  # (G, K*Cg, Fg)
    dkernel = xp.moveaxis(dkernel.reshape(groups, len(taps), cg, fg), 0, 2)
    dcols = xp.matmul(dz_g, xp.swapaxes(w_g, 1, 2))  # (G, M, K*Cg)
    dcols = xp.moveaxis(dcols.reshape(groups, m, len(taps), cg), 0, 2)  # (M, K, G, Cg)
    dcols = dcols.reshape(spec.batch, *spec.output_spatial, len(taps), spec.in_channels)
    dxpad = xp.zeros_like(xpad)
    for t, tap in enumerate(taps):
        dxpad[_tap_slices(spec, tap)] += dcols[..., t, :]
    (d0, _), (h0, _), (w0, _) = spec.pads
    d, h, w = spec.in_spatial
    dx = dxpad[:, d0:d0 + d, h0:h0 + h, w0:w0 + w]
    dbias = dz.reshape(-1, spec.filters).sum(axis=0)
    return dx, dkernel.reshape(kernel.shape), dbias
