"""Benchmark every (workload, direction, backend): verify the output, time it, account FLOPs and
memory. Backward: the (dx, dkernel, dbias) call for a normal dy, counted as twice the forward's
dense FLOPs (dx and dkernel; the forward recomputation an activation needs is not counted)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.quiet import wait_until_quiet
from bench.verify import grad_truth_for, truth_for, verify
from bench.workloads import Workload
from reference.spec import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import Record, Status, Timing
from runtime.worker import LoadError, Worker

WORKSPACE_ALLOWANCE = 256 * 2**20  # what an im2col-style backend may add on top of its operands


@dataclass(frozen=True)
class Settings:
    dtype: str = "float32"
    threads: int = os.cpu_count() or 1
    min_repeats: int = 5
    min_seconds: float = 1.0
    memory_budget: int = 0  # bytes; 0 means 40% of the memory available now
    seed: int = 0
    timeout_s: float = 600.0
    directions: tuple[str, ...] = ("forward",)


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


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
            direction: str = "forward", **extra) -> Record:
    return Record(backend=backend, check="bench", case=workload.name, status=status, message=message,
                  direction=direction,
                  dtype=settings.dtype, descriptor=workload.spec.descriptor, group=workload.group,
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
        itemsize = np.dtype(self.settings.dtype).itemsize
        for original in workloads:
            workload, skipped = fit_to_budget(original, budget, itemsize)
            if workload is None:
                for direction in self.settings.directions:
                    for name in self.backends:
                        on_record(_record(original, name, self.settings, Status.SKIPPED, skipped, direction))
                continue
            spec = workload.spec
            x, kernel, bias = make_arrays(spec, self.settings.dtype, "normal", self.settings.seed)
            for direction in self.settings.directions:
                dy = None
                if direction == "backward":
                    dy = make_cotangent(spec, spec.output_shape, self.settings.dtype, "normal",
                                        self.settings.seed)
                    truth = grad_truth_for(spec, x, kernel, bias, dy)
                else:
                    truth = truth_for(spec, x, kernel, bias)
                for name in self.backends:
                    on_record(self._one(workload, name, truth, x, kernel, bias, dy))

    def _one(self, workload: Workload, name: str, truth, x, kernel, bias, dy=None) -> Record:
        direction = "forward" if dy is None else "backward"
        worker = self._worker(name)

        def record(status: Status, message: str = "", **extra) -> Record:
            return _record(workload, name, self.settings, status, message, direction,
                           truth=truth.source, **extra)

        if isinstance(worker, str):
            return record(Status.UNSUPPORTED, worker)
        caps = worker.capabilities
        reason = caps.unsupported(workload.spec, self.settings.dtype, direction)
        if reason:
            return record(Status.UNSUPPORTED, reason)
        settle_s = wait_until_quiet(self._pids())
        outcome = worker.bench(x, kernel, bias, workload.spec.conv_kwargs(),
                               min_repeats=self.settings.min_repeats,
                               min_seconds=self.settings.min_seconds,
                               trace_memory=caps.host_memory_traced, dy=dy)
        if outcome.kind != "ok":
            return record(Status.CRASHED, f"{outcome.error_type} {outcome.message}"[:500])
        result = outcome.outputs[0]
        output = result.pop("output")
        precision = caps.precision(self.settings.dtype)
        verdict = verify(truth, output, x, kernel, self.settings.dtype, precision, caps.flushes_subnormals)
        gflops = workload.spec.flops * (1 if dy is None else 2) / result["median_s"] / 1e9
        counted = verdict.status.verified
        timing = Timing(**result, settle_s=settle_s, gflops=gflops if counted else None,
                        fraction_of_peak=gflops / self.peak if counted else None)
        message = "" if counted else f"{verdict.message}; timing not counted"
        return record(verdict.status, message, device=caps.devices[0], precision=precision,
                      max_ratio=verdict.max_ratio, worst=verdict.worst, peak_gflops=self.peak,
                      timing=timing)
