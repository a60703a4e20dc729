"""OpenVINO's CPU Convolution under the default precision hint (bfloat16 on CPUs with AMX or
AVX512-BF16) returns all zeros when the padded kernel is longer than the input along D and W
(D = W = 1, kernel 4x1x3, pads (1, 0, 1) / (2, 0, 1)); the f32 hint gives the right sums. The
integers here are exact in bfloat16, so no rounding explains it. Needs only numpy and openvino.

    python openvino_bf16_kernel_past_input.py
"""

import numpy as np
import openvino as ov
import openvino.opset13 as ops

x = np.array([2, 2, 1, -1, 1, -1, -2, 1], np.float32).reshape(1, 1, 1, 8, 1)  # N C D H W
w = np.ones((1, 1, 4, 1, 3), np.float32)  # O I kD kH kW: sums of neighbours, exact in bfloat16
core = ov.Core()
print("default hint on this CPU:", core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
for hint in ("bf16", "f32"):
    p = ops.parameter(list(x.shape), ov.Type.f32)
    conv = ops.convolution(p, ops.constant(w), [1, 1, 1], [1, 0, 1], [2, 0, 1], [1, 1, 1])
    got = core.compile_model(ov.Model([conv.output(0)], [p]), "CPU", {"INFERENCE_PRECISION_HINT": hint})(
        {0: x}
    )[0]
    print(hint, got.ravel())
print("expected", x.ravel())  # only the centre taps touch the input: y = x
