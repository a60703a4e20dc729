"""Benchmark every (workload, direction, backend): verify the output, time it, account FLOPs and
memory. Backward: the (dx, dkernel, dbias) call for a normal dy, counted as twice the forward's
dense FLOPs (dx and dkernel; the forward recomputation an activation needs is not counted)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.quiet import wait_until_quiet
from bench.verify import grad_truth_for, truth_for, verify
from bench.workloads import Workload
from conformance.execute import refusal_message
from reference.formats import numpy_dtype
from reference.spec import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import Record, Status, Timing
from runtime.timing import summarize
from runtime.worker import DECLINED, LoadError, Worker, available_memory

OUTPUT_SHARE = 0.1  # an output conversion taking this share of a call or more is warned about

WORKSPACE_ALLOWANCE = 256 * 2**20  # what an im2col-style backend may add on top of its operands


@dataclass(frozen=True)
class Settings:
    dtypes: tuple[str, ...] = ("float32",)  # each layer is timed in each, one after the other
    threads: int = os.cpu_count() or 1
    min_repeats: int = 5
    min_seconds: float = 1.0
    memory_budget: int = 0  # bytes; 0 means 40% of the memory available now
    seed: int = 0
    timeout_s: float = 600.0
    directions: tuple[str, ...] = ("forward",)
    rounds: int = 3  # each backend's timing split into rounds, interleaved with the other backends'


def memory_estimate(spec: Conv3DSpec, itemsize: int) -> int:
    """Operands and output in the bench dtype, a float64 copy of each for the truth (twice, for
    S), a framework copy of each, and the workspace allowance."""
    elements = np.prod(spec.input_shape) + np.prod(spec.kernel_shape) + np.prod(spec.output_shape)
    return int(elements * (2 * itemsize + 3 * 8) + WORKSPACE_ALLOWANCE)


def fit_to_budget(workload: Workload, budget: int, itemsize: int) -> tuple[Workload | None, str]:
    """The workload, batch-halved until it fits the memory budget (None when even batch 1 does not)."""
    spec, note = workload.spec, workload.note
    while memory_estimate(spec, itemsize) > budget:
        if spec.batch == 1:
            return None, (f"skipped: needs about {memory_estimate(spec, itemsize) / 2**30:.1f} GiB, "
                          f"budget {budget / 2**30:.1f} GiB")
        shape = (spec.batch // 2, *spec.input_shape[1:])
        note = f"batch reduced from {workload.spec.batch} to {shape[0]} to fit {budget / 2**30:.1f} GiB"
        spec = Conv3DSpec(**spec.keras_kwargs(), input_shape=shape)
    return Workload(workload.name, spec, workload.group, workload.sweep, workload.sweep_value, note), ""


def _record(workload: Workload, backend: str, settings: Settings, status: Status, message: str = "",
            direction: str = "forward", dtype: str = "float32", **extra) -> Record:
    return Record(backend=backend, check="bench", case=workload.name, status=status, message=message,
                  direction=direction,
                  dtype=dtype, descriptor=workload.spec.descriptor, group=workload.group,
                  sweep=workload.sweep, sweep_value=workload.sweep_value, note=workload.note,
                  threads=settings.threads, **extra)


class Bench:
    """Runs workloads x backends; each backend lives in its own worker process."""

    def __init__(self, backends: list[str], settings: Settings, peak_gflops: float) -> None:
        self.backends, self.settings, self.peak = backends, settings, peak_gflops
        self._workers: dict[str, Worker | str] = {}

    def _worker(self, name: str) -> Worker | str:
        if name not in self._workers:
            try:
                worker = Worker(name, threads=self.settings.threads, timeout_s=self.settings.timeout_s)
                self._workers[name] = worker if worker.availability.ok else str(worker.availability)
            except LoadError as exc:
                self._workers[name] = f"failed to load: {exc}"
        return self._workers[name]

    def close(self) -> None:
        for worker in self._workers.values():
            if isinstance(worker, Worker):
                worker.close()

    def _pids(self) -> list[int]:
        """This process (the reference's threads) and every worker: all must be idle before a timing."""
        workers = [w for w in self._workers.values() if isinstance(w, Worker) and w.pid is not None]
        return [os.getpid(), *(w.pid for w in workers)]

    def run(self, workloads: list[Workload], on_record: Callable[[Record], None]) -> None:
        budget = self.settings.memory_budget or int(0.4 * available_memory())
        itemsize = max(numpy_dtype(dtype).itemsize for dtype in self.settings.dtypes)
        for original in workloads:
            workload, skipped = fit_to_budget(original, budget, itemsize)
            for dtype in self.settings.dtypes:  # the dtypes of one layer timed one after the other
                for direction in self.settings.directions:
                    if workload is None:
                        for name in self.backends:
                            on_record(_record(original, name, self.settings, Status.SKIPPED, skipped,
                                              direction, dtype))
                    else:
                        for record in self._direction(workload, dtype, direction):
                            on_record(record)

    def _direction(self, workload: Workload, dtype: str, direction: str) -> list[Record]:
        spec = workload.spec
        x, kernel, bias = make_arrays(spec, dtype, "normal", self.settings.seed)
        dy = None
        if direction == "backward":
            dy = make_cotangent(spec, spec.output_shape, dtype, "normal", self.settings.seed)
            truth = grad_truth_for(spec, x, kernel, bias, dy)
        else:
            truth = truth_for(spec, x, kernel, bias)
        return self._interleaved(workload, truth, x, kernel, bias, dy)

    def _interleaved(self, workload: Workload, truth, x, kernel, bias, dy=None) -> list[Record]:
        """Every backend's record for one workload and direction. Each backend is timed in
        `rounds` rounds of min_seconds / rounds, the backends taking turns, so a change in the
        machine's load over the run (another tenant, a clock change) falls on all of them alike;
        every round's output is verified and the timing is the summary of all rounds' runs."""
        direction, dtype = "forward" if dy is None else "backward", x.dtype.name
        records: dict[str, Record] = {}  # backends done: unsupported, crashed or judged
        results: dict[str, list[dict]] = {}  # the rounds of the backends still being timed

        def record(name: str, status: Status, message: str = "", **extra) -> Record:
            return _record(workload, name, self.settings, status, message, direction, dtype,
                           truth=truth.source,
                           **extra)

        for name in self.backends:
            worker = self._worker(name)
            reason = worker if isinstance(worker, str) else worker.capabilities.unsupported(
                workload.spec, dtype, direction)
            if reason:
                records[name] = record(name, Status.UNSUPPORTED, reason)
            else:
                results[name] = []
        rounds = max(1, self.settings.rounds)
        for turn in range(rounds):
            for name in list(results):
                worker = self._worker(name)
                traced = worker.capabilities.host_memory_traced and turn == 0
                settle_s = wait_until_quiet(self._pids())
                outcome = worker.bench(x, kernel, bias, workload.spec.conv_kwargs(),
                                       min_repeats=-(-self.settings.min_repeats // rounds),
                                       min_seconds=self.settings.min_seconds / rounds,
                                       trace_memory=traced, dy=dy)
                if outcome.kind == "ok":
                    results[name].append(dict(outcome.outputs[0], settle_s=settle_s))
                else:
                    del results[name]
                    status = Status.UNSUPPORTED if outcome.error_type == DECLINED else Status.CRASHED
                    message = refusal_message(outcome) if outcome.kind == "raised" else outcome.message
                    records[name] = record(name, status, message[:500])
        for name, rounds_done in results.items():
            records[name] = self._judged(workload, name, rounds_done, record, truth, x, kernel, direction)
        return [records[name] for name in self.backends]

    def _judged(self, workload: Workload, name: str, rounds: list[dict], record, truth, x, kernel,
                direction: str) -> Record:
        """The record of one backend's rounds: the worst verdict of their outputs, the timing of
        all their runs (prepare and first-call latency, memory and settling from the first)."""
        caps = self._worker(name).capabilities
        dtype = x.dtype.name
        precision = caps.precision(dtype, direction)
        verdicts = [verify(truth, result.pop("output"), x, kernel, dtype, precision,
                           caps.flushes_subnormals) for result in rounds]
        verdict = next((v for v in verdicts if not v.status.verified), verdicts[0])
        first = rounds[0]
        summary = summarize([t for result in rounds for t in result.pop("times")])
        output_s = float(np.median([result.pop("output_s") for result in rounds]))
        gflops = workload.spec.flops * (1 if direction == "forward" else 2) / summary["median_s"] / 1e9
        counted = verdict.status.verified
        timing = Timing(**summary, prepare_s=first["prepare_s"], first_call_s=first["first_call_s"],
                        traced_peak_bytes=first["traced_peak_bytes"], settle_s=first["settle_s"],
                        output_s=output_s,
                        gflops=gflops if counted else None,
                        fraction_of_peak=gflops / self.peak if counted else None)
        if output_s >= OUTPUT_SHARE * summary["median_s"]:
            print(f"warning: {name} on {workload.name} ({direction}): bringing the output back to NumPy "
                  f"takes {output_s / summary['median_s']:.0%} of the call", file=sys.stderr)
        message = "" if counted else f"{verdict.message}; timing not counted"
        return record(name, verdict.status, message, device=caps.devices[0], precision=precision,
                      max_ratio=verdict.max_ratio, worst=verdict.worst, peak_gflops=self.peak, timing=timing)
