"""What a conformance case is, and the one-line command that reproduces it."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field

from reference.spec import Conv3DSpec
from runtime.selection import pythonpath_prefix

MAX_INVALID_ELEMENTS = 2**24  # an invalid call's arrays are small; a bigger one is a typo


def command(backend: str) -> str:
    """`python -m conformance --backend B`, with the PYTHONPATH a `module:attr` backend needs."""
    return f"{pythonpath_prefix(backend)}python -m conformance --backend {shlex.quote(backend)}"


@dataclass(frozen=True)
class Case:
    """A valid problem with its data: (spec, dtype, data regime, seed) determines every input."""

    spec: Conv3DSpec
    dtype: str = "float32"
    data: str = "normal"
    seed: int = 0
    check: str = "generated"  # which check produced it (report grouping)
    strided: bool = False  # the backend gets non-contiguous views (runtime.data.strided_view)
    direction: str = "forward"  # or "backward": conv3d_grad with a cotangent dy

    @property
    def id(self) -> str:
        return (f"{self.spec.descriptor}:{self.dtype}:{self.data}:{self.seed}" + ":strided" * self.strided
                + ":backward" * (self.direction == "backward"))

    def repro(self, backend: str) -> str:
        return (f"{command(backend)} --case "
                f"'{self.spec.descriptor}' --dtype {self.dtype} --data {self.data} --seed {self.seed}"
                + " --strided" * self.strided + f" --direction {self.direction}")


@dataclass(frozen=True)
class InvalidCase:
    """A call SPEC.md rejects: arrays of the given shapes and dtype, and conv arguments."""

    rule: str
    x_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    args: dict = field(default_factory=dict)
    bias: bool = True
    dtype: str = "float32"
    check: str = "invalid"
    direction: str = "forward"
    dy_shape: tuple[int, ...] | None = None  # backward: the cotangent's shape (None: one element)

    @property
    def id(self) -> str:
        return f"invalid:{self.rule}:{json.dumps(self.to_json(), sort_keys=True)}"

    def to_json(self) -> dict:
        out = dict(rule=self.rule, x_shape=list(self.x_shape), kernel_shape=list(self.kernel_shape),
                   args=self.args, bias=self.bias, dtype=self.dtype)
        if self.direction == "backward":
            out |= dict(direction="backward", dy_shape=None if self.dy_shape is None else list(self.dy_shape))
        return out

    @classmethod
    def from_json(cls, text: str) -> InvalidCase:
        """From a repro line's JSON; ValueError says what is missing or malformed."""
        try:
            data = json.loads(text)
            case = cls(rule=str(data["rule"]), x_shape=tuple(map(int, data["x_shape"])),
                       kernel_shape=tuple(map(int, data["kernel_shape"])),
                       args=dict(data.get("args", {})), bias=bool(data.get("bias", True)),
                       dtype=str(data.get("dtype", "float32")),
                       direction=str(data.get("direction", "forward")),
                       dy_shape=None if data.get("dy_shape") is None else tuple(map(int, data["dy_shape"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"--invalid needs JSON with rule, x_shape and kernel_shape (as a repro "
                             f"line gives it); got {text!r} ({type(exc).__name__}: {exc})") from None
        if case.direction not in ("forward", "backward"):
            raise ValueError(f"--invalid: direction must be forward or backward, not {case.direction!r}")
        for shape in (case.x_shape, case.kernel_shape, case.dy_shape or ()):
            if len(shape) > 8 or min(shape, default=0) < 0 or math.prod(shape) > MAX_INVALID_ELEMENTS:
                raise ValueError(f"--invalid: shape {shape} is out of range (rank <= 8, sizes >= 0, "
                                 f"at most {MAX_INVALID_ELEMENTS} elements)")
        return case

    def repro(self, backend: str) -> str:
        return (f"{command(backend)} --invalid "
                f"{shlex.quote(json.dumps(self.to_json(), sort_keys=True))}")
