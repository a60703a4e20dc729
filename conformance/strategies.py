"""Hypothesis strategies: valid Conv3D problems (every argument and trap of VERIFICATION.md §4),
data regimes, dtypes a backend declares, and invalid calls (each SPEC.md error)."""

from __future__ import annotations

from hypothesis import strategies as st

from backends.base import Capabilities
from conformance.cases import Case, InvalidCase
from reference.activations import ACTIVATIONS
from reference.spec import Conv3DSpec
from runtime.data import EXTREME, REALISTIC

MAX_MACS = 3_000_000  # keeps one reference evaluation around a millisecond
# The exact regime's activations: computed by exact operations, so the result stays bitwise exact.
EXACT_ACTIVATIONS = (None, *(name for name, info in ACTIVATIONS.items() if info.exact_ops))
# Extreme data probe the convolution's NaN/inf/overflow handling; these activations have no
# intermediate overflow of their own (Keras' squareplus, for one, squares its input).
EXTREME_ACTIVATIONS = (*EXACT_ACTIVATIONS, "leaky_relu", "sigmoid", "tanh", "elu")
ALL_ACTIVATIONS = (None, *ACTIVATIONS)


@st.composite
def _channels(draw, caps: Capabilities) -> tuple[int, int, int]:
    """(groups, C/groups, F/groups), including depthwise and odd channel tails."""
    kind = draw(st.sampled_from(["plain", "plain", "grouped", "depthwise", "wide"]))
    if kind in ("grouped", "depthwise") and not caps.groups:
        kind = "plain"
    if kind == "plain":
        return 1, draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if kind == "wide":  # channel counts around SIMD widths: 8, 16 and odd tails 17, 33
        return 1, draw(st.sampled_from([7, 8, 16, 17, 33])), draw(st.sampled_from([1, 3, 8, 9]))
    if kind == "grouped":
        return draw(st.integers(2, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return draw(st.integers(2, 6)), 1, draw(st.sampled_from([1, 1, 2]))  # depthwise (multiplier)


@st.composite
def _axes(draw, caps: Capabilities, padding: str):
    """Per-axis (size, kernel, stride, dilation); anisotropic, never stride>1 with dilation>1."""
    mode = draw(st.sampled_from(["plain", "strided", "strided", "dilated"]))
    if mode == "dilated" and not caps.dilation:
        mode = "strided"
    sizes, kernels, strides, dilations = [], [], [], []
    for _ in range(3):
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3)) if mode == "strided" else 1
        d = draw(st.integers(1, 3)) if mode == "dilated" else 1
        ek = d * (k - 1) + 1
        low = 1 if padding == "same" else ek  # "same": the kernel may exceed the input
        # half the draws sit on the boundary: the smallest input (output extent 1) or one past
        # a stride multiple (a last partial block, an odd total of "same" padding)
        sizes.append(draw(st.one_of(st.sampled_from([low, low + s, low + s + 1]),
                                    st.integers(low, low + 6))))
        kernels.append(k), strides.append(s), dilations.append(d)
    return tuple(sizes), tuple(kernels), tuple(strides), tuple(dilations)


@st.composite
def specs(draw, caps: Capabilities, activations=ALL_ACTIVATIONS) -> Conv3DSpec:
    """A valid Conv3DSpec within the backend's declared features, small enough for the reference."""
    groups, cg, fg = draw(_channels(caps))
    padding = draw(st.sampled_from(["valid", "same"]))
    sizes, kernel, strides, dilation = draw(_axes(caps, padding))
    data_format = draw(st.sampled_from(caps.data_formats))
    batch = draw(st.integers(1, 3))
    activation = draw(st.sampled_from([a for a in activations if a not in caps.unsupported_activations]))
    channels = groups * cg
    shape = (batch, *sizes, channels) if data_format == "channels_last" else (batch, channels, *sizes)
    spec = Conv3DSpec(filters=groups * fg, kernel_size=kernel, input_shape=shape, strides=strides,
                      padding=padding, data_format=data_format, dilation_rate=dilation,
                      groups=groups, activation=activation, use_bias=draw(st.booleans()))
    if spec.activation == "glu" and spec.output_shape[-1] % 2:
        spec = Conv3DSpec(**{**spec.keras_kwargs(), "activation": None}, input_shape=shape)
    if spec.flops // 2 > MAX_MACS:  # shrink the batch and filters rather than reject the draw
        spec = Conv3DSpec(**{**spec.keras_kwargs(), "filters": groups},
                          input_shape=(1, *shape[1:]))
    return spec


def cases(caps: Capabilities, regimes: tuple[str, ...], check: str,
          direction: str = "forward") -> st.SearchStrategy[Case]:
    """Cases for the given data regimes, in the dtypes the backend declares."""
    activations = {"exact": EXACT_ACTIVATIONS, "extreme": EXTREME_ACTIVATIONS}.get(check, ALL_ACTIVATIONS)
    return st.builds(Case, spec=specs(caps, activations), dtype=st.sampled_from(caps.dtypes),
                     data=st.sampled_from(regimes), seed=st.integers(0, 2**31 - 1),
                     check=st.just(check), direction=st.just(direction))


def realistic_cases(caps: Capabilities, direction: str = "forward") -> st.SearchStrategy[Case]:
    return cases(caps, REALISTIC, "realistic", direction)


def extreme_cases(caps: Capabilities, direction: str = "forward") -> st.SearchStrategy[Case]:
    return cases(caps, EXTREME, "extreme", direction)


def exact_cases(caps: Capabilities, direction: str = "forward") -> st.SearchStrategy[Case]:
    return cases(caps, ("exact",), "exact", direction)


# ---- invalid calls ------------------------------------------------------------------------
_BAD_TUPLES = [0, -1, (1, 0, 1), (2, 2), (1, 1, 1, 1), (1.5, 1, 1), "2", None]


RULES = ("strides", "dilation_rate", "padding", "data_format", "groups", "groups_filters",
         "groups_channels", "stride_with_dilation", "output_size", "activation", "rank", "dtype",
         "kernel_channels")


@st.composite
def invalid_cases(draw, direction: str = "forward") -> InvalidCase:
    """One SPEC.md rule broken on an otherwise valid call; backward adds a dy of the wrong shape."""
    c, f = draw(st.sampled_from([(2, 4), (4, 2), (3, 6)]))
    shape, kernel = (1, 5, 6, 7, c), (2, 2, 2, c, f)
    rule = draw(st.sampled_from(RULES + ("dy_shape",) * (direction == "backward")))
    args: dict = {}
    dtype = "float32"
    dy_shape = None
    if rule == "dy_shape":  # the output is (1, 4, 5, 6, f): one axis off by one
        axis = draw(st.integers(0, 4))
        dy_shape = tuple(n + (i == axis) for i, n in enumerate((1, 4, 5, 6, f)))
    elif rule in ("strides", "dilation_rate"):
        args[rule] = draw(st.sampled_from(_BAD_TUPLES))
    elif rule == "padding":
        args["padding"] = draw(st.sampled_from(["causal", "full", "", "valid ", [[1, 1]] * 3]))
    elif rule == "data_format":
        args["data_format"] = draw(st.sampled_from(["channels_middle", "NDHWC", "ncdhw"]))
    elif rule == "groups":
        args["groups"] = draw(st.sampled_from([0, -2]))
    elif rule == "groups_filters":  # F not divisible by groups, C is
        shape, kernel, args["groups"] = (1, 5, 6, 7, 4), (2, 2, 2, 2, 3), 2
    elif rule == "groups_channels":  # C not divisible by groups, F is
        shape, kernel, args["groups"] = (1, 5, 6, 7, 3), (2, 2, 2, 1, 4), 2
    elif rule == "stride_with_dilation":
        args["strides"] = draw(st.sampled_from([(2, 1, 1), (1, 1, 3), 2]))
        args["dilation_rate"] = draw(st.sampled_from([(1, 2, 1), (2, 1, 1), 2]))
    elif rule == "output_size":  # valid padding with an effective kernel larger than the input
        k = draw(st.integers(7, 9))  # the input's H is 6
        kernel = (2, k, 2, c, f)
        args["dilation_rate"] = draw(st.sampled_from([1, (1, 2, 1)]))
    elif rule == "activation":
        args["activation"] = draw(st.sampled_from(["Relu", "relu7", "GELU", "swish2", ""]))
    elif rule == "rank":
        shape = draw(st.sampled_from([(5, 6, 7, c), (1, 1, 5, 6, 7, c)]))
    elif rule == "dtype":
        dtype = draw(st.sampled_from(["int32", "int64", "complex64", "bool"]))
    else:  # kernel input channels disagree with x
        kernel = (2, 2, 2, c + 1, f)
    if draw(st.booleans()) and rule not in ("rank", "data_format"):  # the same in channels_first
        shape = (shape[0], shape[-1], *shape[1:-1])
        args.setdefault("data_format", "channels_first")
        dy_shape = dy_shape and (dy_shape[0], dy_shape[-1], *dy_shape[1:-1])
    return InvalidCase(rule=rule, x_shape=tuple(shape), kernel_shape=tuple(kernel), args=args,
                       bias=draw(st.booleans()), dtype=dtype, direction=direction, dy_shape=dy_shape)

