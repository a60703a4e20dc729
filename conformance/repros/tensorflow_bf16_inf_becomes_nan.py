"""TensorFlow's bfloat16 Conv3D on the CPU (oneDNN) turns infinite inputs into NaN in outputs whose
exact value is finite or infinite; float32 propagates them correctly. Needs only numpy and
tensorflow.

    python tensorflow_bf16_inf_becomes_nan.py
"""

import numpy as np
import tensorflow as tf

rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 6, 8, 3)).astype(np.float32)  # N D H W C
w = rng.standard_normal((2, 3, 2, 3, 6)).astype(np.float32)  # kD kH kW C F
flat = x.reshape(-1)
flat[rng.choice(flat.size, 22, replace=False)] = np.inf
exact = None
for dtype in (tf.float32, tf.bfloat16):
    y = tf.nn.conv3d(tf.cast(x, dtype), tf.cast(w, dtype), [1, 1, 1, 1, 1], "SAME")
    y = tf.cast(y, tf.float64).numpy()
    if exact is None:
        exact = np.isnan(y)  # float32 rounding cannot create or remove a NaN here
    print(f"{dtype.name:9s} NaN where float32 has none:", int(np.sum(np.isnan(y) & ~exact)))
