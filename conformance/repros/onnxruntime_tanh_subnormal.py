"""ONNX Runtime's CPU Tanh is far from correctly rounded on subnormal inputs (tanh(x) = x there):
tanh(-3.3605897e-40) comes back as -3.3618411e-40, 89 ulps off. Needs only numpy, onnx and
onnxruntime.

    python onnxruntime_tanh_subnormal.py
"""

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

x = np.array([-3.3605897e-40, 1e-39, -5e-41], dtype=np.float32)
graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "tanh",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
got = session.run(None, {"x": x})[0]
expected = np.tanh(x.astype(np.float64)).astype(np.float32)  # = x
ulp = np.float32(2.0**-149)
error = np.abs(got.astype(np.float64) - expected) / ulp
print(f"got {got}\nexpected {expected}\nerror in subnormal ulps {error}")
