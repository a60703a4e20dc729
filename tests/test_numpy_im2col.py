"""numpy-im2col against the reference on a grid covering every argument, both direct kernels and
all three im2col paths, tiny workspaces (forcing depth and height tiling), and its memory budget."""

import itertools
import tracemalloc

import numpy as np
import pytest

from backends import direct_numba
from backends.im2col import choose_path
from backends.numpy_im2col import NumpyIm2col
from conformance.data import make_arrays
from conformance.judge import FAIL, judge
from reference import Conv3DSpec, evaluate

GRID = [
    dict(kernel_size=k, strides=s, dilation_rate=d, padding=p, groups=g, data_format=f, activation=a)
    for (k, s, d), p, g, f, a in itertools.product(
        [((3, 2, 1), 1, 1), ((2, 3, 2), (2, 1, 3), 1), ((3, 1, 2), 1, (2, 1, 3)), (1, 1, 1), (1, 2, 1)],
        ["valid", "same"], [1, 2, 6], ["channels_last", "channels_first"], [None, "gelu", "softmax"])
]


def _spec(args, batch=2, spatial=(7, 6, 9), channels=6, filters=12):
    """filters 12 with 6 channels: the lane kernel for every group count; 36: broadcast for 1 or 2
    groups (18 or more filters per group)."""
    fmt = args["data_format"]
    shape = (batch, *spatial, channels) if fmt == "channels_last" else (batch, channels, *spatial)
    return Conv3DSpec(filters=filters, input_shape=shape, **args)


@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grid_within_bound(dtype, workspace, direct):
    """direct=False: every layer through the array-namespace im2col code that cupy-im2col shares."""
    backend = NumpyIm2col(workspace_bytes=workspace, direct=direct)
    paths = set()
    for i, args in enumerate(GRID):
        spec = _spec(args, filters=(12, 36)[i % 2])
        plan = direct_numba.plan(spec, np.dtype(dtype))
        paths.add(plan.kernel if direct else choose_path(spec))
        x, w, b = make_arrays(spec, dtype, "normal", i)
        got = backend.conv3d(x, w, b, **spec.conv_kwargs())
        verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, dtype, dtype)
        assert verdict.status != FAIL, (spec.descriptor, dtype, workspace, plan, verdict)
    assert paths == ({"broadcast", "lane"} if direct else {"pointwise", "depthwise", "im2col"})


@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
def test_exact_regime_bitwise_whatever_the_tiling(workspace):
    backend = NumpyIm2col(workspace_bytes=workspace)
    spec = _spec(GRID[1] | dict(activation="relu"), spatial=(9, 8, 7))
    x, w, b = make_arrays(spec, "float32", "exact", 3)
    expected = evaluate(x, w, b, **spec.conv_kwargs()).output.astype(np.float32)
    assert np.array_equal(backend.conv3d(x, w, b, **spec.conv_kwargs()), expected)


@pytest.mark.parametrize("kernel,groups,channels", [(3, 1, 32), (3, 32, 32), (1, 1, 64)])
def test_extra_memory_stays_within_the_workspace(kernel, groups, channels):
    budget = 8 * 2**20
    spec = Conv3DSpec(filters=channels, kernel_size=kernel, groups=groups, padding="same",
                      input_shape=(2, 24, 40, 40, channels))
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    backend = NumpyIm2col(workspace_bytes=budget)
    prepared = backend.prepare(x, w, b, **spec.conv_kwargs())
    output_bytes = np.prod(spec.output_shape) * 4
    prepared.run()  # compiles the kernels: JIT memory is not workspace
    tracemalloc.start()
    prepared.run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak - output_bytes <= budget, (peak, output_bytes)
