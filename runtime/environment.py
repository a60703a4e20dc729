"""What a report says about the machine and software it was produced on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata

PACKAGES = ("numpy", "numba", "hypothesis", "torch", "tensorflow", "keras", "jax", "cupy")


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
                cores=os.cpu_count(), blas=blas, gpu=_gpu(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "(auto)"), **versions)


def _gpu() -> str:
    """GPU model and driver from nvidia-smi, or 'none'."""
    if not shutil.which("nvidia-smi"):
        return "none"
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "none"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()
