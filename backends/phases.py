"""Wall time per phase of a backend call (padding, packing, GEMM, kernel, ...), for the bench's
profile (`python -m bench.phases`). Off unless `recording()` is active: then `phase` costs one
perf_counter pair, else a generator round trip."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

_totals: defaultdict[str, float] | None = None


@contextmanager
def phase(name: str) -> Iterator[None]:
    if _totals is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        _totals[name] += time.perf_counter() - started


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Seconds per phase name, summed over the calls made inside the block."""
    global _totals
    totals: defaultdict[str, float] = defaultdict(float)
    _totals = totals
    try:
        yield totals
    finally:
        _totals = None
