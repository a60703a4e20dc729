"""TensorFlow backend: tf.nn.convolution with TF's own NDHWC/NCDHW layouts and SAME/VALID padding
(TF's "SAME" is Keras' rule, odd cell after). Grouped convolution has no TF CPU kernel, so it runs
through XLA (jit_compile), as Keras does; TF32 is switched off for float32 on GPUs."""

from __future__ import annotations

import importlib.util

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared


def tf_activation(name: str | None, tf):
    """Keras activation `name` in TensorFlow ops."""
    if name is None or name == "linear":
        return lambda x: x

    def sparsemax(x):
        z = tf.sort(x, axis=-1, direction="DESCENDING")
        k = tf.cast(tf.range(1, tf.shape(x)[-1] + 1), x.dtype)
        cumsum = tf.cumsum(z, axis=-1)
        k_z = tf.maximum(tf.reduce_sum(tf.cast(1 + k * z > cumsum, tf.int32), axis=-1, keepdims=True), 1)
        tau = (tf.gather(cumsum, k_z - 1, batch_dims=len(x.shape) - 1) - 1) / tf.cast(k_z, x.dtype)
        return tf.maximum(x - tau, 0)

    def glu(x):
        a, b = tf.split(x, 2, axis=-1)
        return a * tf.sigmoid(b)

    elu = tf.nn.elu
    table = {
        "relu": tf.nn.relu, "relu6": tf.nn.relu6, "elu": elu, "celu": elu, "selu": tf.nn.selu,
        # tf.nn.leaky_relu keeps alpha as a float32 attribute: 0.2f is 1.5e-8 off in float64
        "leaky_relu": lambda x: tf.where(x >= 0, x, tf.constant(0.2, x.dtype) * x),
        "softsign": tf.nn.softsign,
        "softplus": tf.nn.softplus, "squareplus": lambda x: (x + tf.sqrt(x * x + 4)) / 2,
        "soft_shrink": lambda x: tf.where(x > 0.5, x - 0.5, tf.where(x < -0.5, x + 0.5, tf.zeros_like(x))),
        "hard_shrink": lambda x: tf.where(tf.abs(x) > 0.5, x, tf.zeros_like(x)),
        "sparse_plus": lambda x: tf.where(x <= -1, tf.zeros_like(x), tf.where(x >= 1, x, (x + 1) ** 2 / 4)),
        "silu": tf.nn.silu, "swish": tf.nn.silu, "gelu": lambda x: tf.nn.gelu(x, approximate=False),
        "tanh": tf.tanh, "tanh_shrink": lambda x: x - tf.tanh(x), "sigmoid": tf.sigmoid,
        "sparse_sigmoid": lambda x: tf.clip_by_value((x + 1) / 2, 0, 1), "exponential": tf.exp,
        "hard_sigmoid": lambda x: tf.nn.relu6(x + 3) / 6,
        "hard_silu": lambda x: x * tf.nn.relu6(x + 3) / 6, "hard_swish": lambda x: x * tf.nn.relu6(x + 3) / 6,
        "hard_tanh": lambda x: tf.clip_by_value(x, -1, 1),
        "mish": lambda x: x * tf.tanh(tf.nn.softplus(x)), "log_sigmoid": tf.math.log_sigmoid,
        "softmax": lambda x: tf.nn.softmax(x, axis=-1),
        "log_softmax": lambda x: tf.nn.log_softmax(x, axis=-1),
        "glu": glu, "sparsemax": sparsemax,
    }
    return table[name]


class TensorFlowBackend(Backend):
    """tf.nn.convolution; grouped convolution through XLA (TF has no CPU kernel for it)."""

    name = "tensorflow"
    libraries = ("tensorflow",)
    capabilities = Capabilities(
        dtypes=("float32", "float64", "bfloat16", "float16"), flushes_subnormals=True,
        directions=("forward", "backward"),
        compute_precision={"bfloat16": "float32-per-op", "float16": "float32-per-op"},
        notes=("groups > 1 and channels_first run under XLA (tf.function(jit_compile=True)): TF has "
               "no CPU kernel for grouped 3-D convolution nor for NCDHW float64",
               "oneDNN and XLA flush subnormals to zero on the CPU",
               "bfloat16 and float16: CPU Conv3D kernels (oneDNN, Eigen) sum in float32; "
               "BiasAdd is a separate op on the rounded sum",
               "bfloat16/float16 gradients: dz in the dtype, float32 sums (float32-per-op); known "
               "deviations: the bfloat16 Conv3D filter gradient "
               "(conformance/repros/tensorflow_bf16_conv3d_filter_grad.py) and the bfloat16 bias "
               "gradient summed in bfloat16"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("tensorflow") is None:
            return Availability(False, "tensorflow is not installed")
        return Availability(True)

    def set_threads(self, threads: int) -> None:
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised: the pool size is fixed for this process
            pass
        super().set_threads(threads)

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        fmt = "NDHWC" if spec.channels_last else "NCDHW"
        act = tf_activation(spec.activation, tf)
        xt, wt = tf.constant(x), tf.constant(kernel)
        bt = None if bias is None else tf.constant(bias)

        def conv(inp, w):
            y = tf.nn.convolution(inp, w, strides=spec.strides, padding=spec.padding.upper(),
                                  dilations=spec.dilation_rate, data_format=fmt)
            if bt is not None:
                y = tf.nn.bias_add(y, bt, data_format="NCHW" if fmt == "NCDHW" else None)
            return act(y)

        compiled = tf.function(conv, jit_compile=spec.groups > 1 or not spec.channels_last)
        return Prepared(run=lambda: compiled(xt, wt), to_numpy=lambda y: np.ascontiguousarray(y.numpy()))

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(False)
        fmt = "NDHWC" if spec.channels_last else "NCDHW"
        act = tf_activation(spec.activation, tf)
        sources = [tf.constant(a) for a in (x, kernel, bias) if a is not None]
        dyt = tf.constant(dy)

        def grad(cotangent, *tensors):
            with tf.GradientTape() as tape:
                tape.watch(tensors)
                y = tf.nn.convolution(tensors[0], tensors[1], strides=spec.strides,
                                      padding=spec.padding.upper(), dilations=spec.dilation_rate,
                                      data_format=fmt)
                if len(tensors) == 3:
                    y = tf.nn.bias_add(y, tensors[2], data_format="NCHW" if fmt == "NCDHW" else None)
                y = act(y)
            return tape.gradient(y, list(tensors), output_gradients=cotangent)

        compiled = tf.function(grad, jit_compile=spec.groups > 1 or not spec.channels_last)

        def run():
            grads = compiled(dyt, *sources)
            return (*grads[:2], grads[2] if bias is not None else None)

        return Prepared(run=run, to_numpy=lambda g: tuple(
            None if t is None else np.ascontiguousarray(t.numpy()) for t in g))
