"""Finding backends by name: built-ins, the entry-point group, or `module:attr`."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from backends.base import Backend, FunctionBackend

ENTRY_POINT_GROUP = "conv3d_parity.backends"

#: Built-in backends: name -> "module:factory". Modules are imported only when asked for.
BUILTIN = {
    "numba-direct": "backends.numba_direct:NumbaDirect",
    "numpy-im2col": "backends.numpy_im2col:NumpyIm2col",
    "torch": "backends.torch_backend:TorchBackend",
    "torch-cuda": "backends.torch_backend:TorchCudaBackend",
    "torch-cuda-tf32": "backends.torch_backend:TorchCudaTF32Backend",
    "tensorflow": "backends.tensorflow_backend:TensorFlowBackend",
    "jax": "backends.jax_backend:JaxBackend",
    "keras-tensorflow": "backends.keras_backend:KerasTensorFlow",
    "keras-torch": "backends.keras_backend:KerasTorch",
    "keras-jax": "backends.keras_backend:KerasJax",
    "cupy-im2col": "backends.cupy_im2col:CupyIm2col",
    "onnxruntime": "backends.onnxruntime_backend:OnnxRuntime",
    "openvino": "backends.openvino_backend:OpenVino",
    "openvino-default": "backends.openvino_backend:OpenVinoDefault",
    "tinygrad": "backends.tinygrad_backend:Tinygrad",
    "paddle": "backends.paddle_backend:Paddle",
}


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def registered_names() -> list[str]:
    """Every backend name this installation knows (built-in first, then entry points)."""
    return list(BUILTIN) + sorted(set(_entry_points()) - set(BUILTIN))


def _load_object(target: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected 'module:attr', got {target!r}")
    try:
        obj = importlib.import_module(module_name)
    except (ImportError, TypeError) as exc:  # TypeError: a relative name such as '.foo'
        raise ValueError(f"cannot import module {module_name!r} for backend {target!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from exc
    return obj


def as_backend(obj: object, name: str, function_direction: str = "forward") -> Backend:
    """A Backend from a backend instance, a Backend subclass, or a plain function (a conv3d, or
    with function_direction "backward" a conv3d_grad)."""
    if isinstance(obj, Backend):
        return obj
    if isinstance(obj, type) and issubclass(obj, Backend):
        return obj()
    if callable(obj):
        return FunctionBackend(obj, name=name, direction=function_direction)
    raise ValueError(f"{name!r} is neither a Backend, a Backend class, nor a function")


def get_backend(name: str, function_direction: str = "forward") -> Backend:
    """The backend called `name`: a registered name, an entry point, or 'module:attr'. A plain
    function is taken as conv3d, or as conv3d_grad when function_direction is "backward"."""
    if name in BUILTIN:
        return as_backend(_load_object(BUILTIN[name]), name)
    points = _entry_points()
    if name in points:
        return as_backend(_load_object(points[name]), name, function_direction)
    if ":" in name:
        return as_backend(_load_object(name), name, function_direction)
    raise ValueError(
        f"unknown backend {name!r}; known: {', '.join(registered_names())}, "
        "or give 'module:attr' for your own"
    )


def available_backends() -> list[Backend]:
    """Every registered backend whose framework and device are present here."""
    return [b for b in map(get_backend, registered_names()) if b.availability().ok]
