"""The layer around the operation (SPEC.md, "The layer around the operation"), as float64 code.

What keras.layers.Conv3D adds to the convolution, from the Keras 3 sources (keras/src/initializers,
regularizers, constraints, layers/layer.py, optimizers/sgd.py), written here independently:
- initializers: the variance-scaling family draws from a law fixed by the kernel's fans;
- regularizers: losses on the kernel, the bias and (divided by the batch size) the output;
- constraints: projections applied after each optimizer update;
- one SGD step of mean squared error (the gradients themselves come from reference.conv3d_grad).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPSILON = float(np.float32(1e-7))  # keras.backend.epsilon(), as the float32 constant it becomes
TRUNCATION = 0.87962566103423978  # stddev of a standard normal truncated to [-2, 2]


def fans(kernel_shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a Conv3D kernel (kd, kh, kw, C/groups, F): the receptive field
    times C/groups, and times F."""
    field = math.prod(kernel_shape[:-2])
    return field * kernel_shape[-2], field * kernel_shape[-1]


@dataclass(frozen=True)
class Law:
    """A distribution: "uniform" on [-scale, scale], or "truncated_normal" with stddev `scale`
    cut at two standard deviations."""

    distribution: str
    scale: float

    @property
    def support(self) -> float:
        """The largest |value| the law can give."""
        return self.scale if self.distribution == "uniform" else 2 * self.scale


# name -> (scale, mode, distribution) of keras.initializers.VarianceScaling
VARIANCE_SCALING = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def initializer_law(name: str, kernel_shape: tuple[int, ...]) -> Law:
    """The law a named variance-scaling initializer draws a kernel of `kernel_shape` from."""
    scale, mode, distribution = VARIANCE_SCALING[name]
    fan_in, fan_out = fans(kernel_shape)
    scale /= max(1.0, {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode])
    if distribution == "uniform":
        return Law("uniform", math.sqrt(3.0 * scale))
    return Law("truncated_normal", math.sqrt(scale) / TRUNCATION)


def regularization(w: np.ndarray, l1: float = 0.0, l2: float = 0.0) -> float:
    """keras.regularizers.L1L2(l1, l2)(w) = l1 * sum|w| + l2 * sum(w^2) (L1 and L2 are its cases)."""
    w = np.asarray(w, np.float64)
    return l1 * float(np.abs(w).sum()) + l2 * float(np.square(w).sum())


def activity_loss(y: np.ndarray, l1: float = 0.0, l2: float = 0.0) -> float:
    """The loss an activity regularizer adds for output y: its value divided by the batch size."""
    return regularization(y, l1, l2) / y.shape[0]


def _norms(w: np.ndarray, axis) -> np.ndarray:
    return np.sqrt(np.square(w).sum(axis=axis, keepdims=True))


# each constraint's keyword defaults, as keras.constraints defines them
CONSTRAINT_DEFAULTS = {"MaxNorm": dict(max_value=2.0, axis=0),
                       "MinMaxNorm": dict(min_value=0.0, max_value=1.0, rate=1.0, axis=0),
                       "UnitNorm": dict(axis=0), "NonNeg": {}}


def constrain(name: str, w: np.ndarray, **config) -> np.ndarray:
    """keras.constraints.<name>(**config)(w) for MaxNorm, MinMaxNorm, UnitNorm and NonNeg."""
    if name not in CONSTRAINT_DEFAULTS:
        raise ValueError(f"unknown constraint {name!r}; known: {', '.join(CONSTRAINT_DEFAULTS)}")
    c = CONSTRAINT_DEFAULTS[name] | config
    w = np.asarray(w, np.float64)
    if name == "NonNeg":
        return np.maximum(w, 0.0)
    norms = _norms(w, tuple(c["axis"]) if isinstance(c["axis"], (list, tuple)) else c["axis"])
    if name == "UnitNorm":
        return w / (EPSILON + norms)
    if name == "MaxNorm":
        desired = np.clip(norms, 0.0, c["max_value"])
    else:
        desired = c["rate"] * np.clip(norms, c["min_value"], c["max_value"]) + (1 - c["rate"]) * norms
    return w * (desired / (EPSILON + norms))


def sgd_step(w: np.ndarray, grad: np.ndarray, learning_rate: float) -> np.ndarray:
    """Plain SGD (no momentum): w - learning_rate * grad."""
    return np.asarray(w, np.float64) - learning_rate * np.asarray(grad, np.float64)


def mse_cotangent(y: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d/dy of keras' mean squared error with its default reduction (the mean over the last axis,
    then over every other element): 2 (y - target) / y.size."""
    return 2.0 * (np.asarray(y, np.float64) - np.asarray(target, np.float64)) / y.size
