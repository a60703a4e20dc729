"""tinygrad: Tensor.conv2d (N-dimensional) on tinygrad's CPU device.

Bias through conv2d's own `bias`, the activation through tinygrad's Tensor methods (with Keras'
parameters: SELU's full-precision constants, GELU without the tanh approximation), layouts by
Tensor.permute, Keras "same" padding as conv2d's explicit per-side padding. tinygrad compiles a
kernel per shape with a C compiler (clang), so its CPU device needs one: without it the backend
says unavailable. tinygrad is lazy: run() realizes the whole graph, from the input's copy on.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared
from reference.activations import SELU_ALPHA, SELU_SCALE

UNSUPPORTED = ("glu", "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax",
               "squareplus")


def tinygrad_activation(name: str | None):
    """Keras activation `name` as tinygrad Tensor methods (last axis for softmax and log_softmax)."""
    table = {
        None: lambda t: t, "linear": lambda t: t, "relu": lambda t: t.relu(),
        "relu6": lambda t: t.relu6(), "hard_tanh": lambda t: t.hardtanh(),
        "elu": lambda t: t.elu(1.0), "celu": lambda t: t.celu(1.0),
        "selu": lambda t: t.selu(SELU_ALPHA, SELU_SCALE), "leaky_relu": lambda t: t.leaky_relu(0.2),
        "softplus": lambda t: t.softplus(), "softsign": lambda t: t.softsign(),
        "silu": lambda t: t.silu(), "swish": lambda t: t.silu(), "gelu": lambda t: t.gelu("none"),
        "tanh": lambda t: t.tanh(), "tanh_shrink": lambda t: t - t.tanh(), "sigmoid": lambda t: t.sigmoid(),
        "exponential": lambda t: t.exp(), "hard_sigmoid": lambda t: t.hardsigmoid(),
        "hard_silu": lambda t: t.hardswish(), "hard_swish": lambda t: t.hardswish(),
        "mish": lambda t: t.mish(), "log_sigmoid": lambda t: t.logsigmoid(),
        "softmax": lambda t: t.softmax(-1), "log_softmax": lambda t: t.log_softmax(-1),
    }
    return table[name]


@functools.cache
def _compiler() -> str | None:
    return shutil.which("clang")


class Tinygrad(Backend):
    """tinygrad's Tensor.conv2d on its CPU device."""

    name = "tinygrad"
    libraries = ("tinygrad",)
    capabilities = Capabilities(
        dtypes=("float32", "float64"), unsupported_activations=UNSUPPORTED,
        notes=("Tensor.conv2d over 3 spatial dimensions on the CPU device; bias by conv2d, the "
               "activation by Tensor methods", "compiles (clang) and caches a kernel per shape",
               "its thread count is its own (set_threads sets only BLAS)",
               f"no tinygrad form for {', '.join(UNSUPPORTED)}"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("tinygrad") is None:
            return Availability(False, "tinygrad is not installed")
        if _compiler() is None:
            return Availability(False, "tinygrad's CPU device needs clang on PATH "
                                       "(apt-get install clang)")
        return Availability(True)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        from tinygrad import Tensor

        act = tinygrad_activation(spec.activation)
        flat_pads = [p for before_after in reversed(spec.pads) for p in before_after]
        weight = Tensor(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)), device="CPU").realize()
        b = None if bias is None else Tensor(np.ascontiguousarray(bias), device="CPU").realize()
        x = np.ascontiguousarray(x)

        def run():
            t = Tensor(x, device="CPU")
            if spec.channels_last:
                t = t.permute(0, 4, 1, 2, 3)
            y = t.conv2d(weight, b, groups=spec.groups, stride=spec.strides,
                         dilation=spec.dilation_rate, padding=flat_pads)
            if spec.channels_last:
                y = y.permute(0, 2, 3, 4, 1)
            return act(y).realize()

        return Prepared(run=run, to_numpy=lambda y: np.ascontiguousarray(y.numpy()))
