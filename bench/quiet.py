"""Waiting for the cores to go quiet before a backend is timed: the thread pools of the backend
timed just before (OpenBLAS, OpenMP, Eigen, XLA) spin-wait for up to about 0.1 s after a call, and
in other worker processes they would share the cores with the next backend's timed runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path


def cpu_ticks(pid: int) -> int | None:
    """User + system CPU time of a process, all its threads, in clock ticks; None where there is no
    /proc (not Linux) or the process has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # stat fields 14 and 15: utime, stime


def _total(pids: Iterable[int]) -> int | None:
    ticks = [cpu_ticks(pid) for pid in pids]
    known = [t for t in ticks if t is not None]
    return sum(known) if known else None


def wait_until_quiet(pids: Iterable[int], interval: float = 0.05, timeout: float = 2.0) -> float:
    """Sleep until the processes together use at most one clock tick of CPU in `interval` seconds
    (a spinning thread uses one per tick), or until `timeout`; returns the seconds waited."""
    pids = list(pids)
    started = time.perf_counter()
    before = _total(pids)
    if before is None:
        return 0.0
    while time.perf_counter() - started < timeout:
        time.sleep(interval)
        after = _total(pids)
        if after is None or after - before <= 1:
            break
        before = after
    return time.perf_counter() - started
