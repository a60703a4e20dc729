"""Per-element judgement of a backend's gradients (dx, dkernel, dbias) against the exact backward
reference (VERIFICATION.md §7).

Derivation. Let u be the unit roundoff of the declared compute precision, u_out that of the
output dtype, eta the compute format's smallest subnormal.
1. The backend evaluates act' at its own pre-activation z_b, which the forward bound B_z
   (conformance.judge.pre_activation_bound) places in [z - B_z, z + B_z], widened by
   ACTIVATION_ULPS * u_out * |z| for the activation's own ops before a kink is tested (a clamp of
   (x + 1) / 2 rounded in bfloat16 moves the kink at 1 by an ulp). So the correct
   act'(z_b) lies in [lo, hi] = reference.derivatives.derivative_range(act, z - B_z, z + B_z):
   both one-sided limits at a kink inside the interval, any value between (a subgradient).
   Its own evaluation of act' adds V = ACTIVATION_ULPS * u_out * max(1, M), M = max(|lo|, |hi|):
   absolute, not relative, because the formulas frameworks differentiate subtract terms of size
   up to 1 (1 - tanh^2, 1 + erf, 1 + x/sqrt(x^2 + 4), 1/(1+|x|) - |x|/(1+|x|)^2), so a tiny
   act' carries an error of a few ulps of 1; the product dy * act' adds one rounding u. Hence
       E_dz = |dy| * (max(hi - d, d - lo) + V + u M) + eta + 2^-49 |dz|
       |dz_b| <= M_dz = |dy| * (M + V) * (1 + u) + eta
   with d the reference's act'(z) (2^-49 |dz| covers the reference's own float64 evaluation).
   The linear activation has dz = dy exactly (E_dz = 0). Axis activations: see `_axis_dz_error`.
   A per-op precision (a framework's autodiff on float16/bfloat16 tensors) evaluates act' and the
   product in the dtype and stores dz in it: u is the dtype's, eta its smallest subnormal, and the
   stored dz adds u M_dz + eta to E_dz (M_dz grows by the same), and where act' or dz may
   overflow the dtype (exp(z) past 65504 in float16, even when dy * exp(z) would not), dz is
   unknown (infinite E_dz); the sums of step 2 stay in the declared accumulator.
2. Each gradient element is a sum of n products a*b in which one factor is a dz (or 1 for dbias)
   and the other exact (w for dx, x for dkernel): n = kd*kh*kw*F/groups for dx, N*Do*Ho*Wo for
   dkernel and dbias. With a perturbed dz and a sum of n rounded terms (Higham, Thm 3.1):
       |g_b - g| <= sum |b| E_dz + gamma_n(u) * sum |b| M_dz + u_out |g| + n eta + eta_out
   The two sums are of non-negative terms, so float64 GEMMs (backends.im2col_grad on |x|, |w|
   and E_dz or M_dz) give them within a factor 1 + gamma_(n+1)(2^-53), which is applied; the
   reference's error (2^-52 |g| + gamma_n(2^-53)^2 sum |b||dz|) is added, doubled. Flushing
   backends get tiny * (n max|b| + n max M_dz + 2n) more (an operand or product flushed to zero
   loses less than tiny times its partner).
3. Exact regime (integers, every partial sum exact in the declared format): dz is exact except at
   kinks, so the bound is sum |b| E_dz alone, zero away from kinks.
4. Non-finite values follow the forward judge (same NaN, same infinity); where the magnitude sum
   (1 + gamma_n) sum |b| M_dz reaches the compute format's range, a partial sum may overflow, and
   the element is not judged (the bound is infinite), as the forward judge allows overflow.
   Where E_dz is infinite (a non-finite z or dy under a non-linear activation, a z whose forward
   partial sums may overflow the compute format, a sparsemax support that the forward error may
   change) the elements it reaches are not judged, and so are the dkernel taps where a non-finite
   dz meets padding (the reference's 0 * inf is NaN; a backend that skips padding never forms it).
"""

from __future__ import annotations

import numpy as np

from backends.im2col_grad import conv3d_grad_channels_last
from conformance.judge import (
    ACTIVATION_ULPS,
    Verdict,
    _non_finite_ok,
    _trust,
    _worst,
    gamma,
    output_problem,
    pre_activation_bound,
)
from reference.activations import ACTIVATIONS
from reference.derivatives import DERIVATIVES, derivative_range
from reference.formats import FORMATS, finfo, result_roundoff, unit_roundoff
from reference.grad import GradEvaluation
from runtime.records import Status

NAMES = ("dx", "dkernel", "dbias")


def _cl(a: np.ndarray, channels_last: bool) -> np.ndarray:
    return a if channels_last else np.moveaxis(a, 1, -1)


def _elementwise_dz_error(name: str, z, bz, dy, dz, u: float, slack: float, eta: float,
                          own: float):
    """E_dz, M_dz and the bound on |act'| of step 1; `own`: the reference's relative error in dz."""
    with np.errstate(all="ignore"):
        d = DERIVATIVES[name].d1(z)
        lo, hi = derivative_range(name, z - bz, z + bz)
        m = np.maximum(np.abs(lo), np.abs(hi))
        ady = np.abs(dy)
        evaluation = slack * np.maximum(m, 1.0)  # absolute: its formulas subtract terms up to 1
        error = ady * (np.maximum(hi - d, d - lo) + evaluation + u * m) + eta + own * np.abs(dz)
        return error, ady * (m + evaluation) * (1 + u) + eta, m


def _axis_dz_error(name: str, z, bz, dy, u: float, slack: float, eta: float):
    """E_dz and M_dz for the softmax family (last axis of the output's layout).

    softmax: s_b = s * [e^-2e, e^2e] (e = row max of B_z), so |s_b - s| <= delta = s (expm1(2e) +
    slack); dz = s (dy - c), c = sum dy s, |c_b - c| <= C = sum |dy| delta + width u sum |dy| s.
    log_softmax: dz = dy - s sum(dy). glu: dz_a = dy sigma(b), dz_b = dy a sigma'(b), with
    |sigma'| <= 1/4 and |sigma''| <= 0.0963. sparsemax: on a support that no error of size B_z can
    change (every |z_i - tau| > 2e) dz = dy - mean_S(dy) does not depend on z; elsewhere unknown.
    """
    width = z.shape[-1]
    e = np.max(bz, axis=-1, keepdims=True)
    ady = np.abs(dy)
    with np.errstate(all="ignore"):
        if name in ("softmax", "log_softmax"):
            s = ACTIVATIONS["softmax"].fn(z)
            delta = s * (np.expm1(2 * e) + slack)
            if name == "softmax":
                c = np.sum(dy * s, axis=-1, keepdims=True)
                cap = (np.sum(ady * delta, axis=-1, keepdims=True)
                       + width * u * np.sum(ady * s, axis=-1, keepdims=True))
                error = delta * (ady + np.abs(c)) + (s + delta) * cap + 3 * u * s * (ady + np.abs(c))
                return error + eta, (s + delta) * (ady + np.abs(c) + cap) * (1 + 3 * u) + eta
            total, abs_total = np.sum(dy, axis=-1, keepdims=True), np.sum(ady, axis=-1, keepdims=True)
            error = (delta * np.abs(total) + (s + delta) * width * u * abs_total
                     + 2 * u * (ady + s * abs_total))
            return error + eta, ady + (s + delta) * abs_total * (1 + (width + 2) * u) + eta
        if name == "glu":
            a, b = np.split(z, 2, axis=-1)
            ea, eb = np.split(bz, 2, axis=-1)
            da = ady  # y, and so dy, has half of z's last axis
            sig = 1 / (1 + np.exp(-b))
            err_a = da * (0.25 * eb + (slack + u) * sig)
            err_b = da * (0.25 * ea + (np.abs(a) + ea) * 0.0963 * eb
                          + (slack + 2 * u) * (np.abs(a) + ea) * 0.25)
            mag_a = da * (sig + 0.25 * eb) * (1 + slack + u)
            mag_b = da * (np.abs(a) + ea) * 0.25 * (1 + slack + 2 * u)
            return (np.concatenate([err_a, err_b], axis=-1) + eta,
                    np.concatenate([mag_a, mag_b], axis=-1) + eta)
        if name == "sparsemax":
            p = ACTIVATIONS["sparsemax"].fn(z)
            support = p > 0
            tau = np.max(np.where(support, z - p, -np.inf), axis=-1, keepdims=True)
            stable = np.all(np.abs(z - tau) > 2 * e, axis=-1, keepdims=True)
            size = np.maximum(np.sum(support, axis=-1, keepdims=True), 1)
            mean = np.sum(ady * support, axis=-1, keepdims=True) / size
            error = np.where(stable, 2 * width * u * (ady + mean), np.inf)
            return np.broadcast_to(error + eta, z.shape), (ady + mean) * (1 + 2 * width * u) + eta
    raise ValueError(f"no gradient bound for activation {name!r}")


def dz_error(ev: GradEvaluation, x, kernel, dtype: str, precision: str, flushes: bool,
             exact: bool, z_extra: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(E_dz, M_dz), channels last: how far a correct backend's dz may be from the reference's,
    and how large it may be. `z_extra`: the reference z's own error, when it is not exact (the
    bench's float64 truth)."""
    spec, name = ev.spec, ev.spec.activation
    per_op = FORMATS[precision].per_op
    # a per-op backend computes act' and dz in the dtype: each op rounds to it, then dz is stored
    u = result_roundoff(precision, dtype) if per_op else unit_roundoff(precision)
    eta = float(finfo(dtype if per_op else precision).smallest_subnormal)
    tiny = float(finfo(dtype if per_op else precision).smallest_normal) if flushes else 0.0
    if name in (None, "linear"):
        return np.zeros_like(ev.dz) + tiny, np.abs(ev.dy)
    slack = 0.0 if _piecewise_constant(name) else ACTIVATION_ULPS * unit_roundoff(dtype)
    z, dy_api = ev.forward.pre_activation, _api(ev.dy, spec.channels_last)
    # the activation's own ops (x + 1 before a clamp) move the point its kinks are tested at
    bz = np.zeros_like(z) if exact else pre_activation_bound(
        ev.forward, x, kernel, dtype, precision, flushes) + z_extra + slack * np.abs(z)
    slope = 0.0  # |act'| bound (the softmax family's stays below 1)
    if ACTIVATIONS[name].axis:
        error, magnitude = _axis_dz_error(name, z, bz, dy_api, u, slack, eta)
    else:
        error, magnitude, slope = _elementwise_dz_error(
            name, z, bz, dy_api, _api(ev.dz, spec.channels_last), *((0.0, slack, 0.0, 0.0) if exact
                                                                   else (u, slack, eta, 2.0**-49)))
    # where the forward partial sums may overflow the compute format, z_b is unknown
    # (and, per op, the dtype that holds z)
    z_max = float(finfo(dtype if per_op else precision).max)
    overflow = ev.forward.abs_sum * (1 + gamma(spec.taps + 1, unit_roundoff(precision))) >= z_max
    if name in ACTIVATIONS and ACTIVATIONS[name].axis:
        overflow = np.broadcast_to(np.any(overflow, axis=-1, keepdims=True), overflow.shape)
    if per_op and not exact:  # dz rounded to the dtype: u |dz| more; it may underflow, or overflow
        error, magnitude = error + u * magnitude + eta, magnitude * (1 + u) + eta
        too_big = np.maximum(magnitude, slope) >= float(finfo(dtype).max)  # act' or dz in the dtype
        error = np.where(too_big, np.inf, error)  # may overflow: unknown
    error = np.where(np.isfinite(z) & np.isfinite(error) & ~overflow, error, np.inf) + tiny
    return _cl(error, spec.channels_last), _cl(magnitude, spec.channels_last)


def _piecewise_constant(name: str) -> bool:
    """act' takes a few values exact in every format (0, 1): no evaluation error."""
    return name in ("relu", "relu6", "hard_tanh")


def _api(a: np.ndarray, channels_last: bool) -> np.ndarray:
    return a if channels_last else np.moveaxis(a, -1, 1)


def gradient_bounds(ev: GradEvaluation, x, kernel, dtype: str, precision: str,
                    flushes: bool = False, exact: bool = False,
                    extra_error: tuple | None = None) -> tuple[np.ndarray, ...]:
    """Per-element bounds for (dx in x's layout, dkernel, dbias). `extra_error`: the reference's
    own errors, when it is not exact: (z, dx in x's layout, dkernel, dbias), added."""
    spec = ev.spec
    z_extra, *extras = extra_error if extra_error is not None else (0.0, 0.0, 0.0, 0.0)
    error, magnitude = dz_error(ev, x, kernel, dtype, precision, flushes, exact, z_extra)
    # non-finite operands are judged by the special-value rule (same NaN, same infinity), so the
    # sums take them as 0; an unknown dz (infinite E_dz) leaves whatever it reaches unjudged
    unknown = ~np.isfinite(error)
    error = np.where(unknown, 0.0, error)
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    x_abs = _cl(np.abs(x.astype(np.float64)), spec.channels_last)
    w_abs = np.abs(kernel.astype(np.float64))
    x_abs, w_abs = (np.where(np.isfinite(a), a, 0.0) for a in (x_abs, w_abs))
    counts = spec.grad_terms
    with np.errstate(all="ignore"):
        spread = _magnitude_sums(spec, x_abs, w_abs, error, counts)
        if exact:
            bounds = spread
        else:
            scale = _magnitude_sums(spec, x_abs, w_abs, magnitude, counts)
            u, u_out = unit_roundoff(precision), unit_roundoff(dtype)
            eta = float(finfo(precision).smallest_subnormal)
            eta_out = float(finfo(dtype).smallest_subnormal)
            refs = (_cl(ev.dx, spec.channels_last), ev.dkernel,
                    ev.dbias if ev.dbias is not None else np.zeros(spec.filters))
            abs_sums = (_cl(ev.dx_abs, spec.channels_last), ev.dkernel_abs, ev.dbias_abs)
            partners = (float(np.max(w_abs, initial=0)), _finite_max(x_abs), 1.0)
            tiny = float(finfo(precision).smallest_normal) if flushes else 0.0
            m_max = _finite_max(magnitude)
            bounds = []
            for s, m, ref, abs_sum, n, partner in zip(spread, scale, refs, abs_sums, counts, partners):
                ref = np.abs(np.where(np.isfinite(ref), ref, 0.0))  # non-finite: the special rule
                bound = (s + gamma(n, u) * m + u_out * ref + n * eta + eta_out
                         + 2.0**-52 * ref + gamma(n, 2.0**-53) ** 2 * abs_sum
                         + tiny * (n * partner + n * m_max + 2 * n))
                # where a partial sum may overflow the compute format, IEEE allows inf or NaN
                overflow = m * (1 + gamma(n, u)) >= float(finfo(precision).max)
                bounds.append(np.where(overflow, np.inf, bound * (1 + 2.0**-40)))  # 2^-40: the
                # float64 evaluation of the bound itself
        ones_x, ones_w = np.ones_like(x_abs), np.ones_like(w_abs)
        reached = list(_magnitude_sums(spec, ones_x, ones_w, unknown.astype(np.float64), counts))
        # dkernel: the reference multiplies padding zeros by dz too (0 * inf is NaN) where a
        # backend may skip the padding, so an unknown dz reaches every tap of its filter, and a
        # non-finite one every tap that reads padding for it
        _, inside, everywhere = _magnitude_sums(
            spec, ones_x, ones_w, (unknown | ~np.isfinite(ev.dz)).astype(np.float64), counts)
        reached[1] = np.broadcast_to(reached[2], bounds[1].shape) + (inside < everywhere)
        bounds = [np.where(np.isnan(b) | (r > 0), np.inf, b) for b, r in zip(bounds, reached)]
    return tuple(b + e for b, e in zip((_api(bounds[0], spec.channels_last), bounds[1], bounds[2]),
                                       extras))


def _magnitude_sums(spec, x_abs: np.ndarray, w_abs: np.ndarray, dz_abs: np.ndarray,
                    counts: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Upper bounds on sum |w| dz_abs (dx), sum |x| dz_abs (dkernel) and sum dz_abs (dbias)."""
    sums = conv3d_grad_channels_last(np, x_abs, w_abs, dz_abs, spec)
    return tuple(s * (1 + gamma(n + 1, 2.0**-53)) for s, n in zip(sums, counts))


def _finite_max(a: np.ndarray) -> float:
    finite = a[np.isfinite(a)]
    return float(np.max(finite, initial=0.0))


def grad_problem(got: object, ev: GradEvaluation, dtype: str, finite: bool = False) -> str:
    """What is wrong with a backward result before any value is compared ("" when nothing)."""
    if not isinstance(got, tuple) or len(got) != 3:
        return f"returned {type(got).__name__} instead of a (dx, dkernel, dbias) tuple"
    if (got[2] is None) != (ev.dbias is None):
        return "dbias is None although the call has a bias" if got[2] is None else \
            "returned a dbias for a call without bias"
    for name, g, ref in zip(NAMES, got, (ev.dx, ev.dkernel, ev.dbias)):
        if ref is not None:
            problem = output_problem(g, ref.shape, dtype, finite)
            if problem:
                return f"{name}: {problem}"
    return ""


def judge_grad(ev: GradEvaluation, got: object, x: np.ndarray, kernel: np.ndarray, dtype: str,
               precision: str, exact: bool = False, flushes_subnormals: bool = False,
               extra_error: tuple | None = None) -> Verdict:
    """Compare a backend's (dx, dkernel, dbias) with the reference under the bound above
    (`extra_error`: see `gradient_bounds`)."""
    problem = grad_problem(got, ev, dtype)
    if problem:
        return Verdict(Status.FAIL, np.inf, message=problem)
    bounds = gradient_bounds(ev, x, kernel, dtype, precision, flushes_subnormals, exact, extra_error)
    acc_max, out_max = float(finfo(precision).max), float(finfo(dtype).max)
    results = []
    for name, g, ref, bound in zip(NAMES, got, (ev.dx, ev.dkernel, ev.dbias), bounds):
        if ref is None:
            continue
        as5 = (lambda a: a.reshape(1, 1, 1, 1, -1)) if name == "dbias" else (lambda a: a)
        g64, ref5, bound5 = as5(g.astype(np.float64)), as5(ref), as5(bound)
        with np.errstate(all="ignore"):
            err = np.abs(g64 - ref5)
            ratio = np.where(err == 0, 0.0, err / bound5)
        finite = np.isfinite(g64) & np.isfinite(ref5)
        overflow = bound5 >= acc_max
        special_ok = _non_finite_ok(g64, ref5, bound5, overflow, out_max)
        ratio = np.where(finite, ratio, np.where(special_ok | np.isinf(bound5), 0.0, np.inf))
        ratio = np.where(overflow & np.isfinite(ref5), 0.0, ratio)
        channels_last = ev.spec.channels_last or name != "dx"
        worst = _worst(g64, ref5, ratio, bound5, dtype, channels_last) if ratio.size else None
        results.append((name, g64, ratio, worst))
    max_ratio = max(float(np.nanmax(r)) if r.size else 0.0 for _, _, r, _ in results)
    all_values = np.concatenate([g.ravel() for _, g, _, _ in results])
    zero_fraction = float(np.mean(all_values == 0)) if all_values.size else 0.0
    name, _, ratio, worst = max(results, key=lambda r: float(np.nanmax(r[2])) if r[2].size else 0.0)
    if not max_ratio <= 1:
        bad = ", ".join(f"{n}: {int(np.sum(~(r <= 1)))} of {r.size}" for n, _, r, _ in results
                        if np.any(~(r <= 1)))
        return Verdict(Status.FAIL, max_ratio, zero_fraction, worst,
                       f"elements outside the bound ({bad}); worst in {name}")
    status = _trust(all_values, zero_fraction, ev.spec.activation)
    return Verdict(status, max_ratio, zero_fraction, worst, f"worst in {name}" if worst else "")
