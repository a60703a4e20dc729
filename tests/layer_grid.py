"""A grid of layers covering every Conv3D argument, shared by the tests of our own backends."""

import itertools

from reference import Conv3DSpec

GRID = [
    dict(kernel_size=k, strides=s, dilation_rate=d, padding=p, groups=g, data_format=f, activation=a)
    for (k, s, d), p, g, f, a in itertools.product(
        [((3, 2, 1), 1, 1), ((2, 3, 2), (2, 1, 3), 1), ((3, 1, 2), 1, (2, 1, 3)), (1, 1, 1), (1, 2, 1)],
        ["valid", "same"], [1, 2, 6], ["channels_last", "channels_first"], [None, "gelu", "softmax"])
]


def layer_spec(args, batch=2, spatial=(7, 6, 9), channels=6, filters=12):
    """filters 12 with 6 channels: the lane kernel for one group or a stride along W, else the
    W-vector kernel (6 or 2 filters per group); 36: broadcast for 1 or 2 groups (18 or more filters
    per group), W-vector for 6."""
    fmt = args["data_format"]
    shape = (batch, *spatial, channels) if fmt == "channels_last" else (batch, channels, *spatial)
    return Conv3DSpec(filters=filters, input_shape=shape, **args)
