"""How much each conformance profile checks (VERIFICATION.md §4)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """examples: generated cases per hypothesis check; workloads: reduced CSV layers (None: all);
    property_problem: (batch, spatial, channels, filters) of the oracle-free properties;
    threads: worked cases the threads check runs at each thread count (None: all)."""

    name: str
    examples: dict
    workloads: int | None
    property_problem: tuple
    threads: int | None = None


PROFILES = {
    "quick": Profile("quick", dict(exact=30, realistic=30, extreme=20, invalid=20), 12,
                     (2, (6, 7, 8), 16, 16), threads=8),
    "ci": Profile("ci", dict(exact=400, realistic=400, extreme=150, invalid=120), None,
                  (2, (10, 11, 12), 64, 64), threads=24),
    "thorough": Profile("thorough", dict(exact=6000, realistic=6000, extreme=2000, invalid=1000),
                        None, (4, (16, 17, 18), 128, 128)),
}
# opt-in, never in make test: the large check (conformance.large) alone, tensors past 2^31 elements
PROFILES["large"] = Profile("large", PROFILES["quick"].examples, 0, PROFILES["quick"].property_problem)
DEFAULT_PROFILE = "ci"
