"""What a run records: one `Status` enum and one frozen `Record` per result row, for conformance
and bench alike. Tables are lists of `Record.to_row()` dicts; reports read them back from disk."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum


class Status(StrEnum):
    """How one case (or one timed workload) ended. The string value is what tables hold."""

    PASS = "PASS"
    FAIL = "FAIL"  # outside the bound (bench: a wrong output, whose timing is not counted)
    MISTRUSTED = "MISTRUSTED"  # inside the bound on weak evidence: mostly zeros or constant
    UNSUPPORTED = "UNSUPPORTED"  # declared by the backend, or the backend is unavailable here
    REJECTED_VALID = "REJECTED-VALID"
    ACCEPTED_INVALID = "ACCEPTED-INVALID"
    CRASHED = "CRASHED"  # raised something else, hung or died
    NONDETERMINISTIC = "NONDETERMINISTIC"  # two runs on the same input differ bitwise
    KNOWN_FAIL = "KNOWN-FAIL"  # failed, matching an entry of conformance/known_deviations.py
    SKIPPED = "SKIPPED"  # not run: a bench workload over the memory budget; a case after a hang streak

    @property
    def failing(self) -> bool:
        """Statuses that fail a run (exit code 1)."""
        return self in FAILING

    @property
    def verified(self) -> bool:
        """The output lies inside the bound: a bench timing counts."""
        return self in VERIFIED


FAILING = frozenset({Status.FAIL, Status.REJECTED_VALID, Status.ACCEPTED_INVALID, Status.CRASHED})
VERIFIED = frozenset({Status.PASS, Status.MISTRUSTED})
#: The same sets as the text a saved table holds (for pandas' isin, which hashes enum members by name).
FAILING_VALUES = sorted(str(s) for s in FAILING)
VERIFIED_VALUES = sorted(str(s) for s in VERIFIED)


@dataclass(frozen=True)
class Worst:
    """The element with the largest error/bound: index (N, D, H, W, C), values and its ratio."""

    index: tuple[int, ...]
    expected: float
    got: float
    error: float
    bound: float
    ratio: float
    ulps: float


@dataclass(frozen=True)
class Timing:
    """One bench measurement (BENCHMARKING.md): run statistics, prepare and first-call latency,
    traced extra memory, the seconds waited for idle cores, and the rates derived from them."""

    repeats: int
    min_s: float
    median_s: float
    mean_s: float
    iqr_s: float
    prepare_s: float
    first_call_s: float
    traced_peak_bytes: int | None = None
    settle_s: float = 0.0
    output_s: float | None = None  # median of the output's conversion to NumPy, inside each call
    gflops: float | None = None
    fraction_of_peak: float | None = None


@dataclass(frozen=True)
class Record:
    """One result row. `check` is the conformance check family (exact, ..., property) or "bench";
    `case` the case id (bench: the workload's name)."""

    backend: str
    check: str
    case: str
    status: Status
    message: str = ""
    repro: str = ""
    dtype: str = ""
    descriptor: str = ""  # a Conv3DSpec descriptor; a property's problem label; "" for invalid calls
    data: str = ""  # data regime
    seed: int | None = None
    strided: bool = False  # the inputs were non-contiguous views
    direction: str = "forward"  # or "backward" (gradients)
    rule: str = ""  # the SPEC.md rule an invalid call breaks
    argument: str = ""  # the layer argument a `layer` check row tests (kernel_initializer, ...)
    precision: str = ""  # the compute precision the bound assumed
    effective: str = ""  # the most precise candidate precision whose bound admits the output
    max_ratio: float | None = None  # worst error / bound
    zero_fraction: float | None = None
    worst: Worst | None = None
    seconds: float | None = None  # the backend's time for the case (conformance)
    shrunk: bool = False  # hypothesis' minimal failing example
    profile: str = ""
    run_seed: int | None = None
    check_seconds: float | None = None  # wall time of the whole check this row belongs to
    # bench
    group: str = ""  # network or sweep of the workload
    sweep: str = ""
    sweep_value: int = 0
    note: str = ""
    threads: int | None = None
    device: str = ""
    truth: str = ""  # what the output was verified against
    peak_gflops: float | None = None
    timing: Timing | None = None

    def to_row(self) -> dict:
        """A flat dict for a table: `worst` as worst_* columns, `timing` as its own columns."""
        row = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("worst", "timing")}
        row["status"] = str(self.status)
        if self.worst is not None:
            row |= {f"worst_{k}": v for k, v in asdict(self.worst).items()}
        if self.timing is not None:
            row |= asdict(self.timing)
        return row


@dataclass(frozen=True)
class BackendInfo:
    """What a report says about a backend under test: whether it loaded, and what it declares."""

    name: str
    availability: str
    dtypes: tuple[str, ...] = ()
    precision: dict[str, str] | None = None  # input dtype -> declared compute precision
    notes: tuple[str, ...] = ()
    versions: dict[str, str] | None = None  # library under test -> version

    @classmethod
    def of(cls, name: str, availability, capabilities, versions: dict[str, str] | None = None) -> BackendInfo:
        """From a worker's availability, capabilities (None when unavailable) and versions."""
        if capabilities is None:
            return cls(name, str(availability))
        return cls(name, str(availability), tuple(capabilities.dtypes),
                   {d: capabilities.precision(d) for d in capabilities.dtypes}, tuple(capabilities.notes),
                   versions or None)
