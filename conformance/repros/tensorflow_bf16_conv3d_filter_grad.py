"""TensorFlow's bfloat16 Conv3D filter gradient on the CPU is wrong: for a 4-tap kernel over 3
input depths ('SAME') it returns [0.26, -1.14, -0.12, 0.61] where float32 and float16 give
[0.079, -0.598, -0.576, 0.607] (the same inputs, rounded to bfloat16, change the exact result by
less than 0.01). Needs only numpy and tensorflow.

    python tensorflow_bf16_conv3d_filter_grad.py
"""

import numpy as np
import tensorflow as tf

rng = np.random.default_rng(0)
x = rng.standard_normal((1, 3, 1, 1, 1)).astype(np.float32)  # N D H W C
w = rng.standard_normal((4, 1, 1, 1, 1)).astype(np.float32)  # kD kH kW C F
dy = rng.standard_normal((1, 3, 1, 1, 1)).astype(np.float32)
for dtype in (tf.float32, tf.float16, tf.bfloat16):
    xt, wt, dyt = (tf.cast(tf.constant(a), dtype) for a in (x, w, dy))
    with tf.GradientTape() as tape:
        tape.watch([xt, wt])
        y = tf.nn.conv3d(xt, wt, [1, 1, 1, 1, 1], "SAME")
    dkernel = tape.gradient(y, wt, output_gradients=dyt)
    print(f"{dtype.name:9s} dkernel", tf.cast(dkernel, tf.float64).numpy().ravel())
