"""The pytest plugin (entry point `pytest11`): the conformance checks of a backend as pytest tests.

    pytest --conv3d-backend mypkg.conv:conv3d [--conv3d-profile quick|ci|thorough]
           [--conv3d-direction forward|backward|both] [--conv3d-dtypes float32,float64]
           [--conv3d-checks exact,invalid] [--conv3d-threads N] [-n 2] [--junitxml out.xml]

runs, in any directory where conv3d-parity is installed, one test per backend, direction and check
(conformance.test_parity); a failing test lists its failing cases with their repro lines. Without
--conv3d-backend the plugin adds nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.engine import CHECKS
from conformance.profiles import PROFILES

TESTS = Path(__file__).with_name("test_parity.py")


def core_share() -> int | None:
    """Under pytest-xdist, this machine's cores divided among its workers (at least 1): a backend
    process per worker each spinning a pool of every core would take turns on them, each parallel
    region waiting for a descheduled thread (measured 5x slower on 2 cores). None otherwise."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    return max(1, (os.cpu_count() or 1) // workers) if workers else None


def pytest_addoption(parser) -> None:
    group = parser.getgroup("conv3d-parity", "Conv3D conformance (conv3d-parity)")
    group.addoption("--conv3d-backend", action="append", default=[], metavar="NAME",
                    help="backend to check: a registered name, 'all' (every available CPU backend) "
                         "or module:attr (your conv3d function or Backend); repeatable")
    group.addoption("--conv3d-exclude", action="append", default=[], metavar="NAME",
                    help="a backend that 'all' leaves out; repeatable")
    group.addoption("--conv3d-profile", default="quick", choices=sorted(PROFILES),
                    help="how many cases per check (default quick)")
    group.addoption("--conv3d-direction", default="both", choices=("forward", "backward", "both"),
                    help="conv3d, conv3d_grad or both (default); a plain function given as "
                         "module:attr is taken as conv3d_grad under backward")
    group.addoption("--conv3d-dtypes", default="", metavar="LIST",
                    help="comma-separated dtypes to check, of those the backend declares (default all)")
    group.addoption("--conv3d-checks", default="", metavar="LIST",
                    help=f"comma-separated subset of {','.join(CHECKS)} (default all but threads and large)")
    group.addoption("--conv3d-seed", type=int, default=0, help="hypothesis seed (default 0)")
    group.addoption("--conv3d-threads", type=int, default=None, metavar="N",
                    help="CPU threads per backend process (default: all cores; under pytest-xdist, "
                         "the cores divided among its workers)")


def pytest_configure(config) -> None:
    """With --conv3d-backend, collect the checks' test module from wherever the package lies."""
    threads = config.getoption("--conv3d-threads")
    if threads is not None and threads < 1:
        raise pytest.UsageError(f"--conv3d-threads must be at least 1, not {threads}")
    if config.getoption("--conv3d-backend") and str(TESTS) not in config.args:
        config.args.append(str(TESTS))
