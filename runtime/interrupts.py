"""SIGINT and SIGTERM for a driver: the first one stops the work, and nothing stops the saving.

While work runs, the first signal raises `Interrupted` (a KeyboardInterrupt, so libraries that
let Ctrl-C through let it through too); later ones, and any once `deferring` is set, are only
remembered, so the clean-up and the report that follow are never cut short. The exit status is
then 128 + the signal's number.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """`with Interrupts() as stop:` installs the handlers; stop.received is the first signal."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.deferring = False  # set once the work is over: a signal is then only remembered
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and not self.deferring:
            raise Interrupted(signum)
        print(f"\n{signal.Signals(signum).name}: saving what finished first", file=sys.stderr)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else ""

    @property
    def exit_code(self) -> int | None:
        """128 + the signal number (130 for SIGINT, 143 for SIGTERM), None when none came."""
        return 128 + self.received if self.received else None

    def __enter__(self) -> Interrupts:
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def ignore_interrupts() -> None:
    """For child processes: the driver handles SIGINT and SIGTERM and stops its children itself."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
