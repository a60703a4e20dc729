"""Under pytest-xdist the cores are divided among its workers: each test process, and each backend
worker process it starts without a thread count, runs that many threads. Thread pools of every
core in every process would take turns on the cores, each parallel region waiting for a
descheduled thread (a numba-direct grid test: 0.75 s at 1 thread, 3.6 s at 2 beside one busy
core, 23 s inside `make test`). Tests that need a thread count pass it explicitly."""

import os

from conformance.pytest_plugin import core_share
from runtime.worker import THREADS_VARIABLE

_SHARE = core_share()
if _SHARE:
    os.environ.setdefault(THREADS_VARIABLE, str(_SHARE))

    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(_SHARE, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(_SHARE)
