"""The large tier's machinery on small layers: hashed integer data the worker builds itself, the
sampled outputs (faces, last rows, random ones) computed exactly, a wrong last element caught,
and a case over the available memory SKIPPED with the reason."""

import numpy as np
import pytest

from conformance import large
from conformance.large import LargeCase, large_records, sample_indices
from reference import conv3d
from reference.spec import Conv3DSpec
from runtime.lattice import layer_inputs, sampled_outputs
from runtime.records import Status
from runtime.worker import Worker

SPECS = [Conv3DSpec(filters=3, kernel_size=(2, 3, 2), strides=(2, 1, 3), padding="same", groups=1,
                    input_shape=(2, 7, 6, 9, 4), activation=None),
         Conv3DSpec(filters=4, kernel_size=3, padding="valid", groups=2, dilation_rate=(1, 2, 1),
                    input_shape=(1, 5, 8, 6, 4), activation=None, use_bias=False)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.descriptor)
def test_sampled_outputs_are_the_reference_at_the_sampled_indices(spec):
    x, kernel, bias = layer_inputs(spec, "float32", seed=5)
    assert set(np.unique(x)) <= {-2, -1, 0, 1, 2} and np.unique(x).size == 5
    samples = sample_indices(spec, seed=5)
    assert samples[-1] == np.prod(spec.output_shape) - 1  # the last row is in
    full = conv3d(x, kernel, bias, **spec.conv_kwargs()).reshape(-1)
    np.testing.assert_array_equal(sampled_outputs(spec, 5, samples), full[samples])


def test_faces_are_all_sampled():
    spec = SPECS[0]
    samples = set(sample_indices(spec, 0).tolist())
    out = np.arange(np.prod(spec.output_shape)).reshape(spec.output_shape)
    for face in (out[:, 0], out[:, -1], out[:, :, 0], out[:, :, -1], out[:, :, :, 0], out[:, :, :, -1]):
        assert set(face.ravel().tolist()) <= samples


def test_a_correct_backend_passes_and_a_wrong_last_element_fails(monkeypatch):
    monkeypatch.setattr(large, "LARGE_CASES", (LargeCase("small", SPECS[0]),))
    with Worker("numba-direct") as worker:
        (record,) = large_records(worker, 3)
    assert record.status == Status.PASS, record.message
    with Worker("tests.backends_for_tests:wrong_last_row") as worker:
        (record,) = large_records(worker, 3)
    assert record.status == Status.FAIL, record.message
    assert "first at (1, 3, 5, 2, 2) (flat 431)" in record.message
    assert record.repro.endswith("--profile large --seed 3")


def test_a_case_over_the_available_memory_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(large, "available_memory", lambda: 2**30)
    with Worker("tests.backends_for_tests:exact_float32") as worker:
        records = large_records(worker, 0)
    assert [r.status for r in records] == [Status.SKIPPED] * 3
    assert "needs about 15.0 GiB, 1.0 GiB available" in records[0].message


def test_a_backend_killed_at_the_memory_cap_or_dying_is_crashed_with_the_reason(monkeypatch):
    """The estimate let the case run and it could not be judged: CRASHED (the run fails), saying why."""
    monkeypatch.setattr(large, "LARGE_CASES", (LargeCase("small", SPECS[0]),))
    with Worker("tests.backends_for_tests:memory_bomb", timeout_s=60, memory_cap=300 * 2**20) as worker:
        (record,) = large_records(worker, 0)
    assert record.status == Status.CRASHED and "exceeded the memory cap" in record.message, record.message
    with Worker("tests.backends_for_tests:aborts", timeout_s=60) as worker:
        (record,) = large_records(worker, 0)
    assert record.status == Status.CRASHED, record.message
