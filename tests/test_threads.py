"""The threads check: each case at 1 thread and at all threads, both judged; a backend that
declares thread-count-invariant results must give bitwise-equal outputs at both."""

import dataclasses
import os
import subprocess
import sys

import pytest

from conformance import engine
from conformance.engine import Job, run_check
from conformance.execute import run_case
from conformance.fixed import worked_cases
from conformance.pytest_plugin import core_share
from runtime.records import Status
from runtime.worker import THREADS_VARIABLE, Worker, default_threads

HERE = "tests.backends_for_tests"


@pytest.fixture(autouse=True)
def few_cases(monkeypatch):
    """Four worked cases on normal data (room inside the bound for a result summed in another
    order)."""
    chosen = [c for c in worked_cases() if c.data == "normal"][:4]
    monkeypatch.setattr(engine, "worked_cases", lambda: chosen)


def _run(backend: str, direction: str = "forward"):
    return run_check(Job(backend, "threads", profile="quick", threads=2, database=None,
                         direction=direction)).records


def test_a_correct_backend_passes_at_one_and_at_two_threads():
    records = _run(f"{HERE}:exact_float32")
    assert len(records) == 4 and all(r.status.verified for r in records), [r.message for r in records]
    assert all(r.check == "threads" and "passes at 1, 2 threads" in r.message for r in records)


def test_numba_direct_is_bitwise_equal_across_thread_counts_both_ways():
    for direction in ("forward", "backward"):
        records = _run("numba-direct", direction)
        assert all(r.status.verified for r in records), [r.message for r in records]
        assert all("bitwise equal across them" in r.message for r in records), records[0].message


def test_a_result_that_changes_with_the_thread_count_is_caught_where_invariance_is_declared():
    records = _run(f"{HERE}:thread_dependent_rounding")
    assert {r.status for r in records} == {Status.NONDETERMINISTIC}
    assert "declared thread-count invariant, but the output at 2 threads differs" in records[0].message


def test_a_bug_at_one_thread_only_fails_and_names_the_thread_count():
    records = _run(f"{HERE}:wrong_at_one_thread")
    failed = [r for r in records if r.status == Status.FAIL]
    assert len(failed) == 4  # every worked case has a bias
    assert all(r.message.startswith("at 1 thread (--threads 1 with the repro):") for r in failed)
    assert all(dataclasses.asdict(r)["repro"].startswith("python -m conformance") for r in failed)


def test_a_worker_not_given_a_count_takes_the_environment_s(monkeypatch):
    """CONV3D_PARITY_THREADS (set by tests/conftest.py under pytest-xdist): the worker's backend
    runs that many threads, and the threads check then has no second count to compare."""
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert default_threads() == 1
    with Worker(f"{HERE}:wrong_at_one_thread") as worker:
        assert worker.threads == 1
        record = run_case(worker, dataclasses.replace(worked_cases()[0], check="threads"))
        assert record.status == Status.FAIL, "the bias was kept: the worker did not run at 1 thread"
    records = run_check(Job(f"{HERE}:exact_float32", "threads", profile="quick", database=None)).records
    assert [r.status for r in records] == [Status.UNSUPPORTED] and "one thread only" in records[0].message
    monkeypatch.setenv(THREADS_VARIABLE, "two")
    with pytest.raises(ValueError, match="positive integer"):
        default_threads()


def test_the_plugin_divides_the_cores_among_xdist_workers(monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert core_share() == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1000")
    assert core_share() == 1
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert core_share() is None


def test_the_plugin_refuses_a_thread_count_below_one(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "--conv3d-backend", "numpy-im2col",
                           "--conv3d-threads", "0"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 4 and "--conv3d-threads must be at least 1, not 0" in done.stderr, done
