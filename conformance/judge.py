"""Per-element judgement of a backend's output against the reference (VERIFICATION.md §2-3).

Realistic regime, per output element i with K taps and n = K + 1 terms:

    |y_i - ref_i| <= gamma_n(u) * S_i + u_out * |ref_i| + n * eta + eta_out      (+ ref's own error)

u: unit roundoff of the backend's DECLARED compute precision; u_out, eta_out: unit roundoff and
smallest subnormal of the output dtype; eta: smallest subnormal of the compute format (each
underflowing operation may lose up to that much).

A precision that rounds its inputs to fewer bits (u_in) than the dtype has and sums in a wider
accumulator (u_acc: TF32, bfloat16-float32) replaces gamma_n(u) * S by

    ((1 + u_in)^2 (1 + gamma_n(u_acc)) - 1) * S

(each product of two rounded inputs is within (1+u_in)^2 of the true one; the sum of n such terms
within gamma_n(u_acc) of their sum of magnitudes). One that rounds results to u_res coarser than
u_out uses u_res in place of u_out for the final rounding and the activation's own evaluation; one
that rounds per operation (the sum before the bias is added, then the biased sum) adds u_out * S,
the first rounding's error at most u_out |sum| <= u_out * S.

Backends that declare subnormal flushing get tiny * (sum|w| + K*max|x| + 2n) more. An activation
propagates that error through its Lipschitz constant (or by evaluating it at the interval's ends
when monotone) and adds a few ulps of its own evaluation. The exact regime demands bitwise
equality with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.activations import ACTIVATIONS
from reference.conv import Evaluation
from reference.formats import FORMATS, finfo, input_roundoff, numpy_dtype, result_roundoff
from runtime.records import Status, Worst

ACTIVATION_ULPS = 8  # budget for a framework's own evaluation of a transcendental activation
MISTRUST_ZEROS, MISTRUST_ZEROS_RECTIFIED = 0.70, 0.85
RECTIFIERS = ("relu", "relu6", "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid",
              "hard_sigmoid", "sparsemax")


@dataclass(frozen=True)
class Verdict:
    """Outcome of one comparison; `worst` describes the element with the largest error/bound."""

    status: Status
    max_ratio: float = 0.0
    zero_fraction: float = 0.0
    worst: Worst | None = None
    message: str = ""


def gamma(n: int, u: float) -> float:
    return n * u / (1 - n * u) if n * u < 1 else np.inf


def sum_error(n: int, precision: str, dtype: str) -> float:
    """c with |computed - exact| <= c * S for a sum of n products (bias included) of `dtype`
    inputs in `precision`."""
    u_in = input_roundoff(precision, dtype)
    if u_in == 0:
        return gamma(n, FORMATS[precision].unit_roundoff)
    return (1 + u_in) ** 2 * (1 + gamma(n, 2.0 ** -FORMATS[precision].accumulator_bits)) - 1


def pre_activation_bound(ev: Evaluation, x: np.ndarray, kernel: np.ndarray, dtype: str,
                         precision: str, flushes_subnormals: bool) -> np.ndarray:
    """Largest error a correct backend may make before the activation, per element."""
    n = ev.spec.taps + 1
    u_out = result_roundoff(precision, dtype)
    compute, out = finfo(precision), finfo(dtype)
    s, ref = ev.abs_sum, np.abs(ev.pre_activation)
    bound = (sum_error(n, precision, dtype) * s + u_out * ref + n * float(compute.smallest_subnormal)
             + float(out.smallest_subnormal))
    if FORMATS[precision].per_op:  # the sum is rounded once more before the bias
        bound = bound + u_out * s
    bound += 2.0**-52 * ref + gamma(n, 2.0**-53) ** 2 * s  # the reference's own error, doubled
    if flushes_subnormals:
        tiny = float(compute.smallest_normal)
        w_abs = np.abs(kernel.astype(np.float64)).reshape(-1, ev.spec.filters).sum(axis=0)
        x_abs = np.abs(x.astype(np.float64))
        x_max = float(np.max(x_abs[np.isfinite(x_abs)], initial=0.0))
        w_term = w_abs if ev.spec.channels_last else w_abs[:, None, None, None]
        bound = bound + tiny * (w_term + ev.spec.taps * x_max + 2 * n)
        bound += float(out.smallest_normal)
    return bound


def _elementwise_activation_bound(name: str, z: np.ndarray, e: np.ndarray, u_out: float,
                                  eta_out: float) -> np.ndarray:
    info = ACTIVATIONS[name]
    with np.errstate(all="ignore"):
        act = info.fn(z)
        if info.monotone:
            spread = np.maximum(np.abs(info.fn(z + e) - act), np.abs(info.fn(z - e) - act))
        else:
            spread = info.lipschitz * e
        if info.exact_ops:
            return spread
        return spread + ACTIVATION_ULPS * u_out * (np.abs(act) + np.abs(z)) + eta_out


def _axis_activation_bound(name: str, z: np.ndarray, e: np.ndarray, u_out: float,
                           eta_out: float) -> np.ndarray:
    """Bounds for softmax, log_softmax, glu and sparsemax, which mix the last axis."""
    width = z.shape[-1]
    slack = ACTIVATION_ULPS * u_out
    with np.errstate(all="ignore"):
        e_row = np.max(e, axis=-1, keepdims=True)
        z_max = np.max(np.abs(z), axis=-1, keepdims=True)
        out = np.abs(ACTIVATIONS[name].fn(z))
        if name == "softmax":  # every ratio s_i/s_j moves by at most a factor exp(2 e_row)
            return out * np.expm1(2 * e_row) + slack * (width + 2) * out + eta_out
        if name == "log_softmax":
            return 2 * e_row + slack * (out + 2 * z_max + np.log(width)) + eta_out
        if name == "glu":
            a, b = np.split(z, 2, axis=-1)
            ea, eb = np.split(e, 2, axis=-1)
            sig = 1 / (1 + np.exp(-b))
            return ea * sig + (np.abs(a) + ea) * 0.25 * eb + slack * (out + np.abs(a)) + eta_out
        if name == "sparsemax":  # a projection: 1-Lipschitz in the 2-norm
            l2 = np.sqrt(np.sum(e * e, axis=-1, keepdims=True))
            return l2 + slack * width * (z_max + 1) + eta_out
    raise ValueError(f"no axis bound for {name}")


def output_bound(ev: Evaluation, pre_bound: np.ndarray, dtype: str, precision: str | None = None
                 ) -> np.ndarray:
    """Bound after the activation (string names and None only)."""
    name = ev.spec.activation
    if name is None:
        return pre_bound
    u_out, eta_out = result_roundoff(precision or dtype, dtype), float(finfo(dtype).smallest_subnormal)
    if ACTIVATIONS[name].axis:
        bound = _axis_activation_bound(name, ev.pre_activation, pre_bound, u_out, eta_out)
        return np.broadcast_to(bound, ev.output.shape)
    return _elementwise_activation_bound(name, ev.pre_activation, pre_bound, u_out, eta_out)


#: candidate compute precisions for the effective-precision estimate, most precise first
CANDIDATES = ("float64", "float32", "tf32", "float16", "bfloat16")
REALISTIC = ("normal", "uniform", "wide")


def effective_precision(ev: Evaluation, got: np.ndarray, x: np.ndarray, kernel: np.ndarray, dtype: str,
                        flushes_subnormals: bool = False) -> str:
    """The most precise candidate whose bound admits every element of `got` that is finite with a
    finite reference ("none" when none does, "" when no element is finite): the errors seen are
    consistent with computing in that precision. A float32 backend that really computes in TF32 or
    sums in bfloat16 comes out as such once its errors exceed the float32 bound. Each candidate
    allows a rounding before the bias add, so per-operation frameworks are not marked down."""
    got64 = np.asarray(got).astype(np.float64)
    finite = np.isfinite(got64) & np.isfinite(ev.output)
    if got64.shape != ev.output.shape or not finite.any():
        return ""
    err = np.abs(got64 - ev.output)[finite]
    for name in CANDIDATES:  # each taken per operation: the estimate is about the sums' bits
        with np.errstate(all="ignore"):
            pre = pre_activation_bound(ev, x, kernel, dtype, name, flushes_subnormals)
            if not FORMATS[name].per_op:
                pre = pre + result_roundoff(name, dtype) * ev.abs_sum
            bound = np.broadcast_to(output_bound(ev, pre, dtype, name), ev.output.shape)[finite]
        if np.all((err == 0) | (err <= bound)):  # an exact element passes even a NaN bound (0 * inf)
            return name
    return "none"


def _ulps(got: np.ndarray, ref: np.ndarray, dtype: str) -> float:
    with np.errstate(all="ignore"):
        rounded = ref.astype(numpy_dtype(dtype))
        spacing = np.spacing(np.abs(rounded)).astype(np.float64)
        return float(np.abs(got - rounded.astype(np.float64)) / spacing)


def _worst(got: np.ndarray, ref: np.ndarray, ratio: np.ndarray, bound: np.ndarray, dtype: str,
           channels_last: bool) -> Worst:
    idx = np.unravel_index(int(np.nanargmax(ratio)), ratio.shape)
    n, *rest = (int(i) for i in idx)
    nd_hw_c = (n, *rest[:3], rest[3]) if channels_last else (n, *rest[1:], rest[0])
    g, r = float(got[idx]), float(ref[idx])
    return Worst(index=nd_hw_c, expected=r, got=g, error=abs(g - r), bound=float(bound[idx]),
                 ratio=float(ratio[idx]), ulps=_ulps(np.float64(g), np.float64(r), dtype))


def _non_finite_ok(got: np.ndarray, ref: np.ndarray, bound: np.ndarray, s_overflow: np.ndarray,
                   out_max: float) -> np.ndarray:
    """Where got or ref is not finite: is that what IEEE arithmetic allows?"""
    same_nan = np.isnan(got) & np.isnan(ref)
    same_inf = np.isinf(ref) & (got == ref)
    rounds_to_inf = (np.isfinite(ref) & np.isinf(got) & (np.sign(got) == np.sign(ref))
                     & (np.abs(ref) + bound >= out_max))
    return same_nan | same_inf | rounds_to_inf | (s_overflow & np.isfinite(ref))


def output_problem(got: object, shape: tuple[int, ...], dtype: str, finite: bool = False) -> str:
    """What is wrong with a backend's output before any value is compared ("" when nothing):
    not a numeric array, the wrong shape or dtype, or (with `finite`) NaN or infinity."""
    if not isinstance(got, np.ndarray) or (got.dtype.kind not in "fiu" and got.dtype.name != "bfloat16"):
        kind = type(got).__name__ if not isinstance(got, np.ndarray) else f"array of {got.dtype}"
        if isinstance(got, np.ndarray) and got.dtype == object and got.shape == () and got.item() is None:
            kind = "None"
        return f"returned {kind} instead of an array of {dtype}"
    if got.shape != tuple(shape):
        return f"output shape {got.shape} != expected {tuple(shape)}"
    if got.dtype != numpy_dtype(dtype):
        return f"output dtype {got.dtype} != input dtype {dtype}"
    if finite and not np.all(np.isfinite(got)):
        bad = int(np.sum(~np.isfinite(got)))
        return f"{bad} of {got.size} elements are NaN or infinite although every input is finite"
    return ""


def judge(ev: Evaluation, got: np.ndarray, x: np.ndarray, kernel: np.ndarray, dtype: str,
          precision: str, exact: bool = False, flushes_subnormals: bool = False,
          extra_error: np.ndarray | float = 0.0) -> Verdict:
    """Compare `got` with the reference evaluation `ev` under the VERIFICATION.md bound.

    extra_error: a bound on the truth's own error beyond the exact reference's (the bench's
    float64 numpy-im2col truth for layers too large for the reference)."""
    ref = ev.output
    problem = output_problem(got, ref.shape, dtype)
    if problem:
        return Verdict(Status.FAIL, np.inf, message=problem)
    got64 = got.astype(np.float64)
    if exact:
        bound = np.zeros_like(ref)
    else:
        pre = pre_activation_bound(ev, x, kernel, dtype, precision, flushes_subnormals) + extra_error
        bound = output_bound(ev, pre, dtype, precision)
    with np.errstate(all="ignore"):
        err = np.abs(got64 - ref)
        ratio = np.where(err == 0, 0.0, err / bound)
    finite = np.isfinite(got64) & np.isfinite(ref)
    acc_max = float(finfo(precision).max)
    s_overflow = ev.abs_sum * (1 + sum_error(ev.spec.taps + 1, precision, dtype)) >= acc_max
    # an axis activation mixes the row: overflow anywhere in it spoils all of it
    if isinstance(ev.spec.activation, str) and ACTIVATIONS[ev.spec.activation].axis:
        s_overflow = np.broadcast_to(np.any(s_overflow, axis=-1, keepdims=True), ref.shape)
    special_ok = _non_finite_ok(got64, ref, bound, s_overflow, float(finfo(dtype).max))
    ratio = np.where(finite, ratio, np.where(special_ok, 0.0, np.inf))
    ratio = np.where(s_overflow & np.isfinite(ref), 0.0, ratio)  # partial sums may overflow
    zero_fraction = float(np.mean(got64 == 0)) if got64.size else 0.0
    max_ratio = float(np.nanmax(ratio)) if ratio.size else 0.0
    worst = _worst(got64, ref, ratio, bound, dtype, ev.spec.channels_last) if ratio.size else None
    if not max_ratio <= 1:
        bad = int(np.sum(~(ratio <= 1)))
        return Verdict(Status.FAIL, max_ratio, zero_fraction, worst,
                       f"{bad} of {ratio.size} elements outside the bound")
    return Verdict(_trust(got64, zero_fraction, ev.spec.activation), max_ratio, zero_fraction, worst)


def _trust(got: np.ndarray, zero_fraction: float, activation: str | None) -> Status:
    limit = MISTRUST_ZEROS_RECTIFIED if activation in RECTIFIERS else MISTRUST_ZEROS
    finite = got[np.isfinite(got)]
    constant = got.size > 1 and finite.size == got.size and np.all(finite == finite.flat[0])
    return Status.MISTRUSTED if zero_fraction > limit or constant else Status.PASS
