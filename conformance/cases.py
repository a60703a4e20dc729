"""What a conformance case is, and the one-line command that reproduces it."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from reference.spec import Conv3DSpec


@dataclass(frozen=True)
class Case:
    """A valid problem with its data: (spec, dtype, data regime, seed) determines every input."""

    spec: Conv3DSpec
    dtype: str = "float32"
    data: str = "normal"
    seed: int = 0
    check: str = "generated"  # which check produced it (report grouping)

    @property
    def id(self) -> str:
        return f"{self.spec.descriptor}:{self.dtype}:{self.data}:{self.seed}"

    def repro(self, backend: str) -> str:
        return (f"python -m conformance --backend {shlex.quote(backend)} --case "
                f"'{self.spec.descriptor}' --dtype {self.dtype} --data {self.data} --seed {self.seed}")


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

    @property
    def id(self) -> str:
        return f"invalid:{self.rule}:{json.dumps(self.to_json(), sort_keys=True)}"

    def to_json(self) -> dict:
        return dict(rule=self.rule, x_shape=list(self.x_shape), kernel_shape=list(self.kernel_shape),
                    args=self.args, bias=self.bias, dtype=self.dtype)

    @classmethod
    def from_json(cls, text: str) -> InvalidCase:
        data = json.loads(text)
        return cls(rule=data["rule"], x_shape=tuple(data["x_shape"]),
                   kernel_shape=tuple(data["kernel_shape"]), args=data.get("args", {}),
                   bias=data.get("bias", True), dtype=data.get("dtype", "float32"))

    def repro(self, backend: str) -> str:
        return (f"python -m conformance --backend {shlex.quote(backend)} --invalid "
                f"{shlex.quote(json.dumps(self.to_json(), sort_keys=True))}")
