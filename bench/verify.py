"""The correctness gate: a timing counts only for an output verified on the same run.

Small layers are judged against the exact reference. For large ones the truth is numpy-im2col
(im2col + NumPy's GEMM) in float64 (with S = conv(|x|, |w|) + |b| for the bound), itself first
checked against the reference on a reduced copy of the layer; its own error, gamma_(K+1)(2^-53)
* S, is added to the bound (doubled). Backward likewise: dz = dy * act'(z) at the float64 truth's
z, whose error widens the interval act' is bounded over, and (dx, dkernel, dbias) by
backends.im2col_grad in float64, each within gamma_(n+1)(2^-53) times its sum of magnitudes
(n terms: taps*F/groups for dx, N*Do*Ho*Wo for dkernel and dbias), added doubled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.im2col_grad import conv3d_grad_channels_last
from backends.numpy_im2col import NumpyIm2col
from conformance.fixed import reduced_spec
from conformance.judge import Verdict, gamma, judge
from conformance.judge_grad import judge_grad
from reference.activations import apply_activation
from reference.conv import Evaluation, evaluate
from reference.derivatives import vjp
from reference.grad import GradEvaluation, evaluate_grad
from reference.spec import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import Status

REFERENCE_MAX_MACS = 200_000_000  # about a second of the compiled reference on 2 cores


@dataclass(frozen=True)
class Truth:
    evaluation: Evaluation | GradEvaluation
    source: str
    extra_error: np.ndarray | float | tuple = 0.0  # backward: (z, dx, dkernel, dbias)


def _numpy_float64(spec: Conv3DSpec, x, kernel, bias) -> Truth:
    backend = NumpyIm2col()
    args = spec.conv_kwargs() | dict(activation=None)
    x64, w64 = x.astype(np.float64), kernel.astype(np.float64)
    b64 = None if bias is None else bias.astype(np.float64)
    pre = backend.conv3d(x64, w64, b64, **args)
    abs_sum = backend.conv3d(np.abs(x64), np.abs(w64), None if b64 is None else np.abs(b64), **args)
    ev = Evaluation(spec, pre, abs_sum, apply_activation(pre, spec.activation))
    return Truth(ev, "numpy-im2col float64", 2 * gamma(spec.taps + 1, 2.0**-53) * abs_sum)


def numpy_float64_trusted(spec: Conv3DSpec, seed: int = 0, backward: bool = False) -> bool:
    """numpy-im2col float64 agrees with the reference (float64 bound) on a reduced copy of `spec`
    (`backward`: its gradients too)."""
    small = reduced_spec(spec)
    x, w, b = make_arrays(small, "float64", "normal", seed)
    truth = _numpy_float64(small, x, w, b)
    got = truth.evaluation.output
    verdict = judge(evaluate(x, w, b, **small.conv_kwargs()), got, x, w, "float64", "float64")
    if verdict.status != Status.PASS or not backward:
        return verdict.status == Status.PASS
    dy = make_cotangent(small, small.output_shape, "float64", "normal", seed)
    ev = _numpy_float64_grad(small, x, w, b, dy).evaluation
    got = (ev.dx, ev.dkernel, ev.dbias)
    verdict = judge_grad(evaluate_grad(x, w, b, dy, **small.conv_kwargs()), got, x, w, "float64", "float64")
    return verdict.status == Status.PASS


def truth_for(spec: Conv3DSpec, x, kernel, bias) -> Truth:
    if spec.flops // 2 <= REFERENCE_MAX_MACS:
        return Truth(evaluate(x, kernel, bias, **spec.conv_kwargs()), "reference")
    if not numpy_float64_trusted(spec):
        raise RuntimeError(f"numpy-im2col float64 disagrees with the reference on a reduced "
                           f"{spec.descriptor}: no trusted truth for this layer")
    return _numpy_float64(spec, x, kernel, bias)


def _numpy_float64_grad(spec: Conv3DSpec, x, kernel, bias, dy) -> Truth:
    forward = _numpy_float64(spec, x, kernel, bias)
    ev = forward.evaluation
    cl = spec.channels_last
    dy64 = dy.astype(np.float64)
    dz = vjp(spec.activation, ev.pre_activation, dy64)
    dz, dy_cl = (a if cl else np.moveaxis(a, 1, -1) for a in (dz, dy64))
    x_cl = (x if cl else np.moveaxis(x, 1, -1)).astype(np.float64)
    w64 = kernel.astype(np.float64)
    grads = conv3d_grad_channels_last(np, x_cl, w64, dz, spec)
    sums = conv3d_grad_channels_last(np, np.abs(x_cl), np.abs(w64), np.abs(dz), spec)
    errors = [2 * gamma(n + 1, 2.0**-53) * s for n, s in zip(spec.grad_terms, sums)]
    back = (lambda a: a) if cl else (lambda a: np.moveaxis(a, -1, 1))
    gev = GradEvaluation(ev, dy_cl, dz, back(grads[0]), grads[1], grads[2] if bias is not None else None,
                         back(sums[0]), sums[1], sums[2])
    return Truth(gev, "numpy-im2col float64", (forward.extra_error, back(errors[0]), *errors[1:]))


def grad_truth_for(spec: Conv3DSpec, x, kernel, bias, dy) -> Truth:
    """The backward truth: the exact reference for small layers, else numpy-im2col in float64
    (trusted as `truth_for` checks it)."""
    if 3 * spec.flops // 2 <= REFERENCE_MAX_MACS:
        return Truth(evaluate_grad(x, kernel, bias, dy, **spec.conv_kwargs()), "reference")
    if not numpy_float64_trusted(spec, backward=True):
        raise RuntimeError(f"numpy-im2col float64 gradients disagree with the reference on a "
                           f"reduced {spec.descriptor}: no trusted truth for this layer")
    return _numpy_float64_grad(spec, x, kernel, bias, dy)


def verify(truth: Truth, got, x, kernel, dtype: str, precision: str,
           flushes_subnormals: bool) -> Verdict:
    if isinstance(truth.evaluation, GradEvaluation):
        extra = truth.extra_error if isinstance(truth.extra_error, tuple) else None
        return judge_grad(truth.evaluation, got, x, kernel, dtype, precision,
                          flushes_subnormals=flushes_subnormals, extra_error=extra)
    return judge(truth.evaluation, got, x, kernel, dtype, precision,
                 flushes_subnormals=flushes_subnormals, extra_error=truth.extra_error)
