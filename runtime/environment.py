"""What a report says about the machine and software it was produced on."""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

PACKAGES = ("numpy", "numba", "hypothesis", "torch", "tensorflow", "keras", "jax", "cupy")
MATTERING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx_vnni", "neon", "asimd", "sve")


def environment() -> dict:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')} kernels, "
            f"{i['num_threads']} threads)" for i in threadpool_info()]
    return dict(python=sys.version.split()[0], platform=platform.platform(), cpu=cpu_model(),
                cpu_id=cpu_id(), cpu_flags=cpu_flags(), cores=os.cpu_count(), blas=blas, gpu=_gpu(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "(auto)"), **_numba(), **versions)


def _numba() -> dict:
    """The LLVM target and vector width numba compiles for, its threading layer, the L2 size the
    numba-direct blocks are sized for; nothing without numba."""
    if importlib.util.find_spec("numba") is None:
        return {}
    from backends.numba_direct.plan import l2_bytes
    from reference.numba_target import configure, threading_layer

    target = configure()
    return dict(numba_target=dict(target.as_dict(), vector_bits=8 * target.vector_bytes),
                numba_threading_layer=threading_layer(), l2_cache_bytes=l2_bytes())


def _gpu() -> str:
    """GPU model and driver from nvidia-smi, or 'none'."""
    if not shutil.which("nvidia-smi"):
        return "none"
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "none"


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """Each field of /proc/cpuinfo at its first occurrence (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_flags() -> list[str]:
    """The CPU's vector features that decide the kernels' speed."""
    info = _cpuinfo()
    flags = (info.get("flags") or info.get("Features") or "").split()
    return [f for f in flags if f in MATTERING_FLAGS or f.startswith(("avx512", "amx"))]


def cpu_id() -> str:
    """Vendor, family, model and stepping (what a VM's generic model name hides), and LLVM's name
    for the host CPU."""
    info = _cpuinfo()
    described = " ".join(f"{key} {info[key]}" for key in ("vendor_id", "cpu family", "model", "stepping")
                         if key in info)
    if importlib.util.find_spec("llvmlite") is not None:
        import llvmlite.binding

        described += f" (LLVM: {llvmlite.binding.get_host_cpu_name()})"
    return described.strip()


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.machine()
