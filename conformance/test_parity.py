"""Conformance checks as pytest tests: one test per (backend, check), selectable with -k.

    pytest conformance --backend torch --profile ci -k exact

The checks of one backend share one worker process (loaded once, not once per check) and, under
pytest-xdist (`-n`), run in the same test process (`--dist loadgroup`).
"""

import pytest

from backends.registry import get_backend, registered_names
from conformance.engine import CHECKS, Job, run_check
from runtime.records import Status
from runtime.worker import LoadError, Worker


def _backends(config) -> list[str]:
    """The --backend names; 'all' (the default) means every available CPU backend (pytest's own
    process imports the backends anyway, so availability is asked here, not in a probe process)."""
    names = config.getoption("--backend") or ["all"]
    if "all" in names:
        cpu = [n for n in registered_names() if get_backend(n).availability().ok
               and get_backend(n).capabilities.devices == ("cpu",)]
        names = [n for n in names if n != "all"] + cpu
    return list(dict.fromkeys(names))


def pytest_generate_tests(metafunc):
    if "job" in metafunc.fixturenames:
        config = metafunc.config
        jobs = [Job(b, check, config.getoption("--profile"), config.getoption("--conformance-seed"))
                for b in _backends(config) for check in CHECKS]
        metafunc.parametrize("job", [pytest.param(j, marks=pytest.mark.xdist_group(j.backend)) for j in jobs],
                             ids=[f"{j.backend}-{j.check}" for j in jobs])


@pytest.fixture(scope="module")
def workers():
    """Backend name -> its running worker (None where it failed to load: run_check reports that)."""
    running: dict[str, Worker | None] = {}
    yield running
    for worker in running.values():
        if worker is not None:
            worker.close()


def test_conformance(job: Job, workers):
    if job.backend not in workers:
        try:
            workers[job.backend] = Worker(job.backend, threads=job.threads, timeout_s=job.timeout_s)
        except LoadError:
            workers[job.backend] = None
    records = run_check(job, workers[job.backend]).records
    assert records, f"{job.backend} {job.check}: no case ran"
    failing = [r for r in records if r.status.failing]
    assert not failing, f"{len(failing)} failing case(s) of {len(records)}:\n" + "\n".join(
        f"{r.status}: {r.case}\n  {r.message.splitlines()[0][:300] if r.message else ''}\n  repro: {r.repro}"
        for r in failing)
    if all(r.status == Status.UNSUPPORTED for r in records):
        pytest.skip(f"{job.backend}: every {job.check} case is unsupported: {records[0].message}")
