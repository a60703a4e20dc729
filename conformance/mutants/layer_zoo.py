"""Broken whole layers: keras-torch's Conv3D with one defect in what surrounds the convolution.

Each mutant changes only the layers the layer check's probes build (KerasBackend.new_layer), so
its convolution stays correct and only the `layer` check can catch it.
"""

from __future__ import annotations

from backends.keras_backend import KerasTorch
from runtime.records import Status


class LayerMutant(KerasTorch):
    expected: tuple[Status, ...] = (Status.FAIL,)
    bug_class = ""
    direction = "forward"
    checks = ("layer",)  # the only check that can see it


class FanWithoutGroups(LayerMutant):
    """The kernel initializer's fan ignores groups: drawn for the full C input channels, then cut
    to C/groups. Exposed by any variance-scaling initializer on a grouped layer."""

    bug_class = "layer: initializer fan without the groups division"

    def new_layer(self, keras, **kwargs):
        groups = kwargs.get("groups", 1)
        if groups > 1:
            inner = keras.initializers.get(kwargs.get("kernel_initializer", "glorot_uniform"))

            class Ungrouped(keras.initializers.Initializer):
                def __call__(self, shape, dtype=None):
                    *field, cg, f = shape
                    return inner((*field, cg * groups, f), dtype)[..., :cg, :]

            kwargs["kernel_initializer"] = Ungrouped()
        return super().new_layer(keras, **kwargs)


class BiasInitialisedNonZero(LayerMutant):
    """The default bias initializer is a small constant instead of zeros."""

    bug_class = "layer: bias initialised non-zero"

    def new_layer(self, keras, **kwargs):
        kwargs.setdefault("bias_initializer", keras.initializers.Constant(1e-3))
        return super().new_layer(keras, **kwargs)


class ConstraintNeverApplied(LayerMutant):
    """kernel_constraint and bias_constraint are accepted and dropped: the optimizer never
    projects."""

    bug_class = "layer: constraint never applied"

    def new_layer(self, keras, **kwargs):
        kwargs.pop("kernel_constraint", None)
        kwargs.pop("bias_constraint", None)
        return super().new_layer(keras, **kwargs)


class ActivityNotDivided(LayerMutant):
    """The activity regularizer's loss is not divided by the batch size (Keras 2's behaviour).
    Exposed by any batch larger than 1."""

    bug_class = "layer: activity regularizer not divided by the batch size"

    def new_layer(self, keras, **kwargs):
        inner = kwargs.get("activity_regularizer")
        if inner is not None:
            class Undivided(keras.regularizers.Regularizer):
                def __call__(self, x):
                    return inner(x) * keras.ops.cast(keras.ops.shape(x)[0], x.dtype)

            kwargs["activity_regularizer"] = Undivided()
        return super().new_layer(keras, **kwargs)


class ConfigDefaultIgnored(LayerMutant):
    """data_format=None means "channels_last" whatever keras.json says: a channels_first input
    builds a kernel of the wrong shape (CRASHED) or computes in the wrong layout (FAIL)."""

    bug_class = "layer: config default ignored"
    expected = (Status.FAIL, Status.CRASHED)

    def new_layer(self, keras, **kwargs):
        if kwargs.get("data_format") is None:
            kwargs["data_format"] = "channels_last"
        return super().new_layer(keras, **kwargs)


class ConfigDropsGroups(LayerMutant):
    """get_config leaves out `groups`: a grouped layer comes back from its config (or a .keras
    file) as a dense one, which cannot take its own weights."""

    bug_class = "layer: serialization drops an argument"
    expected = (Status.FAIL, Status.CRASHED)

    def new_layer(self, keras, **kwargs):
        layer = super().new_layer(keras, **kwargs)
        get_config = layer.get_config
        layer.get_config = lambda: {k: v for k, v in get_config().items() if k != "groups"}
        return layer


LAYER_ZOO = (FanWithoutGroups, BiasInitialisedNonZero, ConstraintNeverApplied, ActivityNotDivided,
             ConfigDefaultIgnored, ConfigDropsGroups)
