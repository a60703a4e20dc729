"""Conv3DSpec: SPEC.md's worked shapes, every ValueError with Keras' wording, descriptors."""

import pytest

from reference import Conv3DSpec

CL = "channels_last"

# (input shape, layer arguments, output shape, pads or None)
WORKED_SHAPES = [
    ((4, 10, 10, 10, 128), dict(filters=32, kernel_size=3, activation="relu"), (4, 8, 8, 8, 32), None),
    ((1, 5, 5, 5, 3), dict(filters=2, kernel_size=3), (1, 3, 3, 3, 2), None),
    ((1, 8, 8, 8, 3), dict(filters=2, kernel_size=3, strides=2), (1, 3, 3, 3, 2), None),
    ((1, 8, 8, 8, 3), dict(filters=2, kernel_size=3, strides=2, padding="same"), (1, 4, 4, 4, 2),
     ((0, 1), (0, 1), (0, 1))),
    ((1, 8, 8, 8, 3), dict(filters=2, kernel_size=3, strides=(2, 1, 2), padding="same"),
     (1, 4, 8, 4, 2), None),
    ((1, 8, 8, 8, 3), dict(filters=2, kernel_size=3, dilation_rate=(1, 2, 2)), (1, 6, 4, 4, 2), None),
    ((1, 2, 2, 2, 3), dict(filters=2, kernel_size=7, strides=3, padding="same"), (1, 1, 1, 1, 2), None),
    ((3, 5, 5, 5, 4), dict(filters=6, kernel_size=(2, 2, 3), strides=(2, 1, 2), groups=2),
     (3, 2, 4, 2, 6), None),
    ((2, 8, 8, 8, 4), dict(filters=6, kernel_size=2, padding="same", dilation_rate=(2, 3, 4), groups=2),
     (2, 8, 8, 8, 6), ((1, 1), (1, 2), (2, 2))),
]


@pytest.mark.parametrize("shape,args,out,pads", WORKED_SHAPES)
def test_worked_shapes(shape, args, out, pads):
    spec = Conv3DSpec(input_shape=shape, **args)
    assert spec.output_shape == out
    if pads is not None:
        assert spec.pads == pads
    first = Conv3DSpec(input_shape=(shape[0], shape[4], *shape[1:4]), data_format="channels_first", **args)
    assert first.output_shape == (out[0], out[4], *out[1:4])


def test_normalisation_is_keras_like():
    spec = Conv3DSpec(filters=4, kernel_size=[3, 1, 2], input_shape=(1, 6, 6, 6, 2), padding="SAME",
                      data_format="Channels_Last", strides=(1, 2, 1))
    assert spec.kernel_size == (3, 1, 2) and spec.padding == "same" and spec.data_format == CL
    assert spec.strides == (1, 2, 1) and spec.dilation_rate == (1, 1, 1)


def test_flops_dense_count():
    spec = Conv3DSpec(filters=32, kernel_size=3, input_shape=(4, 10, 10, 10, 128))
    assert spec.flops == 2 * 4 * 32 * 8 * 8 * 8 * 27 * 128
    grouped = Conv3DSpec(filters=6, kernel_size=(2, 2, 3), strides=(2, 1, 2), groups=2,
                         input_shape=(3, 5, 5, 5, 4))
    assert grouped.flops == 2 * 3 * 6 * (2 * 4 * 2) * 12 * 2


ERRORS = [
    (dict(filters=0), "Invalid value for argument `filters`. Expected a strictly positive value. "
                      "Received filters=0."),
    (dict(kernel_size=(3, 3)), "The `kernel_size` argument must be a tuple of 3 integers. "
                               "Received kernel_size=(3, 3)"),
    (dict(kernel_size=(3, 0, 3)), "including values {0} that do not satisfy `value > 0`"),
    (dict(strides=(1, -1, 1)), "The `strides` argument must be a tuple of 3 integers"),
    (dict(dilation_rate="2"), "The `dilation_rate` argument must be a tuple of 3 integers"),
    (dict(kernel_size=(1.5, 1, 1)), "The `kernel_size` argument must be a tuple of 3 integers"),
    (dict(padding="causal"), "The `padding` argument must be one of"),
    (dict(padding=[(1, 1)] * 3), "The `padding` argument must be one of"),
    (dict(data_format="NDHWC"), "The `data_format` argument must be one of "
                                "{'channels_first', 'channels_last'}. Received: data_format=ndhwc"),
    (dict(groups=0), "The number of groups must be a positive integer. Received: groups=0."),
    (dict(filters=5, groups=2), "The number of filters must be evenly divisible by the number of "
                                "groups. Received: groups=2, filters=5."),
    (dict(groups=4, filters=4), "The number of input channels must be evenly divisible by the "
                                "number of groups. Received groups=4, but the input has 6 channels"),
    (dict(strides=(2, 1, 1), dilation_rate=(1, 2, 1)),
     "`strides > 1` not supported in conjunction with `dilation_rate > 1`."),
    (dict(kernel_size=7), "Computed output size would be zero or negative."),
    (dict(kernel_size=3, dilation_rate=3), "Computed output size would be zero or negative."),
    (dict(activation="Relu"), "Could not interpret activation function identifier: Relu"),
    (dict(activation="threshold"), "Activation 'threshold' needs"),
    (dict(input_shape=(1, 6, 6, 6)), "rank-5 input"),
]


@pytest.mark.parametrize("change,message", ERRORS, ids=[m[:40] for _, m in ERRORS])
def test_every_spec_error(change, message):
    args = dict(filters=4, kernel_size=3, input_shape=(1, 6, 6, 6, 6)) | change
    with pytest.raises(ValueError) as info:
        Conv3DSpec(**args)
    assert message in str(info.value)


def test_same_never_errors_with_kernel_larger_than_input():
    spec = Conv3DSpec(filters=1, kernel_size=(9, 1, 5), strides=(1, 3, 2), padding="same",
                      input_shape=(1, 2, 5, 3, 1))
    assert spec.output_shape == (1, 2, 2, 2, 1)
    assert spec.pads == ((4, 4), (0, 0), (2, 2))


def test_odd_same_padding_cell_goes_after():
    spec = Conv3DSpec(filters=1, kernel_size=(2, 4, 1), strides=(1, 1, 3), padding="same",
                      input_shape=(1, 5, 5, 5, 1))
    assert spec.pads == ((0, 1), (1, 2), (0, 0))


DESCRIPTORS = [
    "g2_mb2_ic4id8ih8iw8_oc6_kd2kh2kw3_sd2sh1sw2_dd1dh1dw1_same_cl_relu_bias",
    "g1_mb1_ic3id5ih6iw7_oc2_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cf_linear_nobias",
    "g4_mb3_ic4id9ih4iw5_oc8_kd3kh1kw2_sd1sh1sw1_dd2dh1dw3_same_cl_leaky_relu_bias",
]


@pytest.mark.parametrize("text", DESCRIPTORS)
def test_descriptor_round_trip(text):
    spec = Conv3DSpec.from_descriptor(text)
    assert spec.descriptor == text
    assert Conv3DSpec.from_descriptor(spec.descriptor) == spec


def test_descriptor_parse_error_says_the_expected_form():
    with pytest.raises(ValueError, match="expected the form"):
        Conv3DSpec.from_descriptor("g2_mb2_oops")
