"""Conformance checks as pytest tests: one test per (backend, check), selectable with -k.

    pytest conformance --backend torch --profile ci -k exact
"""

import pytest

from backends.registry import available_backends
from conformance.engine import CHECKS, Job, run_check
from conformance.judge import FAILING


def _backends(config) -> list[str]:
    names = config.getoption("--backend") or ["all"]
    if "all" in names:
        found = [b.name for b in available_backends() if b.capabilities.devices == ("cpu",)]
        names = [n for n in names if n != "all"] + found
    return list(dict.fromkeys(names))


def pytest_generate_tests(metafunc):
    if "job" in metafunc.fixturenames:
        config = metafunc.config
        jobs = [Job(b, check, config.getoption("--profile"), config.getoption("--conformance-seed"))
                for b in _backends(config) for check in CHECKS]
        metafunc.parametrize("job", jobs, ids=[f"{j.backend}-{j.check}" for j in jobs])


def test_conformance(job: Job):
    rows = run_check(job)
    assert rows, f"{job.backend} {job.check}: no case ran"
    failing = [r for r in rows if r["status"] in FAILING]
    assert not failing, f"{len(failing)} failing case(s) of {len(rows)}:\n" + "\n".join(
        f"{r['status']}: {r['case']}\n  {str(r['message']).splitlines()[0][:300]}\n  repro: {r['repro']}"
        for r in failing)
    ran = [r for r in rows if r["status"] != "UNSUPPORTED"]
    if not ran:
        pytest.skip(f"{job.backend}: every {job.check} case is unsupported: {rows[0]['message']}")
