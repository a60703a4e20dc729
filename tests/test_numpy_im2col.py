"""numpy-im2col against the reference on a grid covering every argument and all three im2col paths,
tiny workspaces (forcing depth and height tiling), its memory budget, life without numba, and its
depthwise backward path."""

import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

from backends.im2col import choose_path
from backends.numpy_im2col import NumpyIm2col
from conformance.judge import judge
from conformance.judge_grad import judge_grad
from reference import Conv3DSpec, evaluate, evaluate_grad
from runtime.data import make_arrays, make_cotangent
from runtime.records import Status
from tests.layer_grid import GRID, layer_spec


@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grid_within_bound(dtype, workspace):
    """Every layer through the array-namespace im2col code that cupy-im2col shares."""
    backend = NumpyIm2col(workspace_bytes=workspace)
    paths = set()
    for i, args in enumerate(GRID):
        spec = layer_spec(args, filters=(12, 36)[i % 2])
        paths.add(choose_path(spec))
        x, w, b = make_arrays(spec, dtype, "normal", i)
        got = backend.conv3d(x, w, b, **spec.conv_kwargs())
        verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, dtype, dtype)
        assert verdict.status != Status.FAIL, (spec.descriptor, dtype, workspace, verdict)
    assert paths == {"pointwise", "depthwise", "im2col"}


@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
def test_exact_regime_bitwise_whatever_the_tiling(workspace):
    spec = layer_spec(GRID[1] | dict(activation="relu"), spatial=(9, 8, 7))
    x, w, b = make_arrays(spec, "float32", "exact", 3)
    expected = evaluate(x, w, b, **spec.conv_kwargs()).output.astype(np.float32)
    assert np.array_equal(NumpyIm2col(workspace_bytes=workspace).conv3d(x, w, b, **spec.conv_kwargs()),
                          expected)


@pytest.mark.parametrize("kernel,groups,channels", [(3, 1, 32), (3, 32, 32), (1, 1, 64)])
def test_extra_memory_stays_within_the_workspace(kernel, groups, channels):
    budget = 8 * 2**20
    spec = Conv3DSpec(filters=channels, kernel_size=kernel, groups=groups, padding="same",
                      input_shape=(2, 12, 40, 40, channels))
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    prepared = NumpyIm2col(workspace_bytes=budget).prepare(x, w, b, **spec.conv_kwargs())
    output_bytes = np.prod(spec.output_shape) * 4
    tracemalloc.start()
    prepared.run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak - output_bytes <= budget, (peak, output_bytes)


def test_runs_where_numba_was_never_imported():
    """A user without numba can run numpy-im2col: in a fresh process, a grouped, strided "same"
    layer is computed (and judged afterwards) without numba ever entering sys.modules."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from backends import get_backend
        spec = dict(strides=(2, 1, 2), padding="same", groups=3)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 7, 6, 9, 6)).astype(np.float32)
        w = rng.standard_normal((3, 2, 3, 2, 12)).astype(np.float32)
        b = rng.standard_normal(12).astype(np.float32)
        got = get_backend("numpy-im2col").conv3d(x, w, b, **spec)
        assert "numba" not in sys.modules, "numba was imported"
        from conformance.judge import judge
        from reference import evaluate
        verdict = judge(evaluate(x, w, b, **spec), got, x, w, "float32", "float32")
        assert got.shape == (2, 4, 6, 5, 12) and verdict.status == "PASS", verdict
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("data", ["exact", "normal", "special"])
@pytest.mark.parametrize("filters, args", [
    (6, dict(strides=(1, 2, 1))), (12, dict(dilation_rate=(2, 1, 2), padding="same")),
    (6, dict(strides=2, padding="same", data_format="channels_first"))])
def test_depthwise_backward_within_bound(filters, args, data):
    """One input channel per group (6 channels; 12 filters: two per channel): dx and dkernel by a
    multiply-add per tap, no GEMM."""
    fmt = args.get("data_format", "channels_last")
    shape = (2, 5, 7, 9, 6) if fmt == "channels_last" else (2, 6, 5, 7, 9)
    spec = Conv3DSpec(filters=filters, kernel_size=3, groups=6, activation="tanh", input_shape=shape, **args)
    x, w, b = make_arrays(spec, "float32", data, 4)
    dy = make_cotangent(spec, spec.output_shape, "float32", data, 4)
    got = NumpyIm2col().conv3d_grad(x, w, b, dy, **spec.conv_kwargs())
    verdict = judge_grad(evaluate_grad(x, w, b, dy, **spec.conv_kwargs()), got, x, w, "float32", "float32",
                         exact=data == "exact")
    assert verdict.status != Status.FAIL, (spec.descriptor, data, verdict)

