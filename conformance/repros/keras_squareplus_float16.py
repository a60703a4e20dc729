"""Keras' squareplus, (x + sqrt(x * x + 4)) / 2, evaluated in float16 overflows x * x for
|x| >= 256: squareplus(266.9) is inf instead of 266.9 (the torch, tensorflow and jax backends
compose the same formula). Needs only numpy and keras (any backend).

    python keras_squareplus_float16.py
"""

import keras
import numpy as np

x = np.array([266.9, 300.0, -300.0], np.float16)
got = keras.ops.convert_to_numpy(keras.activations.squareplus(keras.ops.convert_to_tensor(x)))
x64 = x.astype(np.float64)
print("got     ", got)
print("expected", ((x64 + np.sqrt(x64 * x64 + 4)) / 2).astype(np.float16))
