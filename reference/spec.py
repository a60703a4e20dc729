"""Conv3DSpec: one Conv3D problem (Keras layer arguments plus input shape), validated as Keras does.

Every normalisation and ValueError of SPEC.md lives here, with Keras' wording, so that the
reference, the backends and the conformance generators agree on what a valid problem is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reference.activations import ACTIVATIONS

Triple = tuple[int, int, int]
Activation = str | Callable | None

DATA_FORMATS = ("channels_last", "channels_first")
PADDINGS = ("valid", "same")


def _plain(value: object) -> object:
    """`value` with NumPy scalars and arrays as Python ones, so messages read `0`, not `np.int64(0)`."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


def _triple(value: object, name: str) -> Triple:
    """Keras' standardize_tuple: an int is repeated, anything else must be 3 ints > 0."""
    if isinstance(value, bool):
        value = [value]
    if isinstance(value, int):
        items: tuple = (value,) * 3
    else:
        try:
            items = tuple(value)  # type: ignore[arg-type]
        except TypeError:
            items = ()
        if len(items) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            raise ValueError(
                f"The `{name}` argument must be a tuple of 3 integers. Received {name}={_plain(value)}"
            )
    bad = [v for v in items if v <= 0]
    if bad:
        raise ValueError(
            f"The `{name}` argument must be a tuple of 3 integers. Received {name}={_plain(value)}, "
            f"including values {set(bad)} that do not satisfy `value > 0`"
        )
    return items  # type: ignore[return-value]


def _padding(value: object) -> str:
    padding = value.lower() if isinstance(value, str) else None
    if padding not in PADDINGS:
        raise ValueError(
            f"The `padding` argument must be one of {{'valid', 'same'}}. Received: {value}"
        )
    return padding


def _data_format(value: object) -> str:
    data_format = str(value).lower()
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={data_format}"
        )
    return data_format


def _activation(value: Activation) -> Activation:
    if value is None or callable(value):
        return value
    if isinstance(value, str) and value in ACTIVATIONS:
        return value
    if value == "threshold":
        raise ValueError(
            "Activation 'threshold' needs `threshold` and `default_value` arguments; "
            "pass a callable instead."
        )
    raise ValueError(f"Could not interpret activation function identifier: {value}")


def axis_output(n: int, k: int, s: int, d: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) along one spatial axis, as SPEC.md defines them."""
    ek = d * (k - 1) + 1
    if padding == "valid":
        return (n - ek) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + ek - n, 0)
    return out, total // 2, total - total // 2


@dataclass(frozen=True)
class Conv3DSpec:
    """A Conv3D problem: Keras `Conv3D` arguments plus the input shape (in data_format layout).

    Construction normalises and validates exactly as Keras does; an invalid problem raises
    ValueError with Keras' message. Derived quantities are properties.
    """

    filters: int
    kernel_size: Triple | int
    input_shape: tuple[int, int, int, int, int]
    strides: Triple | int = 1
    padding: str = "valid"
    data_format: str = "channels_last"
    dilation_rate: Triple | int = 1
    groups: int = 1
    activation: Activation = None
    use_bias: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.filters, int) or self.filters <= 0:
            raise ValueError(
                "Invalid value for argument `filters`. Expected a strictly positive value. "
                f"Received filters={_plain(self.filters)}."
            )
        if not isinstance(self.groups, int) or self.groups <= 0:
            raise ValueError(
                f"The number of groups must be a positive integer. Received: groups={_plain(self.groups)}."
            )
        set_(self, "kernel_size", _triple(self.kernel_size, "kernel_size"))
        set_(self, "strides", _triple(self.strides, "strides"))
        set_(self, "dilation_rate", _triple(self.dilation_rate, "dilation_rate"))
        set_(self, "padding", _padding(self.padding))
        set_(self, "data_format", _data_format(self.data_format))
        set_(self, "activation", _activation(self.activation))
        set_(self, "use_bias", bool(self.use_bias))
        if self.filters % self.groups:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}."
            )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self._check_input_shape()

    def _check_input_shape(self) -> None:
        shape = tuple(self.input_shape)
        if len(shape) != 5 or not all(isinstance(v, int) and v > 0 for v in shape):
            raise ValueError(
                "Conv3D expects a rank-5 input of positive sizes (batch, 3 spatial, channels). "
                f"Received input_shape={shape}"
            )
        object.__setattr__(self, "input_shape", shape)
        if self.in_channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of groups. "
                f"Received groups={self.groups}, but the input has {self.in_channels} channels "
                f"(full input shape is {shape})."
            )
        if min(self.output_spatial) <= 0:
            raise ValueError(
                "Computed output size would be zero or negative. Received "
                f"`inputs shape={shape}`, `kernel shape={self.kernel_shape}`, "
                f"`dilation_rate={self.dilation_rate}`, `strides={self.strides}`, "
                f"`padding={self.padding}`."
            )

    # ---- shapes -------------------------------------------------------------------------
    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def in_channels(self) -> int:
        return self.input_shape[4] if self.channels_last else self.input_shape[1]

    @property
    def in_spatial(self) -> Triple:
        s = self.input_shape
        return (s[1], s[2], s[3]) if self.channels_last else (s[2], s[3], s[4])

    @property
    def kernel_shape(self) -> tuple[int, int, int, int, int]:
        return (*self.kernel_size, self.in_channels // self.groups, self.filters)

    def _axes(self) -> list[tuple[int, int, int]]:
        return [
            axis_output(n, k, s, d, self.padding)
            for n, k, s, d in zip(self.in_spatial, self.kernel_size, self.strides, self.dilation_rate)
        ]

    @property
    def output_spatial(self) -> Triple:
        return tuple(a[0] for a in self._axes())  # type: ignore[return-value]

    @property
    def pads(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        """Per spatial axis (before, after) zero padding; the odd cell goes after."""
        return tuple((a[1], a[2]) for a in self._axes())  # type: ignore[return-value]

    @property
    def output_shape(self) -> tuple[int, int, int, int, int]:
        d, h, w = self.output_spatial
        if self.channels_last:
            return (self.batch, d, h, w, self.filters)
        return (self.batch, self.filters, d, h, w)

    @property
    def taps(self) -> int:
        """K, the number of products summed per output element (padding taps included)."""
        return math.prod(self.kernel_size) * self.in_channels // self.groups

    @property
    def grad_terms(self) -> tuple[int, int, int]:
        """Products summed per element of dx (kd*kh*kw*F/groups, padding's included), dkernel and
        dbias (N*Do*Ho*Wo each)."""
        outputs = self.batch * math.prod(self.output_spatial)
        return math.prod(self.kernel_size) * self.filters // self.groups, outputs, outputs

    @property
    def flops(self) -> int:
        """Dense FLOP count 2*N*F*Dout*Hout*Wout*kd*kh*kw*C/groups (padding taps included)."""
        return 2 * self.batch * self.filters * math.prod(self.output_spatial) * self.taps

    def conv_kwargs(self) -> dict:
        """Keyword arguments of `reference.conv3d` (and of every backend's conv3d)."""
        return dict(
            strides=self.strides, padding=self.padding, data_format=self.data_format,
            dilation_rate=self.dilation_rate, groups=self.groups, activation=self.activation,
        )

    def keras_kwargs(self) -> dict:
        """Arguments for `keras.layers.Conv3D(**spec.keras_kwargs())`."""
        return dict(filters=self.filters, kernel_size=self.kernel_size, use_bias=self.use_bias,
                    **self.conv_kwargs())

    # ---- descriptor ---------------------------------------------------------------------
    @property
    def descriptor(self) -> str:
        """Canonical benchdnn-style id:
        g2_mb2_ic4id8ih8iw8_oc6_kd2kh2kw3_sd2sh1sw2_dd1dh1dw1_same_cl_relu_bias."""
        if callable(self.activation):
            raise ValueError("a spec with a callable activation has no descriptor")
        (d, h, w), (kd, kh, kw) = self.in_spatial, self.kernel_size
        (sd, sh, sw), (dd, dh, dw) = self.strides, self.dilation_rate
        return "_".join([
            f"g{self.groups}", f"mb{self.batch}", f"ic{self.in_channels}id{d}ih{h}iw{w}",
            f"oc{self.filters}", f"kd{kd}kh{kh}kw{kw}", f"sd{sd}sh{sh}sw{sw}",
            f"dd{dd}dh{dh}dw{dw}", self.padding, "cl" if self.channels_last else "cf",
            self.activation or "linear", "bias" if self.use_bias else "nobias",
        ])

    @classmethod
    def from_descriptor(cls, text: str) -> Conv3DSpec:
        """Parse `descriptor` back into a spec (raises ValueError naming the bad part)."""
        match = _DESCRIPTOR.fullmatch(text.strip())
        if not match:
            raise ValueError(
                f"not a Conv3D descriptor: {text!r}; expected the form "
                "g2_mb2_ic4id8ih8iw8_oc6_kd2kh2kw3_sd2sh1sw2_dd1dh1dw1_same_cl_relu_bias"
            )
        v = {k: (int(x) if x.isdigit() else x) for k, x in match.groupdict().items()}
        channels_last = v["fmt"] == "cl"
        spatial = (v["id"], v["ih"], v["iw"])
        shape = (v["mb"], *spatial, v["ic"]) if channels_last else (v["mb"], v["ic"], *spatial)
        return cls(
            filters=v["oc"], kernel_size=(v["kd"], v["kh"], v["kw"]), input_shape=shape,
            strides=(v["sd"], v["sh"], v["sw"]), padding=v["pad"],
            data_format="channels_last" if channels_last else "channels_first",
            dilation_rate=(v["dd"], v["dh"], v["dw"]), groups=v["g"],
            activation=None if v["act"] == "linear" else v["act"], use_bias=v["bias"] == "bias",
        )


_DESCRIPTOR = re.compile(
    r"g(?P<g>\d+)_mb(?P<mb>\d+)_ic(?P<ic>\d+)id(?P<id>\d+)ih(?P<ih>\d+)iw(?P<iw>\d+)"
    r"_oc(?P<oc>\d+)_kd(?P<kd>\d+)kh(?P<kh>\d+)kw(?P<kw>\d+)_sd(?P<sd>\d+)sh(?P<sh>\d+)sw(?P<sw>\d+)"
    r"_dd(?P<dd>\d+)dh(?P<dh>\d+)dw(?P<dw>\d+)_(?P<pad>valid|same)_(?P<fmt>cl|cf)"
    r"_(?P<act>[a-z0-9_]+)_(?P<bias>bias|nobias)"
)


def check_bias_shape(shape: tuple[int, ...], filters: int) -> None:
    """SPEC.md: a bias has shape (filters,); anything else (a scalar, (F, 1), ...) is a ValueError."""
    if tuple(shape) != (filters,):
        raise ValueError(f"bias must have shape ({filters},); received {tuple(shape)}")


def spec_for_arrays(x_shape: Iterable[int], kernel_shape: Iterable[int], has_bias: bool,
                    **conv_args) -> Conv3DSpec:
    """The spec implied by a conv3d call; checks the kernel against the input, with clear errors."""
    x_shape, kernel_shape = tuple(x_shape), tuple(kernel_shape)
    if len(kernel_shape) != 5:
        raise ValueError(
            f"kernel must have rank 5 (kd, kh, kw, C/groups, F); received shape {kernel_shape}"
        )
    if len(x_shape) != 5:
        raise ValueError(
            f"Conv3D expects a rank-5 input (batch, 3 spatial, channels); received shape {x_shape}"
        )
    conv_args.setdefault("kernel_size", kernel_shape[:3])
    spec = Conv3DSpec(filters=kernel_shape[4], input_shape=x_shape, use_bias=has_bias, **conv_args)
    if spec.kernel_shape != kernel_shape:
        raise ValueError(
            f"kernel shape {kernel_shape} does not fit the input: with {spec.in_channels} input "
            f"channels and groups={spec.groups} it must be {spec.kernel_shape}"
        )
    return spec
