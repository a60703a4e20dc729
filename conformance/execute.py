"""Run one case on a backend worker and turn what happened into a report row with a status."""

from __future__ import annotations

import numpy as np

from backends.worker import Worker
from conformance.cases import Case, InvalidCase
from conformance.data import make_arrays, numpy_dtype
from conformance.judge import (
    ACCEPTED_INVALID,
    CRASHED,
    FAIL,
    FAILING,
    KNOWN_FAIL,
    NONDETERMINISTIC,
    PASS,
    REJECTED_VALID,
    UNSUPPORTED,
    judge,
)
from conformance.known_deviations import known_deviation
from reference.conv import evaluate

REFUSALS = ("ValueError", "TypeError", "NotImplementedError")


def _features(case: Case) -> dict:
    spec = case.spec
    return dict(
        padding=spec.padding,
        stride="strided" if max(spec.strides) > 1 else "unit",
        dilation="dilated" if max(spec.dilation_rate) > 1 else "none",
        groups=("depthwise" if spec.groups == spec.in_channels and spec.groups > 1
                else "grouped" if spec.groups > 1 else "dense"),
        data_format=spec.data_format, activation=spec.activation or "linear",
        bias=spec.use_bias,
    )


def _row(backend: str, case: Case | InvalidCase, status: str, message: str = "", **extra) -> dict:
    deviation = known_deviation(backend, case) if status in FAILING else None
    if deviation:
        status, message = KNOWN_FAIL, f"known deviation: {deviation.reason} [{status}: {message}]"
    row = dict(backend=backend, check=case.check, case=case.id, status=status, message=message,
               repro=case.repro(backend), dtype=case.dtype)
    if isinstance(case, Case):
        row.update(descriptor=case.spec.descriptor, data=case.data, seed=case.seed,
                   flops=case.spec.flops, **_features(case))
    else:
        row.update(descriptor="", data="invalid", rule=case.rule)
    row.update(extra)
    return row


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def run_case(worker: Worker, case: Case, repeats: int = 2) -> dict:
    """Judge the backend on a valid case; runs it `repeats` times to check determinism."""
    caps = worker.capabilities
    reason = caps.unsupported(case.spec, case.dtype)
    if reason:
        return _row(worker.name, case, UNSUPPORTED, reason)
    precision = caps.precision(case.dtype)
    x, kernel, bias = make_arrays(case.spec, case.dtype, case.data, case.seed, precision)
    ev = evaluate(x, kernel, bias, **case.spec.conv_kwargs())
    outcome = worker.call(x, kernel, bias, case.spec.conv_kwargs(), repeats=repeats)
    if outcome.kind == "crashed":
        return _row(worker.name, case, CRASHED, outcome.message, seconds=outcome.seconds)
    if outcome.kind == "raised":
        status = REJECTED_VALID if outcome.error_type in REFUSALS else CRASHED
        return _row(worker.name, case, status, f"{outcome.error_type}: {outcome.message}",
                    seconds=outcome.seconds)
    verdicts = [judge(ev, out, x, kernel, case.dtype, precision, exact=case.data == "exact",
                      flushes_subnormals=caps.flushes_subnormals) for out in outcome.outputs]
    verdict = max(verdicts, key=lambda v: (v.status == FAIL, v.max_ratio))
    status, message = verdict.status, verdict.message
    if status != FAIL and not all(bitwise_equal(outcome.outputs[0], o) for o in outcome.outputs):
        status, message = NONDETERMINISTIC, f"{repeats} runs on the same input differ bitwise"
    worst = verdict.worst or {}
    return _row(worker.name, case, status, message, max_ratio=verdict.max_ratio,
                zero_fraction=verdict.zero_fraction, seconds=outcome.seconds,
                precision=precision, **{f"worst_{k}": v for k, v in worst.items()})


def invalid_arrays(case: InvalidCase):
    dtype = numpy_dtype(case.dtype)
    x = np.ones(case.x_shape).astype(dtype)
    kernel = np.ones(case.kernel_shape).astype(dtype)
    bias = np.zeros(case.kernel_shape[-1]).astype(dtype) if case.bias else None
    return x, kernel, bias


def run_invalid(worker: Worker, case: InvalidCase) -> dict:
    """An invalid call must raise ValueError (TypeError is accepted for a non-float dtype)."""
    outcome = worker.call(*invalid_arrays(case), case.args, repeats=1)
    if outcome.kind == "ok":
        return _row(worker.name, case, ACCEPTED_INVALID,
                    f"returned an array of shape {outcome.outputs[0].shape} for an invalid call")
    if outcome.kind == "crashed":
        return _row(worker.name, case, CRASHED, outcome.message)
    expected = ("ValueError", "TypeError") if case.rule == "dtype" else ("ValueError",)
    if outcome.error_type in expected:
        return _row(worker.name, case, PASS, outcome.message.splitlines()[0])
    return _row(worker.name, case, CRASHED,
                f"raised {outcome.error_type} instead of ValueError: {outcome.message}")
