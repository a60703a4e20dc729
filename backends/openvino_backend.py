"""OpenVINO: the whole call as one OpenVINO model compiled for the CPU plugin.

The model is Convolution or GroupConvolution (explicit pads from the spec), an Add of the bias,
the Transposes a channels_last input and output need, and the activation as OpenVINO operations,
so every step of the call is OpenVINO's. Activations with no OpenVINO operation (or no exact
composition of a few) are declared unsupported.

Two backends: `openvino` compiles with INFERENCE_PRECISION_HINT f32; `openvino-default` keeps the
plugin's default hint, which on CPUs with AMX or AVX512-BF16 is bfloat16 (inputs and each op's
result rounded to bfloat16, sums in float32): it declares whatever hint the plugin reports.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import replace

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared, Unsupported

UNSUPPORTED = ("glu", "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid", "sparsemax",
               "squareplus")
HINT_PRECISION = {"f32": "float32", "bf16": "bfloat16-float32"}


def _activation(ops, name: str | None, z):
    """Keras activation `name` of node z in OpenVINO operations (on the last axis where it has one,
    as Keras applies it to the output in its own layout)."""
    if name in (None, "linear"):
        return z
    simple = {"relu": ops.relu, "tanh": ops.tanh, "sigmoid": ops.sigmoid, "exponential": ops.exp,
              "softplus": ops.softplus, "softsign": ops.softsign, "mish": ops.mish,
              "hard_sigmoid": ops.hsigmoid, "hard_silu": ops.hswish, "hard_swish": ops.hswish,
              "silu": ops.swish, "swish": ops.swish}
    if name in simple:
        return simple[name](z)
    if name in ("elu", "celu"):
        return ops.elu(z, 1.0)
    if name == "selu":
        return ops.selu(z, ops.constant(np.float32(1.6732632423543772)),
                        ops.constant(np.float32(1.0507009873554805)))
    if name == "leaky_relu":
        return ops.prelu(z, ops.constant(np.float32(0.2)))
    if name == "relu6":
        return ops.clamp(z, 0.0, 6.0)
    if name == "hard_tanh":
        return ops.clamp(z, -1.0, 1.0)
    if name == "gelu":
        return ops.gelu(z, "erf")
    if name == "tanh_shrink":
        return ops.subtract(z, ops.tanh(z))
    if name == "log_sigmoid":  # log(sigmoid(z)) = -softplus(-z)
        return ops.negative(ops.softplus(ops.negative(z)))
    if name == "softmax":
        return ops.softmax(z, -1)
    if name == "log_softmax":
        return ops.log_softmax(z, -1)
    raise ValueError(f"no OpenVINO form for activation {name!r}")


def conv_model(spec, kernel: np.ndarray, bias: np.ndarray | None, input_shape: tuple[int, ...]):
    """The ov.Model of the call: one float32 input in the spec's layout, one output."""
    import openvino as ov
    import openvino.opset13 as ops

    x = ops.parameter(list(input_shape), ov.Type.f32, name="x")
    node = ops.transpose(x, ops.constant(np.array([0, 4, 1, 2, 3], np.int64))) if spec.channels_last else x
    weights = kernel.transpose(4, 3, 0, 1, 2)  # (F, C/groups, kd, kh, kw)
    begin, end = [p[0] for p in spec.pads], [p[1] for p in spec.pads]
    args = (list(spec.strides), begin, end, list(spec.dilation_rate))
    if spec.groups == 1:
        node = ops.convolution(node, ops.constant(np.ascontiguousarray(weights)), *args)
    else:
        grouped = weights.reshape(spec.groups, spec.filters // spec.groups, *weights.shape[1:])
        node = ops.group_convolution(node, ops.constant(np.ascontiguousarray(grouped)), *args)
    if bias is not None:
        node = ops.add(node, ops.constant(np.ascontiguousarray(bias).reshape(1, -1, 1, 1, 1)))
    if spec.channels_last:
        node = ops.transpose(node, ops.constant(np.array([0, 2, 3, 4, 1], np.int64)))
    return ov.Model([_activation(ops, spec.activation, node).output(0)], [x], "conv3d")


class OpenVino(Backend):
    """An OpenVINO model on the CPU plugin, computing in float32 (INFERENCE_PRECISION_HINT f32)."""

    name = "openvino"
    libraries = ("openvino",)
    hint: str | None = "f32"
    base_capabilities = Capabilities(
        dtypes=("float32",), unsupported_activations=UNSUPPORTED, flushes_subnormals=True,
        notes=("one OpenVINO model per call: Transposes for channels_last, (Group)Convolution, Add, "
               "the activation's operations",
               "float32 inputs only (the model's parameter is f32)",
               "oneDNN's JIT convolution kernels flush subnormals",
               f"no OpenVINO form for {', '.join(UNSUPPORTED)}"))

    def __init__(self) -> None:
        self.threads = 0  # the plugin's default: every core

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        return self.base_capabilities

    def availability(self) -> Availability:
        if importlib.util.find_spec("openvino") is None:
            return Availability(False, "openvino is not installed")
        return Availability(True)

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        super().set_threads(threads)

    def _config(self) -> dict:
        config = {"INFERENCE_NUM_THREADS": self.threads} if self.threads else {}
        return config | ({"INFERENCE_PRECISION_HINT": self.hint} if self.hint else {})

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        import openvino as ov

        if x.dtype != np.float32:
            raise Unsupported(f"this OpenVINO model takes float32; got {x.dtype}")
        model = conv_model(spec, kernel.astype(np.float32),
                           None if bias is None else bias.astype(np.float32), x.shape)
        request = ov.Core().compile_model(model, "CPU", self._config()).create_infer_request()
        x = np.ascontiguousarray(x)

        def run():
            request.infer({0: x}, share_inputs=True)
            return request.get_output_tensor(0).data

        return Prepared(run=run, to_numpy=lambda y: np.array(y, copy=True))


class OpenVinoDefault(OpenVino):
    """The same model under the CPU plugin's default precision hint, declared as the plugin
    reports it (bfloat16 on CPUs with AMX or AVX512-BF16, float32 elsewhere)."""

    name = "openvino-default"
    hint = None

    @functools.cached_property
    def capabilities(self) -> Capabilities:
        hint = default_hint() if self.availability().ok else "f32"
        precision = HINT_PRECISION.get(hint)
        if precision is None:
            raise RuntimeError(f"the CPU plugin defaults to {hint!r}, which this backend cannot declare")
        return replace(self.base_capabilities, compute_precision={"float32": precision},
                       notes=self.base_capabilities.notes
                       + (f"the CPU plugin's default INFERENCE_PRECISION_HINT here: {hint}",))


@functools.cache
def default_hint() -> str:
    """The CPU plugin's default INFERENCE_PRECISION_HINT on this machine ("f32", "bf16", ...)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
