"""Run one case on a backend worker and turn what happened into a record with a status."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from backends.base import activation_output_shape
from conformance.cases import Case, InvalidCase
from conformance.judge import REALISTIC, effective_precision, judge, output_problem, sum_error
from conformance.judge_grad import judge_grad
from conformance.known_deviations import known_deviation
from reference.conv import evaluate
from reference.formats import numpy_dtype
from reference.grad import evaluate_grad
from reference.spec import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import Record, Status
from runtime.worker import DECLINED, Worker

REFUSALS = ("ValueError", "TypeError", "NotImplementedError")


def case_record(backend: str, case: Case | InvalidCase, status: Status, message: str = "",
                **extra) -> Record:
    """The record of `case` with `status`; a failure matching a known deviation becomes KNOWN-FAIL."""
    deviation = known_deviation(backend, case) if status.failing else None
    if deviation:
        status, message = Status.KNOWN_FAIL, f"known deviation: {deviation.reason} [{status}: {message}]"
    if isinstance(case, Case):
        extra = dict(descriptor=case.spec.descriptor, data=case.data, seed=case.seed,
                     strided=case.strided, direction=case.direction) | extra
    else:
        extra = dict(data="invalid", rule=case.rule, direction=case.direction) | extra
    return Record(backend=backend, check=case.check, case=case.id, status=status, message=message,
                  repro=case.repro(backend), dtype=case.dtype, **extra)


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def refusal_status(error_type: str) -> Status:
    """A case the backend declined (backends.Unsupported), a refusal of a valid call (ValueError
    and the like) or anything else raised."""
    if error_type == DECLINED:
        return Status.UNSUPPORTED
    return Status.REJECTED_VALID if error_type in REFUSALS else Status.CRASHED


def case_bytes(spec: Conv3DSpec, dtype: str, repeats: int = 2) -> int:
    """Memory a case needs on either side of the pipe: its arrays, the reference's float64
    workspace (the padded input, three output-sized arrays) and the outputs sent back."""
    item = np.dtype(numpy_dtype(dtype)).itemsize
    padded = spec.batch * spec.in_channels * math.prod(
        n + before + after for n, (before, after) in zip(spec.in_spatial, spec.pads))
    out = math.prod(spec.output_shape)
    arrays = (math.prod(spec.input_shape) + math.prod(spec.kernel_shape) + spec.filters) * item
    return 2 * arrays + 8 * (math.prod(spec.input_shape) + padded + 3 * out) + out * item * 2 * repeats


def too_large(spec: Conv3DSpec, dtype: str, limit: int | None) -> str:
    """Why the case is refused up front ("" when it fits in `limit` bytes, or without a limit)."""
    need = case_bytes(spec, dtype)
    if limit is None or need <= limit:
        return ""
    return f"too large: needs about {need / 2**30:.2f} GiB, the memory cap is {limit / 2**30:.2f} GiB"


def run_case(worker: Worker, case: Case, repeats: int = 2) -> Record:
    """Judge the backend on a valid case; runs it `repeats` times to check determinism."""
    caps = worker.capabilities
    reason = caps.unsupported(case.spec, case.dtype, case.direction) or too_large(
        case.spec, case.dtype, worker.memory_cap)
    if reason:
        return case_record(worker.name, case, Status.UNSUPPORTED, reason)
    precision = caps.precision(case.dtype, case.direction)
    terms = max(case.spec.grad_terms) if case.direction == "backward" else case.spec.taps + 1
    if case.data != "exact" and not np.isfinite(sum_error(terms, precision, case.dtype)):
        return case_record(worker.name, case, Status.UNSUPPORTED,
                           f"the declared {precision} admits no error bound for sums of {terms} terms "
                           "(K*u >= 1): exact regime only")
    x, kernel, bias = make_arrays(case.spec, case.dtype, case.data, case.seed, precision)
    if case.direction == "backward":
        return _run_grad_case(worker, case, x, kernel, bias, precision, repeats)
    ev = evaluate(x, kernel, bias, **case.spec.conv_kwargs())
    outcome = worker.call(x, kernel, bias, case.spec.conv_kwargs(), repeats=repeats,
                          strided=case.strided)
    unusable = _unusable(worker, case, outcome)
    if unusable:
        return unusable
    verdicts = [judge(ev, out, x, kernel, case.dtype, precision, exact=case.data == "exact",
                      flushes_subnormals=caps.flushes_subnormals) for out in outcome.outputs]
    verdict = max(verdicts, key=lambda v: (v.status == Status.FAIL, v.max_ratio))
    status, message = verdict.status, verdict.message
    if status != Status.FAIL and not all(bitwise_equal(outcome.outputs[0], o) for o in outcome.outputs):
        status, message = Status.NONDETERMINISTIC, f"{repeats} runs on the same input differ bitwise"
    effective = (effective_precision(ev, outcome.outputs[0], x, kernel, case.dtype, caps.flushes_subnormals)
                 if case.data in REALISTIC and not output_problem(outcome.outputs[0], ev.output.shape,
                                                                  case.dtype) else "")
    return case_record(worker.name, case, status, message, max_ratio=verdict.max_ratio,
                       zero_fraction=verdict.zero_fraction, seconds=outcome.seconds,
                       precision=precision, effective=effective, worst=verdict.worst)


def refusal_message(outcome) -> str:
    """What a raised outcome's record says: a declined case by its reason alone."""
    if outcome.error_type == DECLINED:
        return f"declined: {outcome.message.splitlines()[0] if outcome.message else ''}"
    return f"{outcome.error_type}: {outcome.message}"


def _unusable(worker: Worker, case: Case, outcome) -> Record | None:
    """The record of a call that crashed, raised or wrote into its inputs (None otherwise)."""
    if outcome.kind == "crashed":
        return case_record(worker.name, case, Status.CRASHED, outcome.message, seconds=outcome.seconds)
    if outcome.kind == "raised":
        return case_record(worker.name, case, refusal_status(outcome.error_type),
                           refusal_message(outcome), seconds=outcome.seconds)
    if outcome.changed_inputs:
        return case_record(worker.name, case, Status.FAIL, modified_inputs(outcome.changed_inputs),
                           seconds=outcome.seconds)
    return None


def _same_grads(a, b) -> bool:
    if not (isinstance(a, tuple) and isinstance(b, tuple)):
        return False
    return all((p is None and q is None) or (p is not None and q is not None and bitwise_equal(p, q))
               for p, q in zip(a, b))


def _run_grad_case(worker: Worker, case: Case, x, kernel, bias, precision: str,
                   repeats: int) -> Record:
    """The backward direction: (dx, dkernel, dbias) against reference.evaluate_grad."""
    args = case.spec.conv_kwargs()
    shape = activation_output_shape(case.spec)
    dy = make_cotangent(case.spec, shape, case.dtype, case.data, case.seed, precision)
    ev = evaluate_grad(x, kernel, bias, dy, **args)
    outcome = worker.call_grad(x, kernel, bias, dy, args, repeats=repeats, strided=case.strided)
    unusable = _unusable(worker, case, outcome)
    if unusable:
        return unusable
    caps = worker.capabilities
    verdicts = [judge_grad(ev, out, x, kernel, case.dtype, precision, exact=case.data == "exact",
                           flushes_subnormals=caps.flushes_subnormals) for out in outcome.outputs]
    verdict = max(verdicts, key=lambda v: (v.status == Status.FAIL, v.max_ratio))
    status, message = verdict.status, verdict.message
    if status != Status.FAIL and not all(_same_grads(outcome.outputs[0], o) for o in outcome.outputs):
        status, message = Status.NONDETERMINISTIC, f"{repeats} runs on the same input differ bitwise"
    return case_record(worker.name, case, status, message, max_ratio=verdict.max_ratio,
                       zero_fraction=verdict.zero_fraction, seconds=outcome.seconds,
                       precision=precision, worst=verdict.worst)


def modified_inputs(names: tuple[str, ...]) -> str:
    return (f"modified its input{'s' if len(names) > 1 else ''} {', '.join(names)} "
            "(compared bitwise with a copy taken before the call)")


def invalid_arrays(case: InvalidCase):
    dtype = numpy_dtype(case.dtype)
    x = np.ones(case.x_shape).astype(dtype)
    kernel = np.ones(case.kernel_shape).astype(dtype)
    bias = np.zeros(case.kernel_shape[-1]).astype(dtype) if case.bias else None
    return x, kernel, bias


def run_invalid(worker: Worker, case: InvalidCase) -> Record:
    """An invalid call must raise ValueError (TypeError is accepted for a non-float dtype)."""
    if case.direction == "backward":
        if "backward" not in worker.capabilities.directions:
            return case_record(worker.name, case, Status.UNSUPPORTED,
                               "the backward direction is not supported")
        dy = np.ones(case.dy_shape or (1,), dtype=np.float32)
        outcome = worker.call_grad(*invalid_arrays(case), dy, case.args, repeats=1)
    else:
        outcome = worker.call(*invalid_arrays(case), case.args, repeats=1)
    if outcome.kind == "ok":
        return case_record(worker.name, case, Status.ACCEPTED_INVALID,
                       f"returned an array of shape {outcome.outputs[0].shape} for an invalid call")
    if outcome.kind == "crashed":
        return case_record(worker.name, case, Status.CRASHED, outcome.message)
    if outcome.error_type == DECLINED:
        return case_record(worker.name, case, Status.UNSUPPORTED, refusal_message(outcome))
    expected = ("ValueError", "TypeError") if case.rule == "dtype" else ("ValueError",)
    if outcome.error_type in expected:
        return case_record(worker.name, case, Status.PASS, outcome.message.splitlines()[0])
    return case_record(worker.name, case, Status.CRASHED,
                   f"raised {outcome.error_type} instead of ValueError: {outcome.message}")


def run_threads_case(workers: dict[int, Worker], case: Case, bitwise: bool) -> Record:
    """The case at each thread count (workers by thread count): every run judged as usual, and
    with `bitwise` (the backend declares thread-count-invariant results) every output, of every
    repeat at every count, bitwise equal to the first."""
    threads = ", ".join(str(n) for n in workers)
    runs = {n: run_case(worker, case) for n, worker in workers.items()}
    for n, record in runs.items():
        if not record.status.verified:  # failed, known to fail, declined...: as it came, at n threads
            return dataclasses.replace(record, message=f"at {n} thread{'s' * (n > 1)} (--threads {n} "
                                                       f"with the repro): {record.message}")
    first = next(iter(runs.values()))
    message = f"passes at {threads} threads"
    if bitwise:
        outputs = {n: _outputs(worker, case) for n, worker in workers.items()}
        if not all(outputs.values()):
            return case_record(first.backend, case, Status.CRASHED,
                               "a repeated run for the bitwise comparison returned nothing")
        reference = next(iter(outputs.values()))[0]
        for n, got in outputs.items():
            if not all(_same(reference, o) for o in got):
                return case_record(first.backend, case, Status.NONDETERMINISTIC,
                                   f"declared thread-count invariant, but the output at {n} threads "
                                   f"differs bitwise from the one at {next(iter(outputs))}")
        message += ", bitwise equal across them"
    return case_record(first.backend, case, first.status, message, max_ratio=first.max_ratio,
                       zero_fraction=first.zero_fraction, seconds=first.seconds,
                       precision=first.precision, worst=first.worst)


def _outputs(worker: Worker, case: Case) -> list:
    """The backend's outputs of two runs of `case` (grad: (dx, dkernel, dbias) tuples)."""
    precision = worker.capabilities.precision(case.dtype, case.direction)
    x, kernel, bias = make_arrays(case.spec, case.dtype, case.data, case.seed, precision)
    args = case.spec.conv_kwargs()
    if case.direction == "backward":
        dy = make_cotangent(case.spec, activation_output_shape(case.spec), case.dtype, case.data,
                            case.seed, precision)
        return worker.call_grad(x, kernel, bias, dy, args, strided=case.strided).outputs
    return worker.call(x, kernel, bias, args, strided=case.strided).outputs


def _same(a, b) -> bool:
    return _same_grads(a, b) if isinstance(a, tuple) else bitwise_equal(a, b)
