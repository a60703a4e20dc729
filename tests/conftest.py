"""Under pytest-xdist the cores are divided among its workers: each test process, and each backend
worker process it starts without a thread count, runs that many threads. Thread pools of every
core in every process would take turns on the cores, each parallel region waiting for a
descheduled thread (a numba-direct grid test: 0.75 s at 1 thread, 3.6 s at 2 beside one busy
core, 23 s inside `make test`). Tests that need a thread count pass it explicitly."""

import os

from runtime.worker import THREADS_VARIABLE

_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if _WORKERS:
    _SHARE = max(1, (os.cpu_count() or 1) // _WORKERS)
    os.environ.setdefault(THREADS_VARIABLE, str(_SHARE))

    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(_SHARE, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(_SHARE)
