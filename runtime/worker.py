"""Runs a backend in its own long-lived process, so a crash, hang or abort costs one case only.

Conformance and bench both use it; Keras backends need it (KERAS_BACKEND is fixed per process).
The backend is known by one name everywhere: the name it was loaded by (a registered name or
`module:attr`), which is what a repro line needs.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np

DEFAULT_TIMEOUT_S = 120.0


@dataclass
class Outcome:
    """What one call did. kind: ok | raised | crashed (died or timed out)."""

    kind: str
    outputs: list[np.ndarray] = field(default_factory=list)
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0


def _serve(conn, backend_name: str, threads: int | None) -> None:
    """Worker loop: load the backend once, then answer calls until told to stop."""
    from backends.registry import get_backend

    warnings.simplefilter("ignore")  # overflow and NaN warnings are expected in extreme cases
    try:
        backend = get_backend(backend_name)
        if threads:
            backend.set_threads(threads)
        availability = backend.availability()
        conn.send(("hello", availability, backend.capabilities if availability.ok else None))
    except BaseException as exc:  # noqa: BLE001 - report any load failure to the driver
        conn.send(("load-failed", f"{type(exc).__name__}: {exc}"))
        return
    while True:
        request = conn.recv()
        if request is None:
            return
        kind, x, kernel, bias, args, options = request
        start = time.perf_counter()
        try:
            if kind == "bench":
                from runtime.timing import time_call

                outputs = time_call(backend, x, kernel, bias, args, **options)
            else:
                prepared = backend.prepare(x, kernel, bias, **args)
                outputs = [np.asarray(prepared.to_numpy(prepared.run()))
                           for _ in range(options["repeats"])]
            conn.send(("ok", outputs, time.perf_counter() - start))
        except BaseException as exc:  # noqa: BLE001 - the driver classifies it
            conn.send(("raised", type(exc).__name__, f"{exc}\n{traceback.format_exc(limit=-3)}",
                       time.perf_counter() - start))


class LoadError(RuntimeError):
    """The backend could not even be constructed in its worker."""


class Worker:
    """A backend living in a spawned process; restarted after it crashes or hangs."""

    def __init__(self, name: str, threads: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.name, self.threads, self.timeout_s = name, threads, timeout_s
        self._process = None
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, self.name, self.threads),
                                    daemon=True, name=f"conv3d-{self.name}")
        self._process.start()
        child.close()
        if not self._conn.poll(max(self.timeout_s, 300)):
            self.close()
            raise LoadError(f"backend {self.name!r} did not start in time")
        try:
            message = self._conn.recv()
        except EOFError as exc:
            raise LoadError(f"backend {self.name!r} died while loading") from exc
        if message[0] == "load-failed":
            self.close()
            raise LoadError(message[1])
        _, self.availability, self.capabilities = message

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def call(self, x, kernel, bias, args: dict, repeats: int = 2) -> Outcome:
        """Run prepare + `repeats` runs on the worker; never raises for backend misbehaviour."""
        return self._request("conv", x, kernel, bias, args, dict(repeats=repeats))

    def bench(self, x, kernel, bias, args: dict, **options) -> Outcome:
        """Time the call in the worker (runtime.timing.time_call); outputs[0] is its result dict."""
        outcome = self._request("bench", x, kernel, bias, args, options)
        if outcome.kind == "ok":
            outcome.outputs = [outcome.outputs]
        return outcome

    def _request(self, kind: str, x, kernel, bias, args: dict, options: dict) -> Outcome:
        if self._process is None or not self._process.is_alive():
            self._start()
        start = time.perf_counter()
        try:
            self._conn.send((kind, x, kernel, bias, args, options))
            if not self._conn.poll(self.timeout_s):
                self._kill()
                return Outcome("crashed", message=f"timed out after {self.timeout_s:g} s",
                               seconds=time.perf_counter() - start)
            reply = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._kill()
            return Outcome("crashed", message=f"backend process died (exit code {code})",
                           seconds=time.perf_counter() - start)
        if reply[0] == "ok":
            return Outcome("ok", outputs=reply[1], seconds=reply[2])
        return Outcome("raised", error_type=reply[1], message=reply[2], seconds=reply[3])

    def _kill(self) -> int | None:
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(5)
            return process.exitcode
        return None

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(5)
        self._kill()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

