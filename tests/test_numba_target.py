"""numba's target: chosen from the CPU's features, blocks sized for it, a cache that never crosses CPUs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.numba_direct import plan as plan_module
from bench.workloads import load
from reference.numba_target import Target, chosen_features, vector_shape
from reference.spec import Conv3DSpec

ROOT = Path(__file__).resolve().parents[1]
AVX512 = "+64bit,+avx,+avx2,+fma,+avx512f,+avx512bw"
AVX2 = "+64bit,+avx,+avx2,+fma,-avx512f,-avx512bw"


def test_avx512_gets_512_bit_vectors_chosen_explicitly():
    assert chosen_features(AVX512).endswith(",-prefer-256-bit")
    assert vector_shape(chosen_features(AVX512)) == (64, 32)
    assert vector_shape(AVX512) == (32, 16), "LLVM's default tuning may split 512-bit vectors: size for 256"
    assert chosen_features(AVX2) == AVX2 and vector_shape(AVX2) == (32, 16)
    assert vector_shape("+64bit,+sse4.2")[0] == 16


def _python(code: str, cache: Path, *args: str, **env: str) -> str:
    """stdout of `code` run by a fresh interpreter with conv3d-parity's cache in `cache` and no
    NUMBA_ variables but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "CONV3D_PARITY_NUMBA"))}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          check=True, env=dict(clean, CONV3D_PARITY_CACHE=str(cache), **env))
    return done.stdout


_TARGET = ("from reference.numba_target import configure; import json; "
           "print(json.dumps(configure().as_dict()))")


def test_the_cache_directory_is_keyed_by_the_target(tmp_path):
    chosen = json.loads(_python(_TARGET, tmp_path))
    assert chosen["origin"] == "chosen from the CPU's features"
    assert chosen["cache_dir"].startswith(str(tmp_path / "numba"))
    assert chosen["cpu_name"] in chosen["cache_dir"]
    other = json.loads(_python(_TARGET, tmp_path, NUMBA_CPU_NAME="x86-64"))
    assert other["origin"] == "environment" and other["cpu_name"] == "x86-64"
    assert other["cache_dir"] != chosen["cache_dir"]


_COMPILE = """
import sys
from reference.numba_target import configure
configure()
sys.path.insert(0, sys.argv[1])
from cached_module import total
import numpy as np
total(np.arange(10.0))
print(sum(total.stats.cache_hits.values()))
"""


def test_code_compiled_for_one_cpu_is_not_loaded_on_another(tmp_path):
    (tmp_path / "cached_module.py").write_text(
        "import numba\n\n@numba.njit(cache=True)\ndef total(a):\n    return a.sum()\n")

    def hits(cpu: str) -> int:
        return int(_python(_COMPILE, tmp_path / "cache", str(tmp_path), NUMBA_CPU_NAME=cpu))

    assert hits("haswell") == 0
    assert hits("haswell") == 1, "the cache works on the CPU it was written for"
    assert hits("x86-64") == 0, "a kernel compiled for haswell was loaded for another CPU"


@pytest.mark.parametrize("vector_bytes, registers", [(64, 32), (32, 16)])
def test_register_blocks_fit_the_target(monkeypatch, vector_bytes, registers):
    """Every default bench layer's plan keeps the broadcast kernel's accumulators, its weight vectors
    and one broadcast in the target's registers, its filter blocks whole vectors (W blocks for the
    W-vector kernel)."""
    target = Target("test", "", vector_bytes, registers, "test", "")
    monkeypatch.setattr(plan_module, "configure", lambda: target)
    lanes = vector_bytes // 4
    for workload in load("default")[0]:
        p = plan_module.plan(plan_module.rows_joined(workload.spec), np.float32)
        assert (p.rw if p.kernel == "wvector" else p.fb) % lanes == 0, (workload.name, p)
        if p.kernel == "broadcast":
            vectors = p.fb // lanes
            assert p.rw * vectors + vectors + 1 <= registers, (workload.name, p)


def test_weight_panels_stay_within_half_the_l2(monkeypatch):
    monkeypatch.setattr(plan_module, "l2_bytes", lambda: 2**20)
    spec = Conv3DSpec(filters=256, kernel_size=3, input_shape=(1, 12, 13, 13, 256))  # 3D U-Net conv_7
    p = plan_module.plan(spec, np.float32)
    assert p.fb * spec.taps * 4 <= 2**19, p


def test_one_by_one_layers_join_h_and_w():
    spec = Conv3DSpec(filters=64, kernel_size=1, input_shape=(1, 16, 14, 14, 512))
    joined = plan_module.rows_joined(spec)
    assert joined.input_shape == (1, 16, 1, 196, 512) and joined.output_spatial == (16, 1, 196)
    strided = Conv3DSpec(filters=64, kernel_size=1, strides=2, input_shape=(1, 16, 14, 14, 512))
    assert plan_module.rows_joined(strided).input_shape == strided.input_shape
