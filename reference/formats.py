"""Floating-point formats a backend may compute in (VERIFICATION.md §2): the one table of them.

Each compute precision has the significand bits of its inputs and of its accumulator, and a
storage format whose range and subnormals apply to its sums (TF32 rounds its inputs to 11 bits
but accumulates in float32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Format:
    input_bits: int  # significand bits (implicit bit included) of the rounded inputs
    accumulator_bits: int  # significand bits of the sums
    storage: str  # the IEEE-like format holding its sums: range, subnormals

    @property
    def unit_roundoff(self) -> float:
        """u of the inputs' rounding: 2^-p for p significand bits."""
        return 2.0 ** -self.input_bits


FORMATS = {
    "float64": Format(53, 53, "float64"),
    "float32": Format(24, 24, "float32"),
    "tf32": Format(11, 24, "float32"),
    "float16": Format(11, 11, "float16"),
    "bfloat16": Format(8, 8, "bfloat16"),
}


#: The formats arrays are stored in (a dtype a caller may pass); the others are compute precisions.
DTYPES = tuple(name for name, f in FORMATS.items() if f.storage == name)


def numpy_dtype(name: str) -> np.dtype:
    """NumPy dtype by name, bfloat16 from ml_dtypes (a JAX dependency) when installed."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def unit_roundoff(precision: str) -> float:
    return FORMATS[precision].unit_roundoff


def finfo(precision: str) -> np.finfo:
    """Range and subnormals of the format a precision's sums are held in."""
    return np.finfo(numpy_dtype(FORMATS[precision].storage))
