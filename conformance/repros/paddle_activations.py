"""PaddlePaddle's CPU activations, against their exact values: softmax clips x - max(x) at -64, so
an output that underflows to 0 comes back as exp(-64) = 1.6e-28 (and log_softmax as -64); in
float64, selu and hardsigmoid use float32 copies of their constants; elu is exp(x) - 1, not
expm1(x) (elu(-1e-6) 1.3% off, elu(-2.7e-9) = 0) (selu(-0.18) and
hardsigmoid(-0.1) about 1e-9 off). Needs only numpy and paddlepaddle.

    python paddle_activations.py
"""

import math
import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import paddle

F = paddle.nn.functional
z = np.array([[0.0, 1000.0]], np.float32)
print("softmax    ", F.softmax(paddle.to_tensor(z), -1).numpy(), "expected [[0, 1]]")
print("log_softmax", F.log_softmax(paddle.to_tensor(z), -1).numpy(), "expected [[-1000, 0]]")
x = np.array([-0.18, -0.1], np.float64)
alpha, scale = 1.6732632423543772, 1.0507009873554805
selu = [scale * (alpha * math.expm1(v) if v < 0 else v) for v in x]
print("selu float64       ", F.selu(paddle.to_tensor(x)).numpy(), "expected", np.array(selu))
print("hardsigmoid float64", F.hardsigmoid(paddle.to_tensor(x), 1 / 6, 0.5).numpy(), "expected", x / 6 + 0.5)
with np.printoptions(precision=17):
    print("selu error         ", F.selu(paddle.to_tensor(x)).numpy() - np.array(selu))
    print("hardsigmoid error  ", F.hardsigmoid(paddle.to_tensor(x), 1 / 6, 0.5).numpy() - (x / 6 + 0.5))
e = np.array([-1e-6, -2.7e-9], np.float32)
print("elu        ", F.elu(paddle.to_tensor(e)).numpy(), "expected", np.expm1(e.astype(np.float64)))
