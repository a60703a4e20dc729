"""The correctness gate: a timing counts only for an output verified on the same run.

Small layers are judged against the exact reference. For large ones the truth is numpy-im2col
(im2col + NumPy's GEMM) in float64 (with S = conv(|x|, |w|) + |b| for the bound), itself first
checked against the reference on a reduced copy of the layer; its own error, gamma_(K+1)(2^-53)
* S, is added to the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.numpy_im2col import NumpyIm2col
from conformance.fixed import reduced_spec
from conformance.judge import Verdict, gamma, judge
from reference.activations import apply_activation
from reference.conv import Evaluation, evaluate
from reference.spec import Conv3DSpec
from runtime.data import make_arrays
from runtime.records import Status

REFERENCE_MAX_MACS = 200_000_000  # about a second of the compiled reference on 2 cores


@dataclass(frozen=True)
class Truth:
    evaluation: Evaluation
    source: str
    extra_error: np.ndarray | float = 0.0


def _numpy_float64(spec: Conv3DSpec, x, kernel, bias) -> Truth:
    backend = NumpyIm2col()
    args = spec.conv_kwargs() | dict(activation=None)
    x64, w64 = x.astype(np.float64), kernel.astype(np.float64)
    b64 = None if bias is None else bias.astype(np.float64)
    pre = backend.conv3d(x64, w64, b64, **args)
    abs_sum = backend.conv3d(np.abs(x64), np.abs(w64), None if b64 is None else np.abs(b64), **args)
    ev = Evaluation(spec, pre, abs_sum, apply_activation(pre, spec.activation))
    return Truth(ev, "numpy-im2col float64", 2 * gamma(spec.taps + 1, 2.0**-53) * abs_sum)


def numpy_float64_trusted(spec: Conv3DSpec, seed: int = 0) -> bool:
    """numpy-im2col float64 agrees with the reference (float64 bound) on a reduced copy of `spec`."""
    small = reduced_spec(spec)
    x, w, b = make_arrays(small, "float64", "normal", seed)
    truth = _numpy_float64(small, x, w, b)
    got = truth.evaluation.output
    verdict = judge(evaluate(x, w, b, **small.conv_kwargs()), got, x, w, "float64", "float64")
    return verdict.status == Status.PASS


def truth_for(spec: Conv3DSpec, x, kernel, bias) -> Truth:
    if spec.flops // 2 <= REFERENCE_MAX_MACS:
        return Truth(evaluate(x, kernel, bias, **spec.conv_kwargs()), "reference")
    if not numpy_float64_trusted(spec):
        raise RuntimeError(f"numpy-im2col float64 disagrees with the reference on a reduced "
                           f"{spec.descriptor}: no trusted truth for this layer")
    return _numpy_float64(spec, x, kernel, bias)


def verify(truth: Truth, got: np.ndarray, x, kernel, dtype: str, precision: str,
           flushes_subnormals: bool) -> Verdict:
    return judge(truth.evaluation, got, x, kernel, dtype, precision,
                 flushes_subnormals=flushes_subnormals, extra_error=truth.extra_error)
