"""TensorFlow on the CPU adds up a bias gradient in the low-precision dtype itself, partial sums
rounded to it, where its convolution accumulates in float32 and rounds once: tf.nn.bias_add's
gradient in bfloat16 (its float16 one is correctly rounded), and the gradient of a broadcast
x + bias (what Keras' Conv3D does) in float16, and in bfloat16 for its channels_first layout.
The bias gradient comes out ulps away from the correctly rounded sum. Needs only numpy and
tensorflow.

    python tensorflow_bias_grad_low_precision.py
"""

import numpy as np
import tensorflow as tf

OPS = {"tf.nn.bias_add": tf.nn.bias_add, "x + bias": lambda x, b: x + b}
rng = np.random.default_rng(0)
for op, add in OPS.items():
    for dtype in (tf.bfloat16, tf.float16):
        worst, differ = 0.0, 0
        for _ in range(20):
            dy = tf.cast(tf.constant(rng.standard_normal((1, 96, 1, 1, 2))), dtype)
            x = tf.cast(tf.constant(rng.standard_normal((1, 96, 1, 1, 2))), dtype)
            bias = tf.cast(tf.constant([0.5, -0.5]), dtype)
            with tf.GradientTape() as tape:
                tape.watch(bias)
                y = add(x, bias)
            dbias = tape.gradient(y, bias, output_gradients=dy).numpy().astype(np.float64)
            exact = np.sum(tf.cast(dy, tf.float64).numpy(), axis=(0, 1, 2, 3))
            rounded = tf.cast(tf.cast(exact, tf.float32), dtype).numpy().astype(np.float64)
            bits = 8 if dtype == tf.bfloat16 else 11  # significand bits
            ulp = 2.0 ** (np.floor(np.log2(np.abs(rounded))) - (bits - 1))
            worst = max(worst, float(np.max(np.abs(dbias - rounded) / ulp)))
            differ += int(np.any(dbias != rounded))
        print(f"{op:15s} {dtype.name:8s}: dbias of 96 positions differs from the correctly rounded "
              f"sum in {differ} of 20 trials, by up to {worst:.0f} ulps")
