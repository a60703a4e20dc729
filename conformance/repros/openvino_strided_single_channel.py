"""OpenVINO's CPU Convolution (f32 precision hint) returns wrong values for one input channel, a
W stride above 1 with a single output column, H stride 1 and a batch of 3: every second output row
is off (3.087 expected, -2.898 returned). Needs only numpy and openvino.

    python openvino_strided_single_channel.py
"""

import numpy as np
import openvino as ov
import openvino.opset13 as ops

rng = np.random.default_rng(0)
x = rng.standard_normal((3, 1, 1, 4, 3)).astype(np.float32)  # N C D H W
w = rng.standard_normal((1, 1, 1, 3, 2)).astype(np.float32)  # O I kD kH kW
strides = [1, 1, 2]
p = ops.parameter(list(x.shape), ov.Type.f32)
conv = ops.convolution(p, ops.constant(w), strides, [0, 0, 0], [0, 0, 0], [1, 1, 1])
compiled = ov.Core().compile_model(
    ov.Model([conv.output(0)], [p]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
)
got = compiled({0: x})[0]
expected = np.zeros(got.shape)
for n, h in np.ndindex(3, 2):  # output (n, 0, 0, h, 0): the window x[n, 0, 0, h:h+3, 0:2]
    expected[n, 0, 0, h, 0] = np.sum(x[n, 0, 0, h : h + 3, 0:2].astype(np.float64) * w[0, 0, 0])
print("got     ", got.ravel())
print("expected", expected.ravel())
print("the same with batch 1, one element at a time:")
for n in range(3):
    p1 = ops.parameter([1, 1, 1, 4, 3], ov.Type.f32)
    c1 = ops.convolution(p1, ops.constant(w), strides, [0, 0, 0], [0, 0, 0], [1, 1, 1])
    one = ov.Core().compile_model(ov.Model([c1.output(0)], [p1]), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    print("  ", one({0: x[n : n + 1]})[0].ravel())
