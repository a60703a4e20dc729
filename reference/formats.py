"""Floating-point formats a backend may compute in (VERIFICATION.md §2): the one table of them.

Each compute precision has the significand bits of its inputs and of its accumulator, a storage
format whose range and subnormals apply to its sums, and optionally the significand bits results
are rounded to between operations (TF32 rounds its inputs to 11 bits but accumulates in float32;
"bfloat16-float32", OpenVINO's CPU default on AMX, rounds inputs and every op's result to bfloat16
and accumulates in float32; "float32-per-op" sums low-precision inputs in float32 but rounds the
sum before adding the bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Format:
    input_bits: int  # significand bits (implicit bit included) of the rounded inputs
    accumulator_bits: int  # significand bits of the sums
    storage: str  # the IEEE-like format holding its sums: range, subnormals
    result_bits: int | None = None  # significand bits results are rounded to (None: the dtype's)
    per_op: bool = False  # the sum is rounded before the bias is added (one op at a time), not once

    @property
    def unit_roundoff(self) -> float:
        """u of the inputs' rounding: 2^-p for p significand bits."""
        return 2.0 ** -self.input_bits

    @property
    def exact_bits(self) -> int:
        """Integers below 2^exact_bits survive every sum and result rounding exactly."""
        return min(self.accumulator_bits, self.result_bits or self.accumulator_bits)


FORMATS = {
    "float64": Format(53, 53, "float64"),
    "float32": Format(24, 24, "float32"),
    # tensor cores may truncate instead of rounding while accumulating (Fasi et al. 2021): one bit less
    "tf32": Format(11, 23, "float32"),
    "bfloat16-float32": Format(8, 24, "float32", result_bits=8, per_op=True),
    # float16/bfloat16 inputs summed in float32, the sum rounded to the dtype before the bias is
    # added and rounded again (a framework running conv and add as two ops)
    "float32-per-op": Format(24, 24, "float32", per_op=True),
    "float16": Format(11, 11, "float16"),
    "bfloat16": Format(8, 8, "bfloat16"),
}


#: The formats arrays are stored in (a dtype a caller may pass); the others are compute precisions.
DTYPES = tuple(name for name, f in FORMATS.items() if f.storage == name)
#: The 16-bit dtypes, which backends usually sum in a wider precision.
LOW_PRECISION = ("float16", "bfloat16")


def numpy_dtype(name: str) -> np.dtype:
    """NumPy dtype by name, bfloat16 from ml_dtypes (a JAX dependency) when installed."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def unit_roundoff(precision: str) -> float:
    return FORMATS[precision].unit_roundoff


def finfo(precision: str):
    """Range and subnormals of the format a precision's sums are held in (ml_dtypes' finfo for
    bfloat16, which NumPy's does not know)."""
    storage = FORMATS[precision].storage
    if storage == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(numpy_dtype(storage))


def significand_bits(dtype: str) -> int:
    return FORMATS[dtype].input_bits


def input_roundoff(precision: str, dtype: str) -> float:
    """u of rounding a `dtype` input to `precision`'s inputs (0 when it keeps every bit)."""
    bits = FORMATS[precision].input_bits
    return 2.0 ** -bits if bits < significand_bits(dtype) else 0.0


def result_roundoff(precision: str, dtype: str) -> float:
    """u of one result rounding: the dtype's, or the coarser one `precision` rounds each op to."""
    bits = min(FORMATS[precision].result_bits or significand_bits(dtype), significand_bits(dtype))
    return 2.0 ** -bits


def sum_bits(precision: str, dtype: str) -> int:
    """Significand bits a sum of `dtype` products keeps in `precision`: the accumulator's, or the
    inputs' when they are rounded to fewer bits than the dtype has."""
    f = FORMATS[precision]
    inputs = f.input_bits if f.input_bits < significand_bits(dtype) else f.accumulator_bits
    return min(f.accumulator_bits, inputs)
