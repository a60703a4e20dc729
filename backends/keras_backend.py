"""The seed system itself: a real keras.layers.Conv3D on each Keras backend.

KERAS_BACKEND must be set before keras is first imported, so each of these backends needs a
process of its own; the conformance runner and the bench give every backend its own worker.
The layer validates its own arguments (that is under test too): `prepare` hands the raw
arguments to Keras and only converts the arrays. The kernel is created by the "zeros" initializer
and then assigned: the default glorot_uniform's values would be replaced at once, and under JAX
it compiles a random-number kernel for every new shape (about 1 s per case, 20 times the call).

float16 and bfloat16 inputs run the layer under Keras' mixed-precision policy of that dtype
("mixed_float16", "mixed_bfloat16": float32 variables, low-precision compute): the way Keras users
meet these dtypes. Under it the kernel and bias gradients are float32 (the variables'); they are
rounded to the input's dtype to be judged.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from backends import keras_layer
from backends.base import Availability, Backend, Capabilities, Prepared, check_cotangent_shape
from reference.conv import check_floating
from reference.formats import LOW_PRECISION, numpy_dtype
from reference.spec import spec_for_arrays

#: the mixed-precision policy of each low-precision dtype, as every Keras backend declares it:
#: float32 sums, the sum rounded before the bias is added (Keras adds it as a separate op); its
#: autodiff likewise rounds each op of the backward pass, dz included, to the dtype
MIXED = dict(compute_precision={d: "float32-per-op" for d in LOW_PRECISION})


def dtype_policy(dtype: str) -> str:
    """The Keras dtype policy a layer runs under for inputs of `dtype`."""
    return f"mixed_{dtype}" if dtype in LOW_PRECISION else dtype


class KerasBackend(Backend):
    keras_backend = ""
    framework = ""

    def availability(self) -> Availability:
        for module in ("keras", self.framework):
            if importlib.util.find_spec(module) is None:
                return Availability(False, f"{module} is not installed")
        if "keras" in sys.modules:
            active = sys.modules["keras"].backend.backend()
            if active != self.keras_backend:
                return Availability(False, f"keras is already imported here with backend {active}; "
                                           "run this backend in its own process")
        return Availability(True)

    @property
    def libraries(self) -> tuple[str, ...]:
        return ("keras", self.framework)

    def versions(self) -> dict[str, str]:
        self._keras()  # KERAS_BACKEND before keras is first imported
        return super().versions()

    def _keras(self):
        os.environ["KERAS_BACKEND"] = self.keras_backend
        import keras

        if keras.backend.backend() != self.keras_backend:
            raise RuntimeError(f"keras runs on {keras.backend.backend()} in this process, not "
                               f"{self.keras_backend}; use a separate process per Keras backend")
        return keras

    def set_threads(self, threads: int) -> None:
        if self.framework == "torch":
            import torch

            torch.set_num_threads(threads)
        elif self.framework == "tensorflow":
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
            except RuntimeError:
                pass
        super().set_threads(threads)

    def _layer(self, x, kernel, bias, conv_args: dict):
        """A built keras.layers.Conv3D holding `kernel` and `bias`, and x as a backend tensor."""
        keras = self._keras()
        x, kernel = check_floating("x", x), check_floating("kernel", kernel)
        if kernel.ndim != 5:
            raise ValueError(f"kernel must have rank 5 (kd, kh, kw, C/groups, F); received {kernel.shape}")
        layer = keras.layers.Conv3D(filters=kernel.shape[-1], kernel_size=kernel.shape[:3],
                                    use_bias=bias is not None, dtype=dtype_policy(x.dtype.name),
                                    kernel_initializer="zeros", **conv_args)
        layer.build(x.shape)
        if tuple(layer.kernel.shape) != kernel.shape:
            raise ValueError(f"kernel shape {kernel.shape} does not match the layer's "
                             f"{tuple(layer.kernel.shape)}")
        layer.kernel.assign(kernel.astype(layer.kernel.dtype))  # exact: float32 holds either
        if bias is not None:
            layer.bias.assign(check_floating("bias", bias).astype(layer.bias.dtype))
        return keras, layer, keras.ops.convert_to_tensor(x)

    def prepare(self, x, kernel, bias=None, **conv_args) -> Prepared:
        keras, layer, inputs = self._layer(x, kernel, bias, conv_args)

        def run():
            y = layer(inputs)
            return y.block_until_ready() if hasattr(y, "block_until_ready") else y  # JAX is async

        return Prepared(run=run,
                        to_numpy=lambda y: np.ascontiguousarray(keras.ops.convert_to_numpy(y)))

    def prepare_grad(self, x, kernel, bias, dy, **conv_args) -> Prepared:
        """The layer differentiated by its Keras backend's own autodiff, with respect to the
        input, the kernel variable and the bias variable."""
        keras, layer, inputs = self._layer(x, kernel, bias, conv_args)
        dy = check_floating("dy", dy)  # the layer accepted the arguments: the spec exists
        check_cotangent_shape(dy.shape, spec_for_arrays(np.shape(x), np.shape(kernel), bias is not None,
                                                        **conv_args))
        cotangent = keras.ops.convert_to_tensor(dy)
        grad = self._grad_function(layer, inputs, cotangent)

        def to_numpy(grads):
            arrays = [np.ascontiguousarray(keras.ops.convert_to_numpy(g)) for g in grads]
            if x.dtype.name in LOW_PRECISION:  # the float32 variables' gradients, in x's dtype
                arrays = [arrays[0], *(a.astype(numpy_dtype(x.dtype.name)) for a in arrays[1:])]
            return (*arrays[:2], arrays[2] if bias is not None else None)

        return Prepared(run=grad, to_numpy=to_numpy)

    def _grad_function(self, layer, inputs, cotangent):
        raise NotImplementedError

    def new_layer(self, keras, **kwargs):
        """Every layer the layer check's probes build comes from here (the layer mutants' hook)."""
        return keras.layers.Conv3D(**kwargs)

    def layer_probe(self, probe: str, params: dict) -> dict:
        keras = self._keras()
        if probe == "data_format":
            target = f"{type(self).__module__}:{type(self).__qualname__}"
            return keras_layer.data_format(
                lambda p: keras_layer.run_child(target, self.keras_backend, p), params)
        return keras_layer.PROBES[probe](keras, lambda **kw: self.new_layer(keras, **kw), params)


class KerasTensorFlow(KerasBackend):
    name = "keras-tensorflow"
    keras_backend = framework = "tensorflow"
    capabilities = Capabilities(
        dtypes=("float32", "float64", *LOW_PRECISION), flushes_subnormals=True,
        directions=("forward", "backward"), layer=True, **MIXED,
        notes=("Keras routes grouped and channels_first convolution through XLA on the CPU",
               "backward: tf.GradientTape", "float16/bfloat16: the mixed_float16/mixed_bfloat16 policy"))

    def _grad_function(self, layer, inputs, cotangent):
        import tensorflow as tf

        def grad():
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                y = layer(inputs)
            return tape.gradient(y, [inputs, *layer.trainable_variables], output_gradients=cotangent)

        return grad


class KerasTorch(KerasBackend):
    name = "keras-torch"
    keras_backend = framework = "torch"
    capabilities = Capabilities(dtypes=("float32", "float64", *LOW_PRECISION),
                                directions=("forward", "backward"), layer=True, **MIXED,
                                notes=("backward: torch.autograd",
                                       "float16/bfloat16: the mixed_float16/mixed_bfloat16 policy"))

    def _grad_function(self, layer, inputs, cotangent):
        import torch

        def grad():
            leaf = inputs.detach().requires_grad_(True)
            y = layer(leaf)
            return torch.autograd.grad(y, [leaf, *(v.value for v in layer.trainable_variables)],
                                       grad_outputs=cotangent)

        return grad


class KerasJax(KerasBackend):
    name = "keras-jax"
    keras_backend = framework = "jax"
    capabilities = Capabilities(dtypes=("float32", *LOW_PRECISION), flushes_subnormals=True,
                                directions=("forward", "backward"), layer=True, **MIXED,
                                notes=("float64 needs jax_enable_x64, which Keras does not set: "
                                       "a float64 layer computes in float32",
                                       "backward: jax.vjp of the layer's __call__ in a StatelessScope",
                                       "float16/bfloat16: the mixed_float16/mixed_bfloat16 policy"))

    def _grad_function(self, layer, inputs, cotangent):
        """jax.vjp of the layer's own __call__ with its variables mapped to traced values
        (stateless_call would skip __call__'s autocast: a mixed policy would compute in float32)."""
        import jax

        keras = self._keras()
        trainable = [v.value for v in layer.trainable_variables]

        @jax.jit
        def vjp(x, variables, dy):
            def call(x_, variables_):
                with keras.StatelessScope(state_mapping=list(zip(layer.trainable_variables, variables_))):
                    return layer(x_)

            _, pullback = jax.vjp(call, x, variables)
            dx, dvars = pullback(dy)
            return [dx, *dvars]

        return lambda: jax.block_until_ready(vjp(inputs, trainable, cotangent))
