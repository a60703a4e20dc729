"""Conformance jobs as Ray tasks: the same checks as the local executor, spread over a cluster.

Each job (backend, check, direction, dtypes, seed) is one task; the task runs the check exactly as
`-j` does, its backend in an isolated worker process on the node that runs the task. A task whose
node (or worker) dies is retried by Ray on another node, up to `RETRIES` times, from its start:
the result a task returns is its only output, so every case is counted exactly once. A task that
still fails comes back as a CRASHED record of its check, never lost. Without an address, Ray
starts a local cluster for the run and stops it afterwards.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from conformance.engine import CheckResult, Job, aborted, run_guarded

RETRIES = 3  # re-runs of a task whose node or worker process died
ROOT = Path(__file__).resolve().parent.parent  # shipped to every node as the tasks' working dir
EXCLUDES = [".git", ".venv", "venv", "build", "reports", "*.egg-info", "__pycache__", ".hypothesis",
            ".pytest_cache"]


def available() -> str:
    """Why Ray cannot be used here ("" when it can)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'conv3d-parity[ray]')"
    return ""


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join the cluster at `address` (or start a local one); True when this call started Ray."""
    import ray

    if ray.is_initialized():
        return False
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it with sys.exit: the run's own
    ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR",
             runtime_env={"working_dir": str(ROOT), "excludes": EXCLUDES,
                          "env_vars": {"PYTHONUNBUFFERED": "1"}})
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)  # handler (an interrupted run still writes its report)
    return True


def alive_nodes() -> int:
    import ray

    return sum(1 for node in ray.nodes() if node.get("Alive"))


def run_jobs_ray(jobs: list[Job], address: str | None = None,
                 on_result: Callable[[CheckResult], None] | None = None,
                 on_wait: Callable[[], None] | None = None, num_cpus: int | None = None,
                 cpus_per_task: float = 1.0) -> list[CheckResult]:
    """Run jobs as Ray tasks, reporting each result as it arrives (`on_wait` is called about once
    a second while none does: a progress bar's refresh). An interruption cancels every task
    still pending and propagates; results already reported stay with the caller."""
    import ray

    started = connect(address, num_cpus)
    task = ray.remote(num_cpus=cpus_per_task, max_retries=RETRIES, retry_exceptions=False)(run_guarded)
    results: list[CheckResult] = []
    pending: dict = {}
    try:
        pending = {task.remote(job): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            if not ready and on_wait:
                on_wait()
            for ref in ready:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # retries spent: the check is CRASHED, not lost
                    result = aborted(job, exc)
                results.append(result)
                if on_result:
                    on_result(result)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
    return results
