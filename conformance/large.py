"""The large tier (`--profile large`, opt-in): layers whose input, output or unfolded (im2col)
matrix has more than 2^31 or 2^32 elements, where 32-bit indexing breaks (pytorch#152816,
mlx#3138, pytorch#87354).

Such tensors cannot travel between processes, so the backend's worker builds them from a seed
(runtime.lattice: exact integer data, tolerance zero) and sends back only sampled outputs: a few
thousand random ones, every element on the boundary faces of the output volume, the last rows in
memory order, and the elements whose flat index, or the flat index of the input they read first,
lies just past 2^31 or 2^32. The reference evaluates only those. Before a case runs, its memory
is estimated; a machine without that much available memory gets SKIPPED, saying so. A backend
whose own copies then take its worker past the memory cap is CRASHED, saying so: the case ran and
could not be judged, which must fail the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from conformance.cases import command
from conformance.execute import refusal_message, refusal_status
from reference.formats import numpy_dtype
from reference.spec import Conv3DSpec
from runtime.lattice import sampled_outputs
from runtime.records import Record, Status
from runtime.worker import Worker, available_memory

RANDOM_SAMPLES = 4096
LAST_ROWS = 4096  # the final output elements in memory order
FACE_LIMIT = 4_000_000  # boundary-face samples at most (a random subset of the faces beyond)
OVERHEAD = 1.5  # the worker's memory need: inputs and output, times this for the backend's copies


@dataclass(frozen=True)
class LargeCase:
    name: str
    spec: Conv3DSpec
    dtype: str = "float32"

    @property
    def unfolded(self) -> int:
        """Elements of the im2col matrix: output positions x taps x input channels per group."""
        return math.prod(self.spec.output_shape[:4]) * self.spec.taps

    def bytes_needed(self) -> int:
        item = numpy_dtype(self.dtype).itemsize
        tensors = math.prod(self.spec.input_shape) + math.prod(self.spec.output_shape)
        return int(tensors * item * OVERHEAD)


def _spec(shape, filters, kernel, strides=1, padding="valid") -> Conv3DSpec:
    return Conv3DSpec(filters=filters, kernel_size=kernel, strides=strides, padding=padding,
                      input_shape=shape, data_format="channels_last", activation=None)


LARGE_CASES = (  # each reads its input up to the last element (1291 = 2 * 645 + 1)
    LargeCase("input past 2^31 elements", _spec((1, 1291, 1291, 1291, 1), 2, 1, strides=2)),
    LargeCase("output past 2^31 elements", _spec((1, 683, 1024, 1024, 1), 3, 1)),
    LargeCase("unfolded matrix past 2^32 elements", _spec((1, 512, 512, 512, 2), 1, 3, padding="same")),
)


def sample_indices(spec: Conv3DSpec, seed: int) -> np.ndarray:
    """Flat output indices to check, sorted, each once (see the module docstring)."""
    shape, size = spec.output_shape, math.prod(spec.output_shape)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, size, RANDOM_SAMPLES), np.arange(max(0, size - LAST_ROWS), size)]
    filters = shape[-1]
    for axis in (1, 2, 3):  # the two faces across each spatial axis, every batch and filter
        grid = [np.arange(k) for k in shape]
        grid[axis] = np.array(sorted({0, shape[axis] - 1}))
        count = math.prod(len(g) for g in grid)
        if count > FACE_LIMIT:
            flat = rng.integers(0, count, FACE_LIMIT)
            idx = np.unravel_index(flat, [len(g) for g in grid])
            picks.append(np.ravel_multi_index(tuple(g[i] for g, i in zip(grid, idx)), shape))
        else:
            picks.append(np.ravel_multi_index(np.meshgrid(*grid, indexing="ij"), shape).ravel())
    in_size, per_row = math.prod(spec.input_shape), spec.in_channels * spec.in_spatial[2]
    for edge in (2**31, 2**32):
        if edge < size:  # the outputs just past the edge
            picks.append(np.arange(edge - 8, min(size, edge + 8)))
        if edge < in_size:  # the outputs whose first input read lies near the edge
            position = np.unravel_index(np.arange(max(0, edge - per_row), min(in_size, edge + per_row),
                                                  spec.in_channels), spec.input_shape)
            out = [np.clip((p + before) // s, 0, o - 1) for p, s, o, (before, _) in
                   zip(position[1:4], spec.strides, spec.output_spatial, spec.pads)]
            for filt in range(filters):
                picks.append(np.ravel_multi_index((position[0], *out, np.full_like(out[0], filt)), shape))
    return np.unique(np.concatenate(picks).astype(np.int64))


def _repro(backend: str, case: LargeCase, seed: int) -> str:
    return f"{command(backend)} --profile large --seed {seed}"


def large_records(worker: Worker, seed: int) -> list[Record]:
    """Each large case on the worker's backend: PASS when every sampled output is exact."""
    return [_large_record(worker, case, seed) for case in LARGE_CASES]


def _large_record(worker: Worker, case: LargeCase, seed: int) -> Record:
    spec = case.spec

    def record(status: Status, message: str, **extra) -> Record:
        return Record(backend=worker.name, check="large", case=f"large:{case.name}", status=status,
                      message=message, descriptor=spec.descriptor, dtype=case.dtype, data="lattice",
                      seed=seed, repro=_repro(worker.name, case, seed), **extra)

    sizes = (f"input {math.prod(spec.input_shape):,}, output {math.prod(spec.output_shape):,}, "
             f"unfolded {case.unfolded:,} elements")
    reason = worker.capabilities.unsupported(spec, case.dtype)
    if reason:
        return record(Status.UNSUPPORTED, reason)
    need, have = case.bytes_needed(), available_memory()
    if need > have:
        return record(Status.SKIPPED, f"not run: needs about {need / 2**30:.1f} GiB, "
                                      f"{have / 2**30:.1f} GiB available ({sizes})")
    samples = sample_indices(spec, seed)
    outcome = worker.large(spec.descriptor, case.dtype, seed, samples)
    if outcome.kind == "crashed":
        return record(Status.CRASHED, f"{outcome.message} ({sizes})", seconds=outcome.seconds)
    if outcome.kind == "raised":  # declined, refused or raised: classified as for any case
        return record(refusal_status(outcome.error_type), refusal_message(outcome), seconds=outcome.seconds)
    got, shape, dtype = outcome.outputs
    if got is None or dtype != case.dtype:
        return record(Status.FAIL, f"returned shape {shape} {dtype}, expected {spec.output_shape} "
                                   f"{case.dtype}", seconds=outcome.seconds)
    expected = sampled_outputs(spec, seed, samples)
    wrong = np.flatnonzero(got.astype(np.float64) != expected)
    if len(wrong):
        first = wrong[0]
        index = tuple(int(i) for i in np.unravel_index(samples[first], spec.output_shape))
        return record(Status.FAIL, f"{len(wrong)} of {len(samples)} sampled outputs wrong; first at "
                                   f"{index} (flat {samples[first]:,}): expected {expected[first]:g}, "
                                   f"got {float(got[first])!r} ({sizes})", seconds=outcome.seconds)
    return record(Status.PASS, f"{len(samples):,} sampled outputs exact ({sizes}) in "
                               f"{outcome.seconds:.0f} s", seconds=outcome.seconds)
