"""TensorFlow's bfloat16 Conv3D on the CPU (oneDNN) returns 0 when the padded kernel is longer than
the input: a 1x1x1 input under a 3x1x2 'SAME' kernel gives 0 where float32 gives x * w (exact in
bfloat16 here). OpenVINO's bfloat16 convolution, also oneDNN, does the same. Needs only numpy and
tensorflow.

    python tensorflow_bf16_kernel_past_input.py
"""

import numpy as np
import tensorflow as tf

x = np.full((1, 1, 1, 1, 1), 3.0, np.float32)  # N D H W C
w = np.zeros((3, 1, 2, 1, 1), np.float32)  # kD kH kW C F: only the tap on the input is nonzero
w[1, 0, 0] = -1.0
for dtype in (tf.float32, tf.bfloat16):
    y = tf.nn.conv3d(tf.cast(x, dtype), tf.cast(w, dtype), [1, 1, 1, 1, 1], "SAME")
    print(f"{dtype.name:9s}", tf.cast(y, tf.float64).numpy().ravel(), "expected [-3.]")
