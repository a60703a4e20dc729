"""Conformance checks as pytest tests: one test per (backend, direction, check), selectable with -k.
Collected by the pytest plugin (conformance.pytest_plugin) under --conv3d-backend:

    pytest --conv3d-backend torch --conv3d-profile ci -k exact

The checks of one backend share one worker process (loaded once, not once per check) and, under
pytest-xdist (`-n`), run in the same test process (`--dist loadgroup`).
"""

import pytest

from backends.registry import get_backend, registered_names
from conformance.engine import BACKWARD_CHECKS, CHECKS, DIRECTIONS, OPT_IN_CHECKS, Job, run_check
from conformance.pytest_plugin import core_share
from runtime.records import Status
from runtime.worker import LoadError, Worker

#: the checks run unless --conv3d-checks names others: all but the thread-count check, which
#: loads a second worker per backend (`python -m conformance` and --conv3d-checks threads run it),
#: and the opt-in large tier
DEFAULT_CHECKS = tuple(c for c in CHECKS if c not in ("threads", *OPT_IN_CHECKS))


def _backends(config) -> list[str]:
    """The --conv3d-backend names; 'all' (the default) means every available CPU backend but those
    given to --conv3d-exclude (pytest's own process imports the backends anyway, so availability
    is asked here, not in a probe)."""
    names = config.getoption("--conv3d-backend") or ["all"]
    if "all" in names:
        excluded = set(config.getoption("--conv3d-exclude"))
        unknown = excluded - set(registered_names())
        if unknown:
            raise pytest.UsageError(f"--conv3d-exclude: unknown backend {', '.join(sorted(unknown))}")
        cpu = [n for n in registered_names() if n not in excluded and get_backend(n).availability().ok
               and get_backend(n).capabilities.devices == ("cpu",)]
        names = [n for n in names if n != "all"] + cpu
    return list(dict.fromkeys(names))


def _list(config, option: str, allowed) -> tuple[str, ...]:
    values = tuple(v.strip() for v in config.getoption(option).split(",") if v.strip())
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise pytest.UsageError(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return values


def pytest_generate_tests(metafunc):
    if "job" in metafunc.fixturenames:
        config = metafunc.config
        direction = config.getoption("--conv3d-direction")
        directions = DIRECTIONS if direction == "both" else (direction,)
        checks = _list(config, "--conv3d-checks", CHECKS) or DEFAULT_CHECKS
        dtypes = _list(config, "--conv3d-dtypes", ("float64", "float32", "float16", "bfloat16"))
        threads = config.getoption("--conv3d-threads") or core_share()
        jobs = [Job(b, check, config.getoption("--conv3d-profile"), config.getoption("--conv3d-seed"),
                    direction=d, function_direction="backward" if direction == "backward" else "forward",
                    dtypes=dtypes, threads=threads)
                for d in directions for b in _backends(config) for check in checks
                if d == "forward" or check in BACKWARD_CHECKS]
        metafunc.parametrize("job", [pytest.param(j, marks=pytest.mark.xdist_group(j.backend)) for j in jobs],
                             ids=[f"{j.backend}-{j.direction}-{j.check}" for j in jobs])


@pytest.fixture(scope="module")
def workers():
    """(backend, function direction) -> its running worker (None where it failed to load:
    run_check reports that)."""
    running: dict[tuple[str, str], Worker | None] = {}
    yield running
    for worker in running.values():
        if worker is not None:
            worker.close()


def test_conformance(job: Job, workers):
    key = (job.backend, job.function_direction)
    if key not in workers:
        try:
            workers[key] = Worker(job.backend, threads=job.threads, timeout_s=job.timeout_s,
                                  function_direction=job.function_direction)
        except LoadError:
            workers[key] = None
    records = run_check(job, workers[key]).records
    assert records, f"{job.backend} {job.direction} {job.check}: no case ran"
    failing = [r for r in records if r.status.failing]
    assert not failing, f"{len(failing)} failing case(s) of {len(records)}:\n" + "\n".join(
        f"{r.status}: {r.case}\n  {r.message.splitlines()[0][:300] if r.message else ''}\n  repro: {r.repro}"
        for r in failing)
    if all(r.status == Status.UNSUPPORTED for r in records):
        pytest.skip(f"{job.backend}: every {job.direction} {job.check} case is unsupported: "
                    f"{records[0].message}")
