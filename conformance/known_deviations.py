"""Known deviations: real discrepancies this suite found in frameworks, listed here (like
array-api-tests' xfails file) rather than hidden in code.

A case that fails AND matches an entry is reported KNOWN-FAIL with the entry's reason: it stays in
the report, but does not fail the run. A case that passes is reported PASS as usual. Each entry
carries the repro line that first showed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance.cases import Case, InvalidCase
from conformance.coverage import AXES, classes

KERAS = ("keras-tensorflow", "keras-torch", "keras-jax")
XLA_CPU = ("jax", "tensorflow", "keras-tensorflow", "keras-jax")
OPENVINO = ("openvino", "openvino-default")


@dataclass(frozen=True)
class Deviation:
    backends: tuple[str, ...]
    reason: str
    repro: str
    applies: Callable[[Case | InvalidCase], bool]


def _valid(case) -> bool:
    return isinstance(case, Case)


def _non_integer_tuple(case) -> bool:
    if not isinstance(case, InvalidCase) or case.rule not in ("strides", "dilation_rate"):
        return False
    value = case.args.get(case.rule)
    return isinstance(value, (list, tuple)) and any(isinstance(v, float) for v in value)


DEVIATIONS = (
    Deviation(
        ("jax", "keras-jax"),
        "JAX on the CPU sums the gradient of a broadcast bias add in float16/bfloat16 itself (each "
        "partial sum rounded to the dtype), where its convolution sums in float32: dbias comes out "
        "ulps from the correctly rounded sum, even of 3 terms; standalone: "
        "conformance/repros/jax_bias_grad_low_precision.py",
        "python -m conformance --backend jax --case "
        "'g1_mb3_ic1id1ih1iw3_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_bias' --dtype bfloat16 "
        "--data normal --seed 1 --direction backward",
        lambda c: _valid(c) and c.direction == "backward" and c.dtype in ("float16", "bfloat16")
        and c.spec.use_bias),
    Deviation(
        ("tensorflow",),
        "TensorFlow on the CPU sums tf.nn.bias_add's bfloat16 gradient in bfloat16 itself (partial "
        "sums rounded to bfloat16; its float16 gradient is correctly rounded): dbias comes out ulps "
        "from the correctly rounded sum; standalone: "
        "conformance/repros/tensorflow_bias_grad_low_precision.py",
        "python -m conformance --backend tensorflow --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh2sw1_dd1dh1dw1_same_cl_linear_bias' --dtype bfloat16 "
        "--data normal --seed 0 --direction backward",
        lambda c: _valid(c) and c.direction == "backward" and c.dtype == "bfloat16" and c.spec.use_bias),
    Deviation(
        ("keras-tensorflow",),
        "TensorFlow on the CPU sums the gradient of the broadcast x + bias that Keras' Conv3D adds "
        "in the dtype itself (float16 always, bfloat16 in the channels_first layout): dbias comes "
        "out ulps from the correctly rounded sum; standalone: "
        "conformance/repros/tensorflow_bias_grad_low_precision.py",
        "python -m conformance --backend keras-tensorflow --case "
        "'g1_mb1_ic1id1ih2iw3_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_bias' --dtype float16 "
        "--data normal --seed 2 --direction backward",
        lambda c: _valid(c) and c.direction == "backward" and c.dtype in ("float16", "bfloat16")
        and c.spec.use_bias),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TensorFlow's CPU filter gradient lets 0 * inf in one kernel tap make other taps NaN "
        "(x = [-0, 0.237; -inf, -0.672], dy = [0.349; -0]: dkernel[1] = 0.0827, TF gives NaN)",
        "python -m conformance --backend tensorflow --case "
        "'g1_mb2_ic1id1ih1iw2_oc1_kd1kh1kw2_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_nobias' "
        "--dtype float64 --data special --seed 0 --direction backward",
        lambda c: _valid(c) and c.direction == "backward" and c.data == "special"),
    Deviation(
        ("torch", "tensorflow", "jax", *KERAS),
        "Keras' squareplus, (x + sqrt(x * x + 4)) / 2, evaluated in float16 overflows x * x for "
        "|x| >= 256 (inf instead of x; the framework backends compose the same formula); "
        "standalone: conformance/repros/keras_squareplus_float16.py",
        "python -m conformance --backend torch --case "
        "'g1_mb3_ic3id1ih2iw2_oc4_kd1kh2kw2_sd1sh1sw1_dd1dh1dw1_valid_cl_squareplus_nobias' --dtype float16 "
        "--data wide --seed 0 --direction forward",
        lambda c: _valid(c) and c.dtype == "float16" and c.spec.activation == "squareplus"),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TensorFlow's bfloat16 CPU Conv3D (oneDNN) returns 0 when the padded kernel is longer than "
        "the input along an axis; standalone: conformance/repros/tensorflow_bf16_kernel_past_input.py",
        "python -m conformance --backend keras-tensorflow --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd3kh1kw2_sd1sh1sw1_dd1dh1dw1_same_cl_linear_nobias' --dtype bfloat16 "
        "--data exact --seed 0 --direction forward",
        lambda c: _valid(c) and c.dtype == "bfloat16" and _kernel_past_input(c)),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TensorFlow's bfloat16 CPU Conv3D (oneDNN) turns infinite inputs into NaN in outputs that are "
        "finite or infinite; standalone: conformance/repros/tensorflow_bf16_inf_becomes_nan.py",
        "python -m conformance --backend tensorflow --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_linear_bias' --dtype bfloat16 "
        "--data special --seed 0 --direction forward",
        lambda c: _valid(c) and c.dtype == "bfloat16" and c.data == "special"),
    Deviation(
        ("torch", "keras-torch"),
        "torch's bfloat16 CPU conv3d gives wrong values (keras-torch: garbage such as 1e21) for a "
        "grouped convolution whose padded kernel is longer than the input; standalone: "
        "conformance/repros/torch_bf16_conv_cpu.py",
        "python -m conformance --backend torch --case "
        "'g3_mb2_ic3id1ih2iw3_oc6_kd5kh1kw3_sd3sh4sw1_dd1dh1dw1_same_cl_relu_bias' --dtype bfloat16 "
        "--data exact --seed 1299909845 --strided --direction forward",
        lambda c: _valid(c) and c.dtype == "bfloat16" and c.spec.groups > 1 and _kernel_past_input(c)),
    Deviation(
        ("torch", "keras-torch"),
        "torch's bfloat16 CPU conv3d weight gradient is wrong on a channels_last_3d input when the "
        "padded kernel is longer than the input: grouped, off by about 1; with a stride along "
        "that axis also ungrouped, with garbage (1e19, NaN) in taps that read only padding; "
        "standalone: conformance/repros/torch_bf16_conv3d_weight_grad.py",
        "python -m conformance --backend torch --case "
        "'g2_mb1_ic2id2ih1iw1_oc2_kd3kh1kw1_sd1sh1sw1_dd1dh1dw1_same_cl_linear_nobias' --dtype bfloat16 "
        "--data normal --seed 0 --direction backward",
        lambda c: (_valid(c) and c.dtype == "bfloat16" and c.direction == "backward"
                   and _kernel_past_input(c))),
    Deviation(
        ("torch", "keras-torch"),
        "torch's hardsigmoid backward multiplies by 1/6 rounded to float32 in float64 too "
        "(d/dx hardsigmoid(0.5) = 0.1666666716337204, expected 1/6): float64 gradients are "
        "float32-accurate",
        "python -m conformance --backend torch --case "
        "'g1_mb2_ic4id7ih6iw9_oc6_kd2kh3kw2_sd1sh2sw3_dd1dh1dw1_same_cl_hard_sigmoid_bias' "
        "--dtype float64 --data normal --seed 0 --direction backward",
        lambda c: (_valid(c) and c.direction == "backward" and c.dtype == "float64"
                   and c.spec.activation == "hard_sigmoid")),
    Deviation(
        XLA_CPU,
        "XLA on the CPU lets inf/NaN in one group's input reach other groups' outputs "
        "(x = [-0, inf], w = [1.68, -0], groups 2 gives NaN in group 0, expected -0)",
        "python -m conformance --backend jax --case "
        "'g2_mb1_ic2id1ih1iw1_oc2_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_nobias' "
        "--dtype float64 --data special --seed 0",
        lambda c: _valid(c) and c.data == "special" and c.spec.groups > 1),
    Deviation(
        ("keras-tensorflow",),
        "Keras' TF ops.add takes a (1, F, 1, 1, 1) bias for an NHWC bias_add whenever the last "
        "axis also has size F, so channels_first bias lands on W (keras/src/backend/tensorflow/"
        "numpy.py add)",
        "python -m conformance --backend keras-tensorflow --case "
        "'g1_mb1_ic3id8ih8iw8_oc4_kd3kh3kw3_sd2sh2sw2_dd1dh1dw1_same_cf_linear_bias' "
        "--dtype float32 --data exact --seed 0",
        lambda c: (_valid(c) and not c.spec.channels_last and c.spec.use_bias
                   and c.spec.output_shape[-1] == c.spec.filters)),
    Deviation(
        ("tensorflow",),
        "in a tf.function, TF fuses Conv3D + BiasAdd + Relu/Relu6 into one CPU kernel that maps "
        "NaN to 0 (the same convolution without the activation propagates NaN)",
        "python -m conformance --backend tensorflow --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_relu_bias' "
        "--dtype float32 --data special --seed 1",
        lambda c: _valid(c) and c.data == "special" and c.spec.activation in ("relu", "relu6")),
    Deviation(
        ("keras-tensorflow",),
        "TF's LeakyRelu keeps alpha as a float32 attribute: float64 leaky_relu uses 0.2f, "
        "1.5e-8 relative off",
        "python -m conformance --backend keras-tensorflow --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_leaky_relu_nobias' "
        "--dtype float64 --data large --seed 0",
        lambda c: _valid(c) and c.dtype == "float64" and c.spec.activation == "leaky_relu"),
    Deviation(
        KERAS,
        "Keras' sparsemax sums the cumulative sums over the whole support instead of taking the "
        "k-th one, so rows with two or more nonzero outputs are wrong (they do not sum to 1)",
        "python -m conformance --backend keras-torch --case "
        "'g1_mb1_ic1id1ih1iw1_oc2_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_sparsemax_nobias' "
        "--dtype float32 --data normal --seed 0",
        lambda c: _valid(c) and c.spec.activation == "sparsemax"),
    Deviation(
        KERAS,
        "Keras' standardize_tuple accepts non-integer strides/dilation (int(1.5) succeeds): the "
        "TF backend then computes with them, torch and JAX raise TypeError inside call()",
        "python -m conformance --backend keras-tensorflow --invalid "
        "'{\"args\": {\"strides\": [1.5, 1, 1]}, \"bias\": false, \"dtype\": \"float32\", "
        "\"kernel_shape\": [2, 2, 2, 2, 4], \"rule\": \"strides\", \"x_shape\": [1, 5, 6, 7, 2]}'",
        _non_integer_tuple),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TF's float64 CPU Conv3D (the Eigen path; float32 goes through oneDNN and is right) does "
        "not clamp a negative total 'same' padding to 0: with H=3, kernel 1, stride 3 it reads "
        "x[1] instead of x[0]",
        "python -m conformance --backend tensorflow --case "
        "'g1_mb1_ic1id1ih3iw1_oc1_kd1kh1kw1_sd1sh3sw1_dd1dh1dw1_same_cl_linear_nobias' "
        "--dtype float64 --data normal --seed 0",
        lambda c: c.dtype == "float64" and _clamped_same_padding(c)),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TF's Elu CPU kernel computes exp(x) - 1, not expm1(x): near 0 it is thousands of ulps off "
        "(elu(-1e-5) in float64: 3383 ulps), beyond the 8-ulp activation budget",
        "python -m conformance --backend keras-tensorflow --case "
        "'g17_mb2_ic17id1ih9iw1_oc34_kd1kh2kw4_sd2sh2sw2_dd1dh1dw1_same_cl_elu_nobias' "
        "--dtype float64 --data normal --seed 1339784153",
        lambda c: _valid(c) and c.spec.activation in ("elu", "celu", "selu")),
    Deviation(
        ("tensorflow", "keras-tensorflow"),
        "TF 2.21's exact gelu (approximate=False) is only float32-accurate in float64: "
        "gelu(-0.31) is 4.5e7 ulps off",
        "python -m conformance --backend tensorflow --case "
        "'g2_mb2_ic16id2ih1iw8_oc2_kd2kh4kw5_sd1sh4sw2_dd1dh1dw1_same_cl_gelu_bias' "
        "--dtype float64 --data normal --seed 1709913945",
        lambda c: _valid(c) and c.dtype == "float64" and c.spec.activation == "gelu"),
    Deviation(
        ("onnxruntime",),
        "ONNX Runtime's CPU Elu, Celu and Selu compute exp(x) - 1, not expm1(x): near 0 every digit "
        "cancels (Elu(-2.7e-9) = 0, Elu(-1e-6) 1.3% off); standalone: "
        "conformance/repros/onnxruntime_elu_near_zero.py",
        "python -m conformance --backend onnxruntime --case "
        "'g1_mb2_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_elu_nobias' --dtype float32 "
        "--data wide --seed 673182 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("elu", "celu", "selu")),
    Deviation(
        ("onnxruntime",),
        "ONNX Runtime's CPU Tanh is up to ~90 ulps off on subnormal inputs, where tanh(x) = x "
        "(Tanh(-3.3605897e-40) = -3.3618411e-40); standalone: "
        "conformance/repros/onnxruntime_tanh_subnormal.py",
        "python -m conformance --backend onnxruntime --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_tanh_nobias' --dtype float32 "
        "--data subnormal --seed 0 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("tanh", "tanh_shrink") and c.data == "subnormal"),
    Deviation(
        ("torch", "keras-torch"),
        "torch's bfloat16 CPU conv3d (oneDNN, AMX here; keras-torch's mixed_bfloat16 layer runs it) "
        "treats subnormal inputs as zero and turns infinite inputs into NaN in outputs that are "
        "finite or infinite; standalone: "
        "conformance/repros/torch_bf16_conv_cpu.py",
        "python -m conformance --backend torch --case "
        "'g1_mb2_ic5id8ih4iw3_oc4_kd4kh2kw3_sd1sh1sw3_dd1dh1dw1_valid_cl_linear_nobias' --dtype bfloat16 "
        "--data subnormal --seed 2112 --direction forward",
        lambda c: _valid(c) and c.dtype == "bfloat16" and c.data in ("subnormal", "special")),
    Deviation(
        OPENVINO,
        "OpenVINO's CPU Convolution returns wrong values for one input channel per group, a W "
        "stride above 1 with a single output column and H stride 1 (batch 3, 4x3 input, 3x2 "
        "kernel: every second output row is off); standalone: "
        "conformance/repros/openvino_strided_single_channel.py",
        "python -m conformance --backend openvino --case "
        "'g1_mb3_ic1id1ih4iw3_oc1_kd1kh3kw2_sd1sh1sw2_dd1dh1dw1_valid_cl_linear_nobias' --dtype float32 "
        "--data normal --seed 0 --direction forward",
        lambda c: (_valid(c) and c.spec.in_channels // c.spec.groups == 1 and c.spec.strides[2] > 1
                   and c.spec.strides[1] == 1 and c.spec.output_spatial[2] == 1)),
    Deviation(
        OPENVINO,
        "OpenVINO's Relu and Clamp (relu, relu6, hard_tanh) return a number for NaN; standalone: "
        "conformance/repros/nan_through_rectifiers.py",
        "python -m conformance --backend openvino --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_relu6_bias' --dtype float32 "
        "--data special --seed 3 --direction forward",
        lambda c: _valid(c) and c.data == "special" and c.spec.activation in ("relu", "relu6", "hard_tanh")),
    Deviation(
        OPENVINO,
        "OpenVINO's CPU Elu (elu, celu, selu) computes exp(x) - 1, not expm1(x): elu(-1e-6) is 1.3% "
        "off; standalone: conformance/repros/openvino_elu_near_zero.py",
        "python -m conformance --backend openvino --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cf_elu_nobias' --dtype float32 "
        "--data subnormal --seed 0 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("elu", "celu", "selu")),
    Deviation(
        ("openvino-default",),
        "OpenVINO's bfloat16 CPU Convolution (the default hint on AMX/AVX512-BF16 CPUs) returns "
        "zeros when the padded kernel is longer than the input along an axis; standalone: "
        "conformance/repros/openvino_bf16_kernel_past_input.py",
        "python -m conformance --backend openvino-default --case "
        "'g1_mb1_ic1id1ih8iw1_oc5_kd4kh3kw3_sd3sh4sw4_dd1dh1dw1_same_cl_relu_bias' --dtype float32 "
        "--data exact --seed 1561585970 --direction forward",
        lambda c: _valid(c) and _kernel_past_input(c)),
    Deviation(
        ("openvino-default",),
        "OpenVINO's bfloat16 CPU Convolution turns infinite inputs into NaN in outputs whose exact "
        "value is finite or infinite; standalone: conformance/repros/openvino_bf16_inf_becomes_nan.py",
        "python -m conformance --backend openvino-default --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_linear_bias' --dtype float32 "
        "--data special --seed 0 --direction forward",
        lambda c: _valid(c) and c.data == "special"),
    Deviation(
        ("paddle",),
        "PaddlePaddle's relu returns 0 for NaN; standalone: conformance/repros/nan_through_rectifiers.py",
        "python -m conformance --backend paddle --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_relu_bias' --dtype float32 "
        "--data special --seed 2 --direction forward",
        lambda c: _valid(c) and c.data == "special" and c.spec.activation == "relu"),
    Deviation(
        ("paddle",),
        "PaddlePaddle's softmax clips x - max(x) at -64: an output that underflows to 0 is "
        "exp(-64) = 1.6e-28 instead (log_softmax -64 instead of -1000); standalone: "
        "conformance/repros/paddle_activations.py",
        "python -m conformance --backend paddle --case "
        "'g1_mb2_ic1id1ih1iw1_oc2_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_softmax_nobias' --dtype float32 "
        "--data wide --seed 0 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("softmax", "log_softmax")),
    Deviation(
        ("paddle",),
        "PaddlePaddle's elu (celu, selu) computes exp(x) - 1, not expm1(x): elu(-1e-6) is 1.3% off, "
        "elu(-2.7e-9) = 0; standalone: conformance/repros/paddle_activations.py",
        "python -m conformance --backend paddle --case "
        "'g2_mb1_ic2id1ih1iw1_oc2_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_elu_nobias' --dtype float32 "
        "--data wide --seed 1 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("elu", "celu", "selu")),
    Deviation(
        ("paddle",),
        "PaddlePaddle's float64 selu and hardsigmoid use float32 copies of their constants (about "
        "1e-9 off, 1e7 float64 ulps); standalone: conformance/repros/paddle_activations.py",
        "python -m conformance --backend paddle --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_selu_nobias' --dtype float64 "
        "--data normal --seed 0 --direction forward",
        lambda c: _valid(c) and c.dtype == "float64" and c.spec.activation in ("selu", "hard_sigmoid")),
    Deviation(
        ("tinygrad",),
        "tinygrad's relu, relu6, hardsigmoid and elu (celu, selu) return a number for NaN; "
        "standalone: conformance/repros/nan_through_rectifiers.py",
        "python -m conformance --backend tinygrad --case "
        "'g1_mb2_ic3id5ih6iw8_oc6_kd2kh3kw2_sd1sh1sw1_dd1dh1dw1_same_cl_elu_bias' --dtype float32 "
        "--data special --seed 8 --direction forward",
        lambda c: (_valid(c) and c.data == "special"
                   and c.spec.activation in ("relu", "relu6", "hard_sigmoid", "elu", "celu", "selu"))),
    Deviation(
        ("tinygrad",),
        "tinygrad's tanh is 2 * sigmoid(2x) - 1, which loses every digit near 0 (tanh(1e-6) 7% off, "
        "tanh of a subnormal 0; tanh_shrink and mish inherit it), and elu/celu/selu compute "
        "exp(x) - 1; standalone: conformance/repros/tinygrad_activations.py",
        "python -m conformance --backend tinygrad --case "
        "'g1_mb1_ic1id1ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_tanh_nobias' --dtype float32 "
        "--data subnormal --seed 0 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("tanh", "tanh_shrink", "mish", "elu", "celu", "selu")),
    Deviation(
        ("tinygrad",),
        "tinygrad's relu6, hardsigmoid and hardswish are differences of two relus, which cancel for "
        "large inputs (relu6(1e8) = 8, relu6(1e30) = 0, hardswish(1e8) = 0); standalone: "
        "conformance/repros/tinygrad_activations.py",
        "python -m conformance --backend tinygrad --case "
        "'g1_mb2_ic1id1ih1iw1_oc5_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_valid_cl_relu6_nobias' --dtype float32 "
        "--data wide --seed 0 --direction forward",
        lambda c: _valid(c) and c.spec.activation in ("relu6", "hard_sigmoid", "hard_silu", "hard_swish")),
    Deviation(
        ("tinygrad",),
        "tinygrad's erf is float32-accurate in float64 too, so its exact gelu is (gelu(-0.31) 2e-8 "
        "relative off); standalone: conformance/repros/tinygrad_activations.py",
        "python -m conformance --backend tinygrad --case "
        "'g1_mb2_ic4id1ih4iw8_oc5_kd1kh4kw2_sd1sh4sw4_dd1dh1dw1_same_cf_gelu_nobias' --dtype float64 "
        "--data normal --seed 4971474 --direction forward",
        lambda c: _valid(c) and c.dtype == "float64" and c.spec.activation == "gelu"),
)


def _kernel_past_input(case) -> bool:
    """Some axis' dilated kernel is longer than the input (only 'same' padding allows it)."""
    spec = case.spec
    return any((k - 1) * d + 1 > n for k, d, n in zip(spec.kernel_size, spec.dilation_rate,
                                                      spec.in_spatial))


def _clamped_same_padding(case) -> bool:
    """'same' where an axis' total padding is negative and clamped to 0 (coverage's pad class)."""
    if not _valid(case):
        return False
    cls = classes(case.spec, case.dtype, case.strided)
    return any(cls[f"{axis}_pad"] == "clamped" for axis in AXES)


def known_deviation(backend: str, case: Case | InvalidCase) -> Deviation | None:
    return next((d for d in DEVIATIONS if backend in d.backends and d.applies(case)), None)
