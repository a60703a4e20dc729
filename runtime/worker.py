"""Runs a backend in its own long-lived process, so a crash, hang or abort costs one case only.

Conformance and bench both use it; Keras backends need it (KERAS_BACKEND is fixed per process).
The backend is known by one name everywhere: the name it was loaded by (a registered name or
`module:attr`), which is what a repro line needs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import traceback
import warnings
from dataclasses import dataclass, field

import numpy as np

from runtime.interrupts import ignore_interrupts

DEFAULT_TIMEOUT_S = 120.0
DECLINED = "backends.Unsupported"  # Outcome.error_type of a backend that declined the case
POLL_S = 0.05  # how often a waiting driver looks at the worker's memory
#: threads of a worker not given a count (unset: the backend's own default, usually every core);
#: set where several workers share the cores, e.g. by the test suite under pytest-xdist
THREADS_VARIABLE = "CONV3D_PARITY_THREADS"


def default_memory_cap(share: float = 0.75, workers: int = 1) -> int:
    """Bytes each of `workers` concurrent workers may hold resident: `share` of this machine's memory."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * share / max(workers, 1))


def default_threads() -> int | None:
    """The thread count $CONV3D_PARITY_THREADS gives a worker not given one (None: unset)."""
    value = os.environ.get(THREADS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_VARIABLE} must be a positive integer, not {value!r}")
    return int(value)


def available_memory() -> int:
    """Bytes this machine can still give out (MemAvailable; 8 GiB where /proc does not say)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def resident_bytes(pid: int) -> int:
    """Resident memory of process `pid` (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when its parent dies, so no worker outlives its driver."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the driver's own cleanup has to do
    if os.getppid() != parent:
        os._exit(1)


def _changed(inputs: dict[str, np.ndarray], pristine: dict[str, bytes]) -> list[str]:
    """The names of the inputs whose bytes differ from before the call."""
    return [name for name, array in inputs.items() if array.tobytes() != pristine[name]]


@dataclass
class Outcome:
    """What one call did. kind: ok | raised | crashed (died or timed out)."""

    kind: str
    outputs: list[np.ndarray] = field(default_factory=list)
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0
    changed_inputs: tuple[str, ...] = ()  # inputs the backend wrote into (ok calls only)


def _run_call(backend, kind: str, x, kernel, bias, args: dict, options: dict):
    """What a conv or grad request returns: `repeats` outputs (grad: (dx, dkernel, dbias) tuples)
    and the names of the inputs the backend wrote into."""
    from backends.base import grad_arrays

    dy = options.get("dy")
    if options.get("strided"):
        from runtime.data import strided_view

        x, kernel, bias, dy = (strided_view(a) if isinstance(a, np.ndarray) else a
                               for a in (x, kernel, bias, dy))
    inputs = {n: a for n, a in (("x", x), ("kernel", kernel), ("bias", bias), ("dy", dy))
              if isinstance(a, np.ndarray)}
    pristine = {n: a.tobytes() for n, a in inputs.items()}
    if kind == "grad":
        prepared = backend.prepare_grad(x, kernel, bias, dy, **args)
        outputs = [grad_arrays(prepared.to_numpy(prepared.run())) for _ in range(options["repeats"])]
    else:
        prepared = backend.prepare(x, kernel, bias, **args)
        outputs = [np.asarray(prepared.to_numpy(prepared.run())) for _ in range(options["repeats"])]
    return outputs, _changed(inputs, pristine)


def _run_large(backend, options: dict) -> list:
    """A layer too large to send through the pipe: its inputs built here from their seed
    (runtime.lattice), run once; only the output elements at options["samples"] (flat indices)
    go back, with the output's shape and dtype (no samples when the shape is wrong)."""
    from reference.spec import Conv3DSpec
    from runtime.lattice import layer_inputs

    spec = Conv3DSpec.from_descriptor(options["descriptor"])
    x, kernel, bias = layer_inputs(spec, options["dtype"], options["seed"])
    prepared = backend.prepare(x, kernel, bias, **spec.conv_kwargs())
    y = prepared.to_numpy(prepared.run())
    del x, prepared
    shape = tuple(np.shape(y))
    got = np.asarray(y)[np.unravel_index(options["samples"], shape)] if shape == spec.output_shape else None
    return [got, shape, str(np.asarray(y).dtype)]


def _serve(conn, backend_name: str, threads: int | None, parent: int,
           function_direction: str = "forward") -> None:
    """Worker loop: load the backend once, then answer calls until told to stop."""
    die_with_parent(parent)
    ignore_interrupts()
    from backends.base import Unsupported
    from backends.registry import get_backend

    warnings.simplefilter("ignore")  # overflow and NaN warnings are expected in extreme cases
    try:
        backend = get_backend(backend_name, function_direction)
        if threads:
            backend.set_threads(threads)
        availability = backend.availability()
        ok = availability.ok
        conn.send(("hello", availability, backend.capabilities if ok else None,
                   backend.versions() if ok else {}))
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
                changed: list[str] = []
            elif kind == "large":
                outputs, changed = _run_large(backend, options), []
            elif kind == "layer":
                outputs, changed = backend.layer_probe(options["probe"], options["params"]), []
            else:
                outputs, changed = _run_call(backend, kind, x, kernel, bias, args, options)
            conn.send(("ok", outputs, time.perf_counter() - start, changed))
        except BaseException as exc:  # noqa: BLE001 - the driver classifies it
            name = DECLINED if isinstance(exc, Unsupported) else type(exc).__name__
            conn.send(("raised", name, f"{exc}\n{traceback.format_exc(limit=-3)}",
                       time.perf_counter() - start))


def _report_availability(conn, names: list[str], parent: int) -> None:
    """Probe process: load each named backend and send back what its availability() says."""
    die_with_parent(parent)
    ignore_interrupts()
    from backends.registry import get_backend

    found = {}
    for name in names:
        try:
            found[name] = str(get_backend(name).availability())
        except BaseException as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            found[name] = f"unavailable: failed to load: {type(exc).__name__}: {exc}"
    conn.send(found)


def availability_of(names: list[str], timeout_s: float) -> dict[str, str]:
    """name -> "available" or why not, probed in a throwaway process (backend modules are never
    imported by the driver). Raises LoadError when the probe dies or outlasts `timeout_s`."""
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    process = ctx.Process(target=_report_availability, args=(child, names, os.getpid()), daemon=True)
    process.start()
    child.close()
    try:
        if not conn.poll(timeout_s):
            raise LoadError(f"probing backends {', '.join(names)} took over {timeout_s:g} s")
        found = conn.recv()
    except EOFError:
        raise LoadError(f"the process probing backends {', '.join(names)} died") from None
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
    return found


class LoadError(RuntimeError):
    """The backend could not even be constructed in its worker."""


class Worker:
    """A backend living in a spawned process; restarted after it crashes, hangs or outgrows
    `memory_cap` bytes resident (None: no cap). `threads`: its CPU threads (None: default_threads()).

    Loading the backend (importing its module: naming a module runs its code) may take
    `load_timeout_s`, by default the larger of the case timeout and 300 s (TensorFlow is slow to
    import on a cold disk).
    """

    def __init__(self, name: str, threads: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 memory_cap: int | None = None, load_timeout_s: float | None = None,
                 function_direction: str = "forward") -> None:
        self.name, self.timeout_s = name, timeout_s
        self.threads = threads if threads is not None else default_threads()
        self.function_direction = function_direction  # what a plain function is taken for
        self.memory_cap = memory_cap
        self.load_timeout_s = max(timeout_s, 300.0) if load_timeout_s is None else load_timeout_s
        self._process = None
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child, self.name, self.threads, os.getpid(),
                                                         self.function_direction),
                                    daemon=True, name=f"conv3d-{self.name}")
        self._process.start()
        child.close()
        if not self._conn.poll(self.load_timeout_s):
            self._kill()
            raise LoadError(f"backend {self.name!r} did not load within {self.load_timeout_s:g} s")
        try:
            message = self._conn.recv()
        except EOFError as exc:
            code = self._kill()
            raise LoadError(f"backend {self.name!r} died while loading (exit code {code})") from exc
        if message[0] == "load-failed":
            self._kill()
            raise LoadError(message[1])
        _, self.availability, self.capabilities, self.versions = message

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def call(self, x, kernel, bias, args: dict, repeats: int = 2, strided: bool = False) -> Outcome:
        """Run prepare + `repeats` runs on the worker; never raises for backend misbehaviour.
        `strided`: the backend gets the arrays as non-contiguous views (pickling makes them
        contiguous, so the worker makes the views)."""
        return self._request("conv", x, kernel, bias, args, dict(repeats=repeats, strided=strided))

    def call_grad(self, x, kernel, bias, dy, args: dict, repeats: int = 2,
                  strided: bool = False) -> Outcome:
        """The backward call: each of `outputs` is a (dx, dkernel, dbias) tuple."""
        return self._request("grad", x, kernel, bias, args, dict(repeats=repeats, strided=strided, dy=dy))

    def layer_probe(self, probe: str, params: dict) -> Outcome:
        """One probe of a whole Keras layer (backends.keras_layer); outputs is its result dict."""
        return self._request("layer", None, None, None, {}, dict(probe=probe, params=params))

    def large(self, descriptor: str, dtype: str, seed: int, samples: np.ndarray) -> Outcome:
        """A layer whose inputs the worker builds itself (runtime.lattice); outputs is
        [output values at the flat indices `samples`, output shape, output dtype]."""
        return self._request("large", None, None, None, {},
                             dict(descriptor=descriptor, dtype=dtype, seed=seed, samples=samples))

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
            problem = self._wait(start)
            if problem:
                self._kill()
                return Outcome("crashed", message=problem, seconds=time.perf_counter() - start)
            reply = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            code = self._kill()
            return Outcome("crashed", message=f"backend process died (exit code {code})",
                           seconds=time.perf_counter() - start)
        if reply[0] == "ok":
            return Outcome("ok", outputs=reply[1], seconds=reply[2], changed_inputs=tuple(reply[3]))
        return Outcome("raised", error_type=reply[1], message=reply[2], seconds=reply[3])

    def _wait(self, start: float) -> str:
        """Wait for the reply; why the worker must be killed instead ("" once a reply is there)."""
        while not self._conn.poll(POLL_S):
            if time.perf_counter() - start > self.timeout_s:
                return f"timed out after {self.timeout_s:g} s"
            rss = resident_bytes(self.pid) if self.memory_cap and self.pid else 0
            if self.memory_cap and rss > self.memory_cap:
                return (f"exceeded the memory cap: {rss / 2**30:.2f} GiB resident, cap "
                        f"{self.memory_cap / 2**30:.2f} GiB (--memory-cap)")
        return ""

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

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:  # interrupted, perhaps mid-call: no time for a polite goodbye
            self._kill()

