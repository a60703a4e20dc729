"""`conv3d_grad`, the exact backward reference (SPEC.md "Gradients"), and `evaluate_grad`, which
also keeps what the judge's bound needs.

With dz = dy * act'(z) (the vector-Jacobian product along the last axis for axis activations),
all in float64:

    dx[n, i, c]          = sum dz[n, o, f] * w[a, c - g*Cg, f]   over taps a, outputs o with
                           o*s + a*d = i + pad, and filters f of c's group g
    dkernel[a, ci, f]    = sum over (n, o) of xpad[n, o*s + a*d, g*Cg + ci] * dz[n, o, f]
    dbias[f]             = sum over (n, o) of dz[n, o, f]

Each is a sum of exact products accumulated by the compensated sums of reference.loops (dkernel
and dbias by the forward loop `accumulate` on rearranged arrays, dx by its own gather loop), so
each element is within 2^-53*|r| + gamma_n(2^-53)^2 * S of the exact sum of the float64 dz terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference.conv import Evaluation, as_float64, evaluate
from reference.derivatives import vjp
from reference.loops import accumulate, accumulate_input_grad, run


@dataclass(frozen=True)
class GradEvaluation:
    """The reference backward pass for one call, float64, each gradient in its argument's layout.

    forward: the forward evaluation (z and its bound's ingredients); dz: dy * act'(z), channels
    last; dx_abs, dkernel_abs, dbias_abs: sum |dz||w|, sum |x||dz|, sum |dz| per element.
    """

    forward: Evaluation
    dy: np.ndarray  # channels last
    dz: np.ndarray
    dx: np.ndarray
    dkernel: np.ndarray
    dbias: np.ndarray | None
    dx_abs: np.ndarray
    dkernel_abs: np.ndarray
    dbias_abs: np.ndarray

    @property
    def spec(self):
        return self.forward.spec


def _float32_exact(*arrays: np.ndarray) -> bool:
    """Every value is a finite float32: products of two such are exact in float64."""
    return all(np.all(np.isfinite(a)) and np.array_equal(a.astype(np.float32), a) for a in arrays)


def backward_sums(spec, x_cl: np.ndarray, kernel: np.ndarray, dz: np.ndarray):
    """(dx, dkernel, dbias) and their sums of |terms|, channels last, for float64 x_cl (N, D, H,
    W, C), kernel (kd, kh, kw, Cg, F) and dz (N, Dout, Hout, Wout, F). The judge also calls it
    with magnitudes in place of values to bound a backend's error."""
    cg, filters, groups = kernel.shape[3], spec.filters, spec.groups
    fg = filters // groups
    kernel = np.ascontiguousarray(kernel)
    dx, dx_abs = np.empty(x_cl.shape), np.empty(x_cl.shape)
    run(accumulate_input_grad, np.ascontiguousarray(dz), kernel, tuple(p[0] for p in spec.pads),
        spec.strides, spec.dilation_rate, groups, _float32_exact(dz, kernel), dx, dx_abs)
    # dkernel: per group, the forward loop with batch and channels swapped, stride and dilation
    # swapped: out[ci, a, b, c, f] = sum_{o, n} xpad[n, a*d + o*s, ci] * dz[n, o, f]
    xpad = np.pad(x_cl, ((0, 0), *spec.pads, (0, 0)))
    exact = _float32_exact(xpad, dz)
    dk, dk_abs = np.empty(kernel.shape), np.empty(kernel.shape)
    for g in range(groups):
        x_g = np.ascontiguousarray(np.moveaxis(xpad[..., g * cg:(g + 1) * cg], (0, -1), (-1, 0)))
        dz_g = np.ascontiguousarray(np.moveaxis(dz[..., g * fg:(g + 1) * fg], (0, -1), (-1, 0)))
        out, out_abs = np.empty((cg, *kernel.shape[:3], fg)), np.empty((cg, *kernel.shape[:3], fg))
        run(accumulate, x_g, dz_g, np.zeros(fg), spec.dilation_rate, spec.strides, 1, exact, out,
            out_abs)
        dk[..., g * fg:(g + 1) * fg] = np.moveaxis(out, 0, -2)
        dk_abs[..., g * fg:(g + 1) * fg] = np.moveaxis(out_abs, 0, -2)
    # dbias: a 1x1x1 "convolution" of ones with dz, all N*Dout*Hout*Wout terms in one sum
    terms = np.ascontiguousarray(dz.reshape(-1, filters).T).reshape(filters, 1, 1, 1, -1)
    db, db_abs = np.empty((1, 1, 1, 1, filters)), np.empty((1, 1, 1, 1, filters))
    run(accumulate, np.ones((1, 1, 1, 1, terms.shape[-1])), terms, np.zeros(filters), (1, 1, 1),
        (1, 1, 1), 1, True, db, db_abs)
    return (dx, dk, db.reshape(filters)), (dx_abs, dk_abs, db_abs.reshape(filters))


def _channels_last(array: np.ndarray, channels_last: bool) -> np.ndarray:
    return array if channels_last else np.moveaxis(array, 1, -1)


def evaluate_grad(x, kernel, bias, dy, *, strides=1, padding="valid", data_format="channels_last",
                  dilation_rate=1, groups=1,
                  activation: str | Callable | None = None) -> GradEvaluation:
    """Run the backward loops on (x, kernel, bias, dy) and keep the bound's ingredients."""
    forward = evaluate(x, kernel, bias, strides=strides, padding=padding, data_format=data_format,
                       dilation_rate=dilation_rate, groups=groups, activation=activation)
    spec = forward.spec
    if callable(activation):
        raise ValueError("conv3d_grad needs an activation given by name (or None): a callable "
                         "has no derivative here")
    dy64 = as_float64("dy", dy)
    if dy64.shape != forward.output.shape:
        raise ValueError(f"dy must have the output's shape {forward.output.shape}; received {dy64.shape}")
    cl = spec.channels_last
    dy_cl = _channels_last(dy64, cl)
    # in the output's own layout: an axis activation acts on its last axis, as in the forward pass
    dz = _channels_last(vjp(activation, forward.pre_activation, dy64), cl)
    x_cl = _channels_last(as_float64("x", x), cl)
    (dx, dk, db), (dx_abs, dk_abs, db_abs) = backward_sums(spec, x_cl, as_float64("kernel", kernel), dz)
    back = (lambda a: a) if cl else (lambda a: np.moveaxis(a, -1, 1))
    return GradEvaluation(forward, dy_cl, dz, back(dx), dk, db if bias is not None else None,
                          back(dx_abs), dk_abs, db_abs)


def conv3d_grad(x, kernel, bias, dy, *, strides=1, padding="valid", data_format="channels_last",
                dilation_rate=1, groups=1, activation: str | None = None):
    """(dx, dkernel, dbias) of sum(dy * conv3d(x, kernel, bias, ...)) as float64 arrays, exactly as
    SPEC.md "Gradients" defines them; dbias is None when bias is None. The same ValueErrors as
    `conv3d`, and one for a dy whose shape is not the output's."""
    ev = evaluate_grad(x, kernel, bias, dy, strides=strides, padding=padding,
                       data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                       activation=activation)
    return ev.dx, ev.dkernel, ev.dbias
