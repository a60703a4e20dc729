"""Keras 3 activations by name, in NumPy, with the error-analysis facts the judge needs.

Each function works in the dtype it is given (the reference calls them in float64). Definitions
follow keras.activations (Keras 3.15): defaults slope 0.2, alpha 1, b 4, threshold 0.5, and the
exact (erf) gelu. Axis activations act on the last axis of the array they receive, as Keras does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + _erf(x / math.sqrt(2))) if x.size else x.copy()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _glu(x: np.ndarray) -> np.ndarray:
    if x.shape[-1] % 2:
        raise ValueError(f"glu splits the last axis in two; its size {x.shape[-1]} is odd")
    a, b = np.split(x, 2, axis=-1)
    return a * _sigmoid(b)


def _sparsemax(x: np.ndarray) -> np.ndarray:
    z = np.sort(x, axis=-1)[..., ::-1]
    k = np.arange(1, x.shape[-1] + 1, dtype=x.dtype)
    cumsum = np.cumsum(z, axis=-1)
    support = 1 + k * z > cumsum
    k_z = np.maximum(np.sum(support, axis=-1, keepdims=True), 1)  # the largest is always in
    tau = (np.take_along_axis(cumsum, k_z - 1, axis=-1) - 1) / k_z.astype(x.dtype)
    return np.maximum(x - tau, 0)


@dataclass(frozen=True)
class ActivationInfo:
    """How an activation enters the error bound.

    lipschitz: global Lipschitz constant (inf where there is none, e.g. exponential);
    monotone: non-decreasing, so endpoint evaluation bounds the propagated error;
    exact_ops: computed by exact operations in any float format (relu, clip, ...);
    axis: acts on the whole last axis (softmax family), not per element.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    lipschitz: float
    monotone: bool
    exact_ops: bool = False
    axis: bool = False


_I = ActivationInfo
ACTIVATIONS: dict[str, ActivationInfo] = {
    "linear": _I(lambda x: x.copy(), 1, True, exact_ops=True),
    "relu": _I(lambda x: np.maximum(x, 0), 1, True, exact_ops=True),
    "relu6": _I(_relu6, 1, True, exact_ops=True),
    "hard_tanh": _I(lambda x: np.clip(x, -1, 1), 1, True, exact_ops=True),
    "leaky_relu": _I(lambda x: np.where(x >= 0, x, 0.2 * x), 1, True),
    "elu": _I(_elu, 1, True),
    "celu": _I(_elu, 1, True),
    "selu": _I(lambda x: SELU_SCALE * _elu(x, SELU_ALPHA), SELU_SCALE * SELU_ALPHA, True),
    "softplus": _I(_softplus, 1, True),
    "softsign": _I(lambda x: x / (1 + np.abs(x)), 1, True),
    "squareplus": _I(lambda x: (x + np.sqrt(x * x + 4)) / 2, 1, True),
    "soft_shrink": _I(lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0.0)),
                      1, True),
    "hard_shrink": _I(lambda x: np.where(np.abs(x) > 0.5, x, 0.0), math.inf, True),
    "sparse_plus": _I(lambda x: np.where(x <= -1, 0.0, np.where(x >= 1, x, (x + 1) ** 2 / 4)),
                      1, True),
    "silu": _I(lambda x: x * _sigmoid(x), 1.1, False),
    "swish": _I(lambda x: x * _sigmoid(x), 1.1, False),
    "gelu": _I(_gelu, 1.13, False),
    "tanh": _I(np.tanh, 1, True),
    "tanh_shrink": _I(lambda x: x - np.tanh(x), 1, True),
    "sigmoid": _I(_sigmoid, 0.25, True),
    "sparse_sigmoid": _I(lambda x: np.clip((x + 1) / 2, 0, 1), 0.5, True),
    "exponential": _I(np.exp, math.inf, True),
    "hard_sigmoid": _I(lambda x: _relu6(x + 3) / 6, 1 / 6, True),
    "hard_silu": _I(lambda x: x * _relu6(x + 3) / 6, 1.5, False),
    "hard_swish": _I(lambda x: x * _relu6(x + 3) / 6, 1.5, False),
    "mish": _I(lambda x: x * np.tanh(_softplus(x)), 1.1, False),
    "log_sigmoid": _I(lambda x: -_softplus(-x), 1, True),
    "softmax": _I(_softmax, 2, False, axis=True),
    "log_softmax": _I(_log_softmax, 2, False, axis=True),
    "glu": _I(_glu, math.inf, False, axis=True),
    "sparsemax": _I(_sparsemax, math.inf, False, axis=True),
}


def apply_activation(z: np.ndarray, activation: str | Callable | None) -> np.ndarray:
    """act(z) with Keras semantics: None means linear, a name is looked up, a callable is used."""
    if activation is None:
        return z
    with np.errstate(all="ignore"):  # inf and NaN inputs are legitimate here
        if callable(activation):
            return np.asarray(activation(z), dtype=z.dtype)
        return ACTIVATIONS[activation].fn(z)
