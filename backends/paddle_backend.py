"""PaddlePaddle: paddle.nn.functional.conv3d on the CPU.

channels_last runs in Paddle's own NDHWC data format, Keras "same" padding is conv3d's explicit
per-side padding, bias through conv3d's `bias`, the activation through paddle.nn.functional
(with Keras' parameters: hard_sigmoid's slope exactly 1/6, GELU without the tanh approximation).
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared

UNSUPPORTED = ("sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus")


def _paddle():
    """paddle, imported without its warning about a missing ccache (it compiles nothing here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import paddle
    return paddle


def paddle_activation(name: str | None, F):
    """Keras activation `name` in paddle.nn.functional (last axis for the axis activations)."""
    table = {
        None: lambda t: t, "linear": lambda t: t, "relu": F.relu, "relu6": F.relu6,
        "hard_tanh": F.hardtanh, "elu": F.elu, "celu": F.celu, "selu": F.selu,
        "leaky_relu": lambda t: F.leaky_relu(t, 0.2), "softplus": F.softplus, "softsign": F.softsign,
        "soft_shrink": lambda t: F.softshrink(t, 0.5), "hard_shrink": lambda t: F.hardshrink(t, 0.5),
        "silu": F.silu, "swish": F.silu, "gelu": lambda t: F.gelu(t, approximate=False),
        "tanh": F.tanh, "tanh_shrink": F.tanhshrink, "sigmoid": F.sigmoid,
        "exponential": lambda t: t.exp(), "hard_sigmoid": lambda t: F.hardsigmoid(t, 1.0 / 6.0, 0.5),
        "hard_silu": F.hardswish, "hard_swish": F.hardswish, "mish": F.mish,
        "log_sigmoid": F.log_sigmoid, "softmax": lambda t: F.softmax(t, -1),
        "log_softmax": lambda t: F.log_softmax(t, -1), "glu": lambda t: F.glu(t, -1),
    }
    return table[name]


class Paddle(Backend):
    """paddle.nn.functional.conv3d on the CPU."""

    name = "paddle"
    libraries = ("paddle",)
    capabilities = Capabilities(
        dtypes=("float32", "float64"), unsupported_activations=UNSUPPORTED,
        notes=("channels_last in Paddle's NDHWC data format", "bias by conv3d, the activation by "
               "paddle.nn.functional", f"no Paddle form for {', '.join(UNSUPPORTED)}"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("paddle") is None:
            return Availability(False, "paddlepaddle is not installed")
        return Availability(True)

    def versions(self) -> dict[str, str]:
        return {"paddlepaddle": _paddle().__version__}

    def set_threads(self, threads: int) -> None:
        _paddle().base.core.set_num_threads(threads)
        super().set_threads(threads)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        paddle = _paddle()
        paddle.set_device("cpu")
        F = paddle.nn.functional
        act = paddle_activation(spec.activation, F)
        spatial = [list(p) for p in spec.pads]
        padding = [[0, 0]] + spatial + [[0, 0]] if spec.channels_last else [[0, 0], [0, 0]] + spatial
        layout = "NDHWC" if spec.channels_last else "NCDHW"
        weight = paddle.to_tensor(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
        b = None if bias is None else paddle.to_tensor(np.ascontiguousarray(bias))
        xt = paddle.to_tensor(np.ascontiguousarray(x))

        def run():
            with paddle.no_grad():
                y = F.conv3d(xt, weight, b, stride=list(spec.strides), padding=padding,
                             dilation=list(spec.dilation_rate), groups=spec.groups, data_format=layout)
                return act(y)

        return Prepared(run=run, to_numpy=lambda y: np.ascontiguousarray(y.numpy()))
