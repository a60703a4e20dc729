"""tinygrad's Tensor.tanh loses every digit near 0 (it computes 2 * sigmoid(2x) - 1): tanh(1e-6) is
7% off and tanh of a subnormal is 0; elu, celu and selu compute exp(x) - 1 (elu(-1e-4) is 1.7e-4
relative off); in float64, gelu's erf is only float32-accurate; relu6, hardsigmoid and hardswish
are differences of two relus, which cancel for large inputs (relu6(1e8) = 8, relu6(1e30) = 0,
hardswish(1e8) = 0). Needs only numpy and tinygrad
(and a C compiler for its CPU device).

    python tinygrad_activations.py
"""

import math

import numpy as np
from tinygrad import Tensor

x = np.array([1e-6, -1e-4, 1e-39], np.float32)
print("tanh got     ", Tensor(x).tanh().numpy(), "\ntanh expected", np.tanh(x.astype(np.float64)))
print(
    "elu  got     ",
    Tensor(x).elu().numpy(),
    "\nelu  expected",
    np.expm1(np.minimum(x, 0).astype(np.float64)) + np.maximum(x, 0),
)
v = np.array([-0.31, 0.5], np.float64)
print("gelu float64 got     ", Tensor(v).gelu("none").numpy())
print("gelu float64 expected", [t * 0.5 * (1 + math.erf(t / math.sqrt(2))) for t in v])
big = np.array([1e8, 1e30], np.float32)
for name, expected in (("relu6", [6, 6]), ("hardsigmoid", [1, 1]), ("hardswish", big)):
    print(
        f"{name}({big}) got",
        getattr(Tensor(big), name)().numpy(),
        "expected",
        np.asarray(expected, np.float32),
    )
