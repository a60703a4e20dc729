"""The LLVM target numba compiles this project's code for, chosen from the CPU's real features.

`configure()` runs once per process, before the first numba compile (numba builds one code
generator per process, on its first compile, and never changes its target after that):
- features: the host's, plus `-prefer-256-bit` where AVX-512 is present. LLVM's tuning for Intel
  server cores (skylake-avx512 to emeraldrapids, and x86-64-v4) prefers 256-bit vectors: the
  512-bit vectors of numba-direct's register blocks are then split into 256-bit halves and spill
  (measured on an Emerald Rapids Xeon: the 32^3 32->64 3x3x3 layer 45 ms with LLVM's default,
  10 ms with 512-bit vectors). AMD cores with AVX-512 get the same explicit choice.
- vector width and register count: what numba-direct's register blocks are sized for (64 bytes
  and 32 registers with AVX-512, 32 bytes and 16 with AVX2, 16 bytes otherwise).
- numba's on-disk cache: a directory per target (CPU name and feature string) under the
  project's cache, so nothing compiled for one CPU is loaded on another.
NUMBA_CPU_NAME, NUMBA_CPU_FEATURES and NUMBA_CACHE_DIR set by the user are kept as given; the
choice is passed to subprocesses through the same variables. Importing this module loads nothing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

CHOSEN = "CONV3D_PARITY_NUMBA_TARGET"  # set where this module chose the variables below
CHOSEN_ORIGIN = "chosen from the CPU's features"


def cache_dir() -> Path:
    """Where conv3d-parity keeps what it learns between runs (failing examples, compiled kernels):
    $CONV3D_PARITY_CACHE, else $XDG_CACHE_HOME/conv3d-parity, else ~/.cache/conv3d-parity;
    never the current directory, so an installed suite leaves nothing where it is run."""
    if os.environ.get("CONV3D_PARITY_CACHE"):
        return Path(os.environ["CONV3D_PARITY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "conv3d-parity"


@dataclass(frozen=True)
class Target:
    cpu_name: str  # LLVM's CPU name: the scheduling model and tuning
    features: str  # the LLVM feature string numba compiles with
    vector_bytes: int  # the vector width the register blocks are sized for
    registers: int  # vector registers of that width
    origin: str  # CHOSEN_ORIGIN, "environment" or "numba already initialised"
    cache_dir: str

    def as_dict(self) -> dict:
        return asdict(self)


def vector_shape(features: str) -> tuple[int, int]:
    """(bytes, registers) of the vectors code compiled with an LLVM feature string uses."""
    enabled = {f[1:] for f in features.split(",") if f.startswith("+")}
    disabled = {f[1:] for f in features.split(",") if f.startswith("-")}
    if "avx512f" in enabled and "prefer-256-bit" in disabled:
        return 64, 32
    if "avx2" in enabled:
        return 32, 16
    return 16, 32 if platform.machine() in ("aarch64", "arm64") else 16


def chosen_features(host_features: str) -> str:
    """The host's features, with 512-bit vectors preferred wherever AVX-512 is present."""
    return host_features + ",-prefer-256-bit" if "+avx512f" in host_features.split(",") else host_features


def _target_key(cpu_name: str, features: str) -> str:
    return f"{cpu_name}-{hashlib.sha256(features.encode()).hexdigest()[:12]}"


@functools.cache
def configure() -> Target:
    """Choose numba's target (once per process; see the module docstring) and describe it."""
    import llvmlite.binding as llvm
    from numba.core import codegen, config
    from numba.core.registry import cpu_target

    if "_toplevel_target_context" in vars(cpu_target):  # compiled before: report what numba uses
        _, cpu, features = cpu_target.target_context.codegen().magic_tuple()
        origin = "numba already initialised"
    else:
        user_set = any(os.environ.get(v) for v in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"))
        origin = "environment" if user_set and not os.environ.get(CHOSEN) else CHOSEN_ORIGIN
        cpu = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
        features = os.environ.get("NUMBA_CPU_FEATURES") or chosen_features(codegen.get_host_cpu_features())
        os.environ["NUMBA_CPU_FEATURES"] = features
        if not os.environ.get("NUMBA_CACHE_DIR"):
            os.environ["NUMBA_CACHE_DIR"] = str(cache_dir() / "numba" / _target_key(cpu, features))
        if origin != "environment":
            os.environ[CHOSEN] = "1"
        config.reload_config()
    width, registers = vector_shape(features)
    return Target(cpu, features, width, registers, origin, os.environ.get("NUMBA_CACHE_DIR", ""))


@functools.cache
def threading_layer() -> str:
    """The threading layer numba's parallel loops run on here (tbb, omp or workqueue), found by
    running one parallel loop (once per process)."""
    import numba

    configure()

    @numba.njit(parallel=True)
    def touch(n):
        total = 0
        for i in numba.prange(n):
            total += i
        return total

    touch(2)
    return numba.threading_layer()
