"""The one interface every Conv3D backend implements, and the capabilities it declares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reference.conv import check_floating
from reference.spec import DATA_FORMATS, Conv3DSpec, check_bias_shape, spec_for_arrays


@dataclass(frozen=True)
class Capabilities:
    """What a backend declares it supports; the judge trusts these declarations.

    compute_precision maps each input dtype to the precision its arithmetic really uses (e.g.
    float32 -> tf32 on a GPU with TF32 on), which sets the error bound. flushes_subnormals says
    whether subnormal inputs or results may become zero (XLA and oneDNN CPU code do this).
    host_memory_traced: its workspace is allocated through Python's allocators (NumPy), so
    tracemalloc measures its peak extra memory; framework allocators are invisible to it.
    directions: "forward" (conv3d) and/or "backward" (conv3d_grad); backward_dtypes, when set,
    the dtypes the backward direction supports (a subset of dtypes); backward_precision, the
    compute precision of the backward direction where it differs from the forward one (a
    framework's autodiff rounds dz = dy * act'(z) to the dtype before its float32 sums).
    layer: the backend is a whole keras.layers.Conv3D whose `layer_probe`s the layer check runs.
    thread_invariant: its results are bitwise the same at every thread count (the threads check
    holds it to that); otherwise they need only pass at each.
    """

    dtypes: tuple[str, ...] = ("float32", "float64")
    data_formats: tuple[str, ...] = DATA_FORMATS
    groups: bool = True
    dilation: bool = True
    devices: tuple[str, ...] = ("cpu",)
    compute_precision: dict[str, str] = field(default_factory=dict)
    flushes_subnormals: bool = False
    unsupported_activations: tuple[str, ...] = ()
    host_memory_traced: bool = False
    notes: tuple[str, ...] = ()
    directions: tuple[str, ...] = ("forward",)
    backward_dtypes: tuple[str, ...] | None = None  # dtypes of the backward direction (None: dtypes)
    backward_precision: dict[str, str] = field(default_factory=dict)
    layer: bool = False
    thread_invariant: bool = False

    def precision(self, dtype: str, direction: str = "forward") -> str:
        if direction == "backward" and dtype in self.backward_precision:
            return self.backward_precision[dtype]
        return self.compute_precision.get(dtype, dtype)

    def unsupported(self, spec: Conv3DSpec, dtype: str, direction: str = "forward") -> str | None:
        """Why this backend declines (spec, dtype) in `direction`, or None when it claims support."""
        if direction not in self.directions:
            return f"the {direction} direction is not supported (supports {', '.join(self.directions)})"
        if dtype not in self.dtypes:
            return f"dtype {dtype} not supported (supports {', '.join(self.dtypes)})"
        if direction == "backward" and self.backward_dtypes is not None and dtype not in self.backward_dtypes:
            return f"dtype {dtype} not supported backward (supports {', '.join(self.backward_dtypes)})"
        if spec.data_format not in self.data_formats:
            return f"data_format {spec.data_format} not supported"
        if spec.groups > 1 and not self.groups:
            return "grouped convolution not supported"
        if max(spec.dilation_rate) > 1 and not self.dilation:
            return "dilation not supported"
        if spec.activation in self.unsupported_activations:
            return f"activation {spec.activation} not supported"
        return None


class Unsupported(Exception):
    """Raised by a backend (class or plain function) to decline a case it does not support: the
    case is UNSUPPORTED, never REJECTED-VALID or CRASHED. Raise it only for what the backend
    cannot do; a wrong argument is still a ValueError."""


def declare(**capabilities) -> Callable:
    """Decorator for a plain conv3d (or conv3d_grad) function: what it supports, with the keywords
    of `Capabilities` (dtypes, data_formats, groups, dilation, directions, compute_precision, ...).
    directions=("backward",) makes the function a conv3d_grad."""
    declared = Capabilities(**capabilities)
    if len(declared.directions) != 1:
        raise ValueError(f"a plain function has one direction, forward or backward; got "
                         f"{declared.directions}")

    def mark(fn: Callable) -> Callable:
        fn.capabilities = declared
        return fn

    return mark


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""

    def __str__(self) -> str:
        return "available" if self.ok else f"unavailable: {self.reason}"


@dataclass
class Prepared:
    """A call with its operands already laid out (and on the device): run it, then fetch.

    run() executes once and returns the backend's native output; synchronize() blocks until
    device work is finished (a no-op on CPU); to_numpy(out) gives the NumPy result.
    """

    run: Callable[[], object]
    to_numpy: Callable[[object], np.ndarray] = np.asarray
    synchronize: Callable[[], None] = lambda: None


class Backend:
    """Base class: subclasses set `name` and `capabilities` and implement `_prepare`.

    `prepare` validates the call against SPEC.md (ValueError for invalid configurations) before
    handing the normalised spec to `_prepare`; a backend that validates on its own (the Keras
    layer does) overrides `prepare` instead.
    """

    name: str = "unnamed"
    capabilities: Capabilities = Capabilities()
    libraries: tuple[str, ...] = ()  # the modules whose code is under test, for versions()

    def availability(self) -> Availability:
        return Availability(True)

    def versions(self) -> dict[str, str]:
        """library -> version of the libraries under test (imports them: call where it runs)."""
        import importlib

        return {name: str(getattr(importlib.import_module(name), "__version__", "unknown"))
                for name in self.libraries}

    def set_threads(self, threads: int) -> None:
        """Use `threads` CPU threads for BLAS (framework backends also set their own pools)."""
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)

    def prepare(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None,
                **conv_args) -> Prepared:
        spec = spec_for_arrays(np.shape(x), np.shape(kernel), bias is not None, **conv_args)
        x, kernel = check_floating("x", x), check_floating("kernel", kernel)
        if bias is not None:
            bias = check_floating("bias", bias)
            check_bias_shape(np.shape(bias), spec.filters)
        return self._prepare(spec, x, kernel, bias)

    def _prepare(self, spec: Conv3DSpec, x: np.ndarray, kernel: np.ndarray,
                 bias: np.ndarray | None) -> Prepared:
        raise NotImplementedError

    def prepare_grad(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None,
                     dy: np.ndarray, **conv_args) -> Prepared:
        """The backward call: its run() gives the native (dx, dkernel, dbias), to_numpy a tuple
        of arrays (dbias None without bias). Validates like `prepare`, and dy's shape."""
        spec = spec_for_arrays(np.shape(x), np.shape(kernel), bias is not None, **conv_args)
        x, kernel, dy = check_floating("x", x), check_floating("kernel", kernel), check_floating("dy", dy)
        if bias is not None:
            bias = check_floating("bias", bias)
            check_bias_shape(np.shape(bias), spec.filters)
        check_cotangent_shape(dy.shape, spec)
        return self._prepare_grad(spec, x, kernel, bias, dy)

    def _prepare_grad(self, spec: Conv3DSpec, x: np.ndarray, kernel: np.ndarray,
                      bias: np.ndarray | None, dy: np.ndarray) -> Prepared:
        raise NotImplementedError(f"backend {self.name} has no backward pass")

    def layer_probe(self, probe: str, params: dict) -> dict:
        """One probe of the whole layer (backends.keras_layer.PROBES), for capabilities.layer."""
        raise NotImplementedError(f"backend {self.name} is not a Keras layer")

    def conv3d_grad(self, x, kernel, bias, dy, *, strides=1, padding="valid",
                    data_format="channels_last", dilation_rate=1, groups=1, activation=None):
        """Same signature and semantics as `reference.conv3d_grad`; arrays of x's dtype."""
        prepared = self.prepare_grad(x, kernel, bias, dy, strides=strides, padding=padding,
                                     data_format=data_format, dilation_rate=dilation_rate,
                                     groups=groups, activation=activation)
        return prepared.to_numpy(prepared.run())

    def conv3d(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None, *,
               strides=1, padding="valid", data_format="channels_last", dilation_rate=1,
               groups=1, activation=None) -> np.ndarray:
        """Same signature and semantics as `reference.conv3d`; returns an array of x's dtype."""
        prepared = self.prepare(x, kernel, bias, strides=strides, padding=padding,
                                data_format=data_format, dilation_rate=dilation_rate,
                                groups=groups, activation=activation)
        return prepared.to_numpy(prepared.run())

    def __repr__(self) -> str:
        return f"<backend {self.name}: {self.availability()}>"


def activation_output_shape(spec: Conv3DSpec) -> tuple[int, ...]:
    """The shape of y = act(z): z's, except glu, which halves the last axis."""
    *lead, last = spec.output_shape
    return (*lead, last // 2) if spec.activation == "glu" else spec.output_shape


def check_cotangent_shape(shape: tuple[int, ...], spec: Conv3DSpec) -> None:
    expected = activation_output_shape(spec)
    if tuple(shape) != expected:
        raise ValueError(f"dy must have the output's shape {expected}; received {tuple(shape)}")


def grad_arrays(grads: object) -> object:
    """A backward result as (dx, dkernel, dbias) NumPy arrays (dbias may be None); anything but
    a triple is passed on as it is, for the judge to name."""
    if not isinstance(grads, (tuple, list)) or len(grads) != 3:
        return grads
    return tuple(None if g is None else np.ascontiguousarray(np.asarray(g)) for g in grads)


class FunctionBackend(Backend):
    """A plain function seen as a backend: `conv3d`'s signature, or with direction "backward"
    `conv3d_grad`'s. Its capabilities are those `declare` attached to it, else the defaults."""

    def __init__(self, fn: Callable, name: str | None = None,
                 capabilities: Capabilities | None = None, direction: str = "forward") -> None:
        self.fn = fn
        self.name = name or f"{fn.__module__}:{fn.__qualname__}"
        self.capabilities = (capabilities or getattr(fn, "capabilities", None)
                             or Capabilities(directions=(direction,)))
        self.libraries = (fn.__module__.split(".")[0],)

    def prepare(self, x, kernel, bias=None, **conv_args) -> Prepared:
        return Prepared(run=lambda: self.fn(x, kernel, bias, **conv_args))

    def prepare_grad(self, x, kernel, bias, dy, **conv_args) -> Prepared:
        return Prepared(run=lambda: self.fn(x, kernel, bias, dy, **conv_args), to_numpy=grad_arrays)
