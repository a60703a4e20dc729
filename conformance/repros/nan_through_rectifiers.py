"""NaN does not survive the rectifiers of three libraries: OpenVINO's Relu and Clamp (relu6,
hard_tanh), PaddlePaddle's relu, and tinygrad's relu, relu6, hardsigmoid and elu all return a
number for NaN, where Keras (and IEEE max/min with a NaN operand propagated) gives NaN. Needs numpy
and whichever of openvino, paddlepaddle, tinygrad is installed.

    python nan_through_rectifiers.py
"""

import importlib.util

import numpy as np

x = np.array([np.nan, -1.0, 1.0], np.float32)
print("input", x)
if importlib.util.find_spec("openvino"):
    import openvino as ov
    import openvino.opset13 as ops

    for name, op in (("Relu", ops.relu), ("Clamp(0, 6)", lambda p: ops.clamp(p, 0.0, 6.0))):
        p = ops.parameter([3], ov.Type.f32)
        compiled = ov.Core().compile_model(
            ov.Model([op(p).output(0)], [p]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
        )
        print("openvino", name, compiled({0: x})[0])
if importlib.util.find_spec("paddle"):
    import paddle

    print("paddle relu", paddle.nn.functional.relu(paddle.to_tensor(x)).numpy())
if importlib.util.find_spec("tinygrad"):
    from tinygrad import Tensor

    for name in ("relu", "relu6", "hardsigmoid", "elu"):
        print("tinygrad", name, getattr(Tensor(x), name)().numpy())
