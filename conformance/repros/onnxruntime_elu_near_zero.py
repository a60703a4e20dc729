"""ONNX Runtime's CPU Elu (and Selu, Celu) computes exp(x) - 1 instead of expm1(x): for x near 0
every digit cancels. Needs only numpy, onnx and onnxruntime.

    python onnxruntime_elu_near_zero.py
"""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

x = np.array([-2.7233447e-09, -1e-6, -1e-4], dtype=np.float32)
for op, attrs in (("Elu", {"alpha": 1.0}), ("Celu", {"alpha": 1.0}), ("Selu", {})):
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], op,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x})[0]
    alpha, scale = (1.6732632423543772, 1.0507009873554805) if op == "Selu" else (1.0, 1.0)
    expected = scale * alpha * np.expm1(x.astype(np.float64))
    print(f"{op}: got {got}, expected {expected.astype(np.float32)}, relative error "
          f"{np.abs((got - expected) / expected)}")
