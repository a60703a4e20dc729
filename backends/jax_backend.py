"""JAX backend: jax.lax.conv_general_dilated with explicit padding pairs, feature_group_count,
precision HIGHEST for float32, and float64 through x64 enabled in the backend's own process."""

from __future__ import annotations

import importlib.util

import numpy as np

from backends.base import Availability, Backend, Capabilities, Prepared


def jax_activation(name: str | None, jax):
    """Keras activation `name` with jax.nn (Keras' JAX backend uses the same functions)."""
    jnp, nn = jax.numpy, jax.nn
    if name is None or name == "linear":
        return lambda x: x

    def sparsemax(x):
        z = -jnp.sort(-x, axis=-1)
        k = jnp.arange(1, x.shape[-1] + 1, dtype=x.dtype)
        cumsum = jnp.cumsum(z, axis=-1)
        k_z = jnp.maximum(jnp.sum(1 + k * z > cumsum, axis=-1, keepdims=True), 1)
        tau = (jnp.take_along_axis(cumsum, k_z - 1, axis=-1) - 1) / k_z.astype(x.dtype)
        return jnp.maximum(x - tau, 0)

    table = {
        "relu": nn.relu, "relu6": nn.relu6, "elu": nn.elu, "celu": nn.celu, "selu": nn.selu,
        "leaky_relu": lambda x: nn.leaky_relu(x, 0.2), "softsign": nn.soft_sign,
        "softplus": nn.softplus, "squareplus": lambda x: nn.squareplus(x, 4),
        "soft_shrink": lambda x: jnp.where(x > 0.5, x - 0.5, jnp.where(x < -0.5, x + 0.5, 0.0)),
        "hard_shrink": lambda x: jnp.where(jnp.abs(x) > 0.5, x, 0.0),
        "sparse_plus": nn.sparse_plus, "silu": nn.silu, "swish": nn.silu,
        "gelu": lambda x: nn.gelu(x, approximate=False), "tanh": jnp.tanh,
        "tanh_shrink": lambda x: x - jnp.tanh(x), "sigmoid": nn.sigmoid,
        "sparse_sigmoid": nn.sparse_sigmoid, "exponential": jnp.exp,
        "hard_sigmoid": nn.hard_sigmoid, "hard_silu": nn.hard_silu, "hard_swish": nn.hard_silu,
        "hard_tanh": nn.hard_tanh, "mish": nn.mish, "log_sigmoid": nn.log_sigmoid,
        "softmax": lambda x: nn.softmax(x, axis=-1), "log_softmax": lambda x: nn.log_softmax(x, axis=-1),
        "glu": lambda x: nn.glu(x, axis=-1), "sparsemax": sparsemax,
    }
    return table[name]


class JaxBackend(Backend):
    """lax.conv_general_dilated on JAX's default device (the CPU here)."""

    name = "jax"
    libraries = ("jax", "jaxlib")
    capabilities = Capabilities(
        dtypes=("float32", "float64", "bfloat16", "float16"), flushes_subnormals=True,
        directions=("forward", "backward"),
        compute_precision={"bfloat16": "float32-per-op", "float16": "float32-per-op"},
        notes=("precision=HIGHEST for float32", "float64 via jax_enable_x64 in the worker process",
               "XLA flushes subnormals to zero on the CPU",
               "bfloat16 and float16: XLA's CPU convolution sums in float32; the bias is a "
               "separate add on the rounded sum",
               "bfloat16/float16 gradients: dz in the dtype, float32 sums, except dbias, which XLA "
               "sums in the dtype (a known deviation)"))

    def availability(self) -> Availability:
        if importlib.util.find_spec("jax") is None:
            return Availability(False, "jax is not installed")
        return Availability(True)

    def _forward(self, jax, spec):
        fmt = "NDHWC" if spec.channels_last else "NCDHW"
        act = jax_activation(spec.activation, jax)
        bias_shape = (-1,) if spec.channels_last else (-1, 1, 1, 1)

        def conv(inp, w, b):
            y = jax.lax.conv_general_dilated(
                inp, w, window_strides=spec.strides, padding=list(spec.pads),
                rhs_dilation=spec.dilation_rate, dimension_numbers=(fmt, "DHWIO", fmt),
                feature_group_count=spec.groups, precision=jax.lax.Precision.HIGHEST)
            if b is not None:
                y = y + b.reshape(bias_shape)
            return act(y)

        return conv

    def _prepare(self, spec, x, kernel, bias) -> Prepared:
        import jax

        jax.config.update("jax_enable_x64", True)
        conv = jax.jit(self._forward(jax, spec))
        args = [jax.device_put(a) if a is not None else None for a in (x, kernel, bias)]
        # JAX dispatches asynchronously: a run ends when its result is ready
        return Prepared(run=lambda: conv(*args).block_until_ready(),
                        to_numpy=lambda y: np.ascontiguousarray(np.asarray(y)))

    def _prepare_grad(self, spec, x, kernel, bias, dy) -> Prepared:
        import jax

        jax.config.update("jax_enable_x64", True)
        conv = self._forward(jax, spec)

        @jax.jit
        def grad(inp, w, b, cotangent):
            _, pullback = jax.vjp(conv, inp, w, b)
            return pullback(cotangent)

        args = [jax.device_put(a) if a is not None else None for a in (x, kernel, bias, dy)]
        return Prepared(run=lambda: jax.block_until_ready(grad(*args)),
                        to_numpy=lambda g: tuple(None if t is None else np.ascontiguousarray(
                            np.asarray(t)) for t in g))
