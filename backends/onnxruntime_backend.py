"""ONNX Runtime: the whole call as one ONNX model run by the CPU execution provider.

The model is Conv (explicit pads from the spec, group, dilations, bias as Conv's B input), the
Transposes a channels_last input and output need, and the activation as ONNX operators, so that
every step of the call is ONNX Runtime's. Its CPU Conv kernel is float32 only. Activations with no
ONNX operator (or no exact composition of a few) are declared unsupported.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared, Unsupported

OPSET = 20  # Gelu
UNSUPPORTED = ("glu", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus")


def _activation_nodes(helper, name: str | None, z: str, y: str) -> list:
    """ONNX nodes computing Keras activation `name` of tensor z into y (on the last axis where it
    has one, as Keras applies it to the output in its own layout)."""
    node = helper.make_node
    if name in (None, "linear"):
        return [node("Identity", [z], [y])]
    single = {"relu": ("Relu", {}), "elu": ("Elu", {"alpha": 1.0}), "celu": ("Celu", {"alpha": 1.0}),
              "selu": ("Selu", {}), "leaky_relu": ("LeakyRelu", {"alpha": 0.2}),
              "softsign": ("Softsign", {}), "softplus": ("Softplus", {}), "tanh": ("Tanh", {}),
              "sigmoid": ("Sigmoid", {}), "exponential": ("Exp", {}), "mish": ("Mish", {}),
              "gelu": ("Gelu", {"approximate": "none"}),
              "hard_sigmoid": ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
              "hard_silu": ("HardSwish", {}), "hard_swish": ("HardSwish", {}),
              "soft_shrink": ("Shrink", {"bias": 0.5, "lambd": 0.5}),
              "hard_shrink": ("Shrink", {"bias": 0.0, "lambd": 0.5}),
              "softmax": ("Softmax", {"axis": -1}), "log_softmax": ("LogSoftmax", {"axis": -1})}
    if name in single:
        op, attrs = single[name]
        return [node(op, [z], [y], **attrs)]
    if name in ("relu6", "hard_tanh"):
        low, high = (0.0, 6.0) if name == "relu6" else (-1.0, 1.0)
        return [node("Constant", [], ["low"], value_float=low),
                node("Constant", [], ["high"], value_float=high), node("Clip", [z, "low", "high"], [y])]
    if name in ("silu", "swish"):
        return [node("Sigmoid", [z], ["s"]), node("Mul", [z, "s"], [y])]
    if name == "tanh_shrink":
        return [node("Tanh", [z], ["t"]), node("Sub", [z, "t"], [y])]
    if name == "log_sigmoid":  # log(sigmoid(z)) = -softplus(-z)
        return [node("Neg", [z], ["n"]), node("Softplus", ["n"], ["p"]), node("Neg", ["p"], [y])]
    raise ValueError(f"no ONNX form for activation {name!r}")


def conv_model(spec, kernel: np.ndarray, bias: np.ndarray | None, input_shape: tuple[int, ...]):
    """The ONNX model (bytes) of the call: input "x" in the spec's layout, output "y"."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node
    nodes, source = [], "x"
    if spec.channels_last:
        nodes.append(node("Transpose", ["x"], ["x_cf"], perm=[0, 4, 1, 2, 3]))
        source = "x_cf"
    (d0, d1), (h0, h1), (w0, w1) = spec.pads
    nodes.append(node("Conv", [source, "w"] + (["b"] if bias is not None else []), ["z_cf"],
                      kernel_shape=list(spec.kernel_size), strides=list(spec.strides),
                      dilations=list(spec.dilation_rate), group=spec.groups, pads=[d0, h0, w0, d1, h1, w1]))
    z = "z_cf"
    if spec.channels_last:
        nodes.append(node("Transpose", ["z_cf"], ["z"], perm=[0, 2, 3, 4, 1]))
        z = "z"
    nodes += _activation_nodes(helper, spec.activation, z, "y")
    weights = [numpy_helper.from_array(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)), "w")]
    if bias is not None:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(bias), "b"))
    graph = helper.make_graph(nodes, "conv3d",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]).SerializeToString()


class OnnxRuntime(Backend):
    """A one-Conv ONNX model on onnxruntime's CPUExecutionProvider."""

    name = "onnxruntime"
    libraries = ("onnxruntime", "onnx")
    capabilities = Capabilities(
        dtypes=("float32",), unsupported_activations=UNSUPPORTED,
        notes=("one ONNX model per call: Transposes for channels_last, Conv, the activation's operators",
               "the CPU execution provider's Conv is float32 only",
               f"no ONNX form for {', '.join(UNSUPPORTED)}"))

    def __init__(self) -> None:
        self.threads = 0  # onnxruntime's default: one per physical core

    def availability(self) -> Availability:
        for module in ("onnxruntime", "onnx"):
            if importlib.util.find_spec(module) is None:
                return Availability(False, f"{module} is not installed")
        return Availability(True)

    def set_threads(self, threads: int) -> None:
        self.threads = threads
        super().set_threads(threads)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        import onnxruntime as ort

        if x.dtype != np.float32:
            raise Unsupported(f"onnxruntime's CPU Conv takes float32; got {x.dtype}")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        session = ort.InferenceSession(conv_model(spec, kernel.astype(np.float32), None if bias is None
                                                  else bias.astype(np.float32), x.shape),
                                       options, providers=["CPUExecutionProvider"])
        feed = {"x": np.ascontiguousarray(x)}
        return Prepared(run=lambda: session.run(["y"], feed)[0], to_numpy=np.ascontiguousarray)
