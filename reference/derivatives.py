"""Derivatives of the Keras activations (SPEC.md "Gradients"), for the backward reference and
for the judge's bound on dz = dy * act'(z) (VERIFICATION.md §7).

An elementwise activation's derivative is described piecewise: `d1` gives the value the reference
uses (at a kink, the one TensorFlow, PyTorch and JAX use); `kinks` lists the points where the
derivative jumps, with its left and right limits (any value between them is a correct
subgradient; at hard_shrink's jumps either limit is); between kinks the derivative is either
monotone (`curvature` 0: its values at an interval's ends bound it) or Lipschitz with constant
`curvature` (a bound on |act''| there, derived in the comment beside it).

`derivative_range(name, lo, hi)` bounds act' over [lo, hi] elementwise from these facts.
Axis activations (softmax family) are handled by `vjp`, their bound by the judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference.activations import ACTIVATIONS, SELU_ALPHA, SELU_SCALE

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _step(x: np.ndarray, at: float, below: float, above: float) -> np.ndarray:
    return np.where(x > at, above, below)


def _box(x: np.ndarray, lo: float, hi: float, inside: float) -> np.ndarray:
    """inside on the open interval (lo, hi), 0 elsewhere (the frameworks' value at the kinks)."""
    return np.where((x > lo) & (x < hi), inside, 0.0)


def _gelu_d1(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _mish_d1(x: np.ndarray) -> np.ndarray:
    sp = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    t = np.tanh(sp)
    return t + x * (1 - t * t) * _sigmoid(x)


def _hard_silu_d1(x: np.ndarray) -> np.ndarray:
    return np.where(x <= -3, 0.0, np.where(x >= 3, 1.0, (2 * x + 3) / 6))


@dataclass(frozen=True)
class Derivative:
    d1: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[tuple[float, float, float], ...] = ()  # (point, left limit, right limit)
    curvature: float = 0.0  # sup |act''| between kinks; 0: act' is monotone between kinks


_D = Derivative
_SIG = 0.09623  # sup |s(1-s)(1-2s)| = 1/(6*sqrt(3)) = 0.096225
DERIVATIVES: dict[str, Derivative] = {
    "linear": _D(lambda x: np.ones_like(x)),
    "relu": _D(lambda x: _step(x, 0, 0.0, 1.0), ((0.0, 0.0, 1.0),)),
    "relu6": _D(lambda x: _box(x, 0, 6, 1.0), ((0.0, 0.0, 1.0), (6.0, 1.0, 0.0))),
    "hard_tanh": _D(lambda x: _box(x, -1, 1, 1.0), ((-1.0, 0.0, 1.0), (1.0, 1.0, 0.0))),
    "leaky_relu": _D(lambda x: _step(x, 0, 0.2, 1.0), ((0.0, 0.2, 1.0),)),
    # elu, celu (alpha 1): exp(x) below 0, 1 above: continuous and non-decreasing
    "elu": _D(lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "celu": _D(lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    "selu": _D(lambda x: np.where(x > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0))),
               ((0.0, SELU_SCALE * SELU_ALPHA, SELU_SCALE),)),
    "softplus": _D(_sigmoid),  # sigmoid: increasing
    # 1/(1+|x|)^2: increasing below 0, decreasing above (0 is a turning point, not a kink)
    "softsign": _D(lambda x: 1 / (1 + np.abs(x)) ** 2, ((0.0, 1.0, 1.0),)),
    "squareplus": _D(lambda x: (1 + x / np.sqrt(x * x + 4)) / 2),  # increasing
    "soft_shrink": _D(lambda x: np.where(np.abs(x) > 0.5, 1.0, 0.0), ((-0.5, 1.0, 0.0), (0.5, 0.0, 1.0))),
    "hard_shrink": _D(lambda x: np.where(np.abs(x) > 0.5, 1.0, 0.0), ((-0.5, 1.0, 0.0), (0.5, 0.0, 1.0))),
    "sparse_plus": _D(lambda x: np.clip((x + 1) / 2, 0, 1)),  # continuous, non-decreasing
    # silu'' = s(1-s)(2 + x(1-2s)), largest in magnitude at 0: 0.5
    "silu": _D(lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))), curvature=0.5),
    "swish": _D(lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))), curvature=0.5),
    # gelu'' = phi(x) (2 - x^2), largest at 0: 2/sqrt(2 pi) = 0.7979
    "gelu": _D(_gelu_d1, curvature=0.7979),
    # tanh'' = -2 tanh (1 - tanh^2), at most 4/(3 sqrt 3) = 0.7698
    "tanh": _D(lambda x: 1 - np.tanh(x) ** 2, curvature=0.7699),
    "tanh_shrink": _D(lambda x: np.tanh(x) ** 2, curvature=0.7699),
    "sigmoid": _D(lambda x: _sigmoid(x) * (1 - _sigmoid(x)), curvature=_SIG),
    "sparse_sigmoid": _D(lambda x: _box(x, -1, 1, 0.5), ((-1.0, 0.0, 0.5), (1.0, 0.5, 0.0))),
    "exponential": _D(np.exp),  # increasing
    "hard_sigmoid": _D(lambda x: _box(x, -3, 3, 1 / 6), ((-3.0, 0.0, 1 / 6), (3.0, 1 / 6, 0.0))),
    "hard_silu": _D(_hard_silu_d1, ((-3.0, 0.0, -0.5), (3.0, 1.5, 1.0))),  # linear between
    "hard_swish": _D(_hard_silu_d1, ((-3.0, 0.0, -0.5), (3.0, 1.5, 1.0))),
    # mish'': |mish''| < 0.65 everywhere (its extremum 0.6 lies near x = -0.3; the tails decay
    # like x e^x and e^-2x)
    "mish": _D(_mish_d1, curvature=0.65),
    "log_sigmoid": _D(lambda x: _sigmoid(-x)),  # decreasing
}


def elementwise_dz(name: str | None, z: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dy * act'(z) in float64 (None and linear: dy itself)."""
    if name in (None, "linear"):
        return dy.copy()
    with np.errstate(all="ignore"):
        return dy * DERIVATIVES[name].d1(z)


def derivative_range(name: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise bounds (low, high) on act'(t) over every t in [lo, hi], kinks' limits included."""
    info = DERIVATIVES[name]
    with np.errstate(all="ignore"):
        a, b = info.d1(lo), info.d1(hi)
        low, high = np.minimum(a, b), np.maximum(a, b)
        for point, left, right in info.kinks:
            inside = (lo <= point) & (point <= hi)
            low = np.where(inside, np.minimum(low, min(left, right)), low)
            high = np.where(inside, np.maximum(high, max(left, right)), high)
        spread = info.curvature * (hi - lo) / 2
    return low - spread, high + spread


def vjp(name: str | None, z: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """The cotangent of the pre-activation, dz, for y = act(z) and cotangent dy (float64).
    Axis activations act on the last axis, as in the forward pass."""
    if name is None or not ACTIVATIONS[name].axis:
        return elementwise_dz(name, z, dy)
    with np.errstate(all="ignore"):
        if name == "softmax":
            s = ACTIVATIONS["softmax"].fn(z)
            return s * (dy - np.sum(dy * s, axis=-1, keepdims=True))
        if name == "log_softmax":
            return dy - ACTIVATIONS["softmax"].fn(z) * np.sum(dy, axis=-1, keepdims=True)
        if name == "glu":  # y = a * sigmoid(b) has half of z's last axis: so has dy
            a, b = np.split(z, 2, axis=-1)
            s = _sigmoid(b)
            return np.concatenate([dy * s, dy * a * s * (1 - s)], axis=-1)
        if name == "sparsemax":  # on the support S: dy - mean_S(dy); 0 off it
            support = ACTIVATIONS["sparsemax"].fn(z) > 0
            mean = np.sum(dy * support, axis=-1, keepdims=True) / np.sum(support, axis=-1, keepdims=True)
            return np.where(support, dy - mean, 0.0)
    raise ValueError(f"no vector-Jacobian product for activation {name!r}")
