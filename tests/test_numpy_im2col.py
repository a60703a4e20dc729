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
    """filters 12 with 6 channels: the lane kernel for one group or a stride along W, else the
    W-vector kernel (6 or 2 filters per group); 36: broadcast for 1 or 2 groups (18 or more filters
    per group), W-vector for 6."""
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
    assert paths == ({"broadcast", "lane", "wvector"} if direct else {"pointwise", "depthwise", "im2col"})


@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
def test_exact_regime_bitwise_whatever_the_tiling(workspace):
    backend = NumpyIm2col(workspace_bytes=workspace)
    spec = _spec(GRID[1] | dict(activation="relu"), spatial=(9, 8, 7))
    x, w, b = make_arrays(spec, "float32", "exact", 3)
    expected = evaluate(x, w, b, **spec.conv_kwargs()).output.astype(np.float32)
    assert np.array_equal(backend.conv3d(x, w, b, **spec.conv_kwargs()), expected)


@pytest.mark.parametrize("kernel,groups,channels", [(3, 1, 32), (3, 32, 32), (3, 8, 32), (1, 1, 64)])
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


DEPTHWISE = [  # (input shape, kernel, strides, dilation, padding): edges, overlapping blocks, tails
    ((2, 7, 9, 11, 37), (3, 2, 3), (1, 2, 1), 1, "same"),
    ((1, 5, 6, 7, 16), (2, 3, 3), 1, (1, 2, 2), "same"),
    ((1, 6, 9, 10, 20), (2, 3, 3), (2, 1, 2), 1, "valid"),
    ((1, 3, 2, 2, 33), 3, 1, 1, "same"),
    ((2, 4, 5, 3, 17), 4, (3, 1, 2), 1, "same"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data", ["normal", "special", "exact"])
@pytest.mark.parametrize("kernel,channels_per_group", [("depthwise", 1), ("wvector", 4)])
def test_grouped_kernels_within_bound(kernel, channels_per_group, dtype, data):
    """groups == channels == filters, channels last: the depthwise kernel, which reads the input in
    place and handles the padding itself (special values must still propagate as in the reference);
    4 channels and 4 filters per group: the W-vector kernel (the layers whose W stride is 1). With
    and without bias."""
    backend = NumpyIm2col()
    for i, ((shape, k, s, d, padding), bias) in enumerate(itertools.product(DEPTHWISE, [True, False])):
        shape = (*shape[:4], shape[4] - shape[4] % channels_per_group)
        spec = Conv3DSpec(filters=shape[-1], kernel_size=k, strides=s, dilation_rate=d, padding=padding,
                          groups=shape[-1] // channels_per_group, use_bias=bias, input_shape=shape)
        plan = direct_numba.plan(spec, np.dtype(dtype))
        if spec.strides[2] > 1 and kernel == "wvector":
            assert plan.kernel == "lane", (spec.descriptor, plan)
            continue
        assert plan.kernel == kernel, (spec.descriptor, plan)
        x, w, b = make_arrays(spec, dtype, data, i)
        got = backend.conv3d(x, w, b, **spec.conv_kwargs())
        verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, dtype, dtype)
        assert verdict.status != FAIL, (spec.descriptor, dtype, data, plan, verdict)


def test_depthwise_plan_falls_back_to_the_lane_kernel():
    """Channels first, a non-contiguous input, non-finite weights or fewer channels than a vector:
    the lane kernel."""
    spec = Conv3DSpec(filters=32, kernel_size=3, groups=32, padding="same", input_shape=(1, 4, 4, 4, 32))
    assert direct_numba.plan(spec, np.dtype("float32")).kernel == "depthwise"
    assert direct_numba.plan(spec, np.dtype("float32"), in_place=False).kernel == "lane"
    first = Conv3DSpec(filters=32, kernel_size=3, groups=32, data_format="channels_first",
                       input_shape=(1, 32, 4, 4, 4))
    assert direct_numba.plan(first, np.dtype("float32")).kernel == "lane"
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    w[0, 0, 0, 0, 5] = np.inf  # the reference's padding taps give 0 * inf = NaN at the borders
    got = NumpyIm2col().conv3d(x, w, b, **spec.conv_kwargs())
    assert judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, "float32", "float32").status != FAIL
    narrow = Conv3DSpec(filters=8, kernel_size=3, groups=8, input_shape=(1, 4, 4, 4, 8))
    assert direct_numba.plan(narrow, np.dtype("float32")).kernel == "lane"
