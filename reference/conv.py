"""`conv3d`, the exact reference, and `evaluate`, which also returns what the error bound needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference.activations import apply_activation
from reference.loops import run_accumulate
from reference.spec import Conv3DSpec, check_bias_shape, spec_for_arrays

#: Floating formats every value of which float64 holds exactly.
EXACT_IN_FLOAT64 = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Evaluation:
    """The reference's answer for one call, in the input's layout, all float64.

    pre_activation: bias + sum x*w, within 2^-53*|y| + gamma_(K+1)(2^-53)^2 * abs_sum of exact;
    abs_sum: S = |bias| + sum |x*w| per element, the scale of the VERIFICATION.md bound;
    output: activation(pre_activation) evaluated in float64.
    """

    spec: Conv3DSpec
    pre_activation: np.ndarray
    abs_sum: np.ndarray
    output: np.ndarray


def check_floating(name: str, array: object) -> np.ndarray:
    """`array` as an ndarray, or a ValueError when it is not a non-empty float16/32/64 or bfloat16 array."""
    array = np.asarray(array)
    if array.dtype.name not in EXACT_IN_FLOAT64:
        raise ValueError(
            f"{name} must be a floating-point array ({', '.join(EXACT_IN_FLOAT64)}); "
            f"received dtype {array.dtype}"
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); Conv3D needs data")
    return array


def as_float64(name: str, array: object) -> np.ndarray:
    """`array` converted exactly to float64 (after `check_floating`)."""
    return check_floating(name, array).astype(np.float64)


def _channels_last(array: np.ndarray, spec: Conv3DSpec) -> np.ndarray:
    return array if spec.channels_last else np.moveaxis(array, 1, -1)


def _input_layout(array: np.ndarray, spec: Conv3DSpec) -> np.ndarray:
    return array if spec.channels_last else np.moveaxis(array, -1, 1)


def evaluate(x, kernel, bias=None, *, strides=1, padding="valid", data_format="channels_last",
             dilation_rate=1, groups=1, activation: str | Callable | None = None) -> Evaluation:
    """Run the naive loops of SPEC.md on (x, kernel, bias) and keep the bound's ingredients."""
    spec = spec_for_arrays(np.shape(x), np.shape(kernel), bias is not None, strides=strides,
                           padding=padding, data_format=data_format, dilation_rate=dilation_rate,
                           groups=groups, activation=activation)
    x64, w64 = as_float64("x", x), as_float64("kernel", kernel)
    if bias is None:
        b64 = np.zeros(spec.filters)
    else:
        b64 = as_float64("bias", bias)
        check_bias_shape(b64.shape, spec.filters)
    exact_products = all(np.asarray(a).dtype.itemsize <= 4 for a in (x, kernel))
    xpad = np.pad(_channels_last(x64, spec), ((0, 0), *spec.pads, (0, 0)))
    wt = np.ascontiguousarray(np.moveaxis(w64, -1, 0))
    out_cl = (spec.batch, *spec.output_spatial, spec.filters)
    pre, abs_sum = np.empty(out_cl), np.empty(out_cl)
    run_accumulate(xpad, wt, b64, spec.strides, spec.dilation_rate, spec.groups,
                   exact_products, pre, abs_sum)
    pre, abs_sum = _input_layout(pre, spec), _input_layout(abs_sum, spec)
    output = apply_activation(pre, activation)
    return Evaluation(spec, pre, abs_sum, output)


def conv3d(x, kernel, bias=None, *, strides=1, padding="valid", data_format="channels_last",
           dilation_rate=1, groups=1, activation: str | Callable | None = None) -> np.ndarray:
    """Conv3D exactly as keras.layers.Conv3D defines it (SPEC.md), as a float64 array.

    x: (N, D, H, W, C) or (N, C, D, H, W) by data_format; kernel: (kd, kh, kw, C/groups, F);
    bias: (F,) or None. Raises ValueError for every configuration SPEC.md rejects.
    """
    return evaluate(x, kernel, bias, strides=strides, padding=padding, data_format=data_format,
                    dilation_rate=dilation_rate, groups=groups, activation=activation).output
