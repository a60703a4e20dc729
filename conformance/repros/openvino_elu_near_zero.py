"""OpenVINO's CPU Elu computes exp(x) - 1 rather than expm1(x): near 0 the digits cancel
(Elu(-1e-6) = -1.0133e-06, 1.3% off; Elu(-2.85e-37) = 0). Needs only numpy and openvino.

    python openvino_elu_near_zero.py
"""

import numpy as np
import openvino as ov
import openvino.opset13 as ops

x = np.array([-1e-6, -2.85e-37, -1e-3], np.float32)
p = ops.parameter([3], ov.Type.f32)
model = ov.Model([ops.elu(p, 1.0).output(0)], [p])
got = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})({0: x})[0]
print("got     ", got)
print("expected", np.expm1(x.astype(np.float64)).astype(np.float32))
