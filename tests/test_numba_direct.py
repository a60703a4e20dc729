"""numba-direct against the reference on a grid covering every argument and kernel, tiny
workspaces (forcing depth and height tiling), its memory budget, and its kernel plans."""

import itertools
import tracemalloc

import numpy as np
import pytest

from backends.numba_direct import NumbaDirect
from backends.numba_direct.plan import plan
from conformance.judge import judge
from conformance.judge_grad import judge_grad
from reference import Conv3DSpec, evaluate, evaluate_grad
from runtime.data import make_arrays, make_cotangent
from runtime.records import Status
from tests.layer_grid import GRID, layer_spec

# Kernels are compiled per dtype and block shape (cached on disk after the first time): under
# pytest-xdist the tests of one dtype run in one process, so no two processes compile a variant.
DTYPES = [pytest.param(d, marks=pytest.mark.xdist_group(f"numba-direct-{d}")) for d in ("float32", "float64")]
FLOAT32 = pytest.mark.xdist_group("numba-direct-float32")


@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
@pytest.mark.parametrize("dtype", DTYPES)
def test_grid_within_bound(dtype, workspace):
    backend = NumbaDirect(workspace_bytes=workspace)
    kernels = set()
    for i, args in enumerate(GRID):
        spec = layer_spec(args, filters=(12, 36)[i % 2])
        layer_plan = plan(spec, np.dtype(dtype))
        kernels.add(layer_plan.kernel)
        x, w, b = make_arrays(spec, dtype, "normal", i)
        got = backend.conv3d(x, w, b, **spec.conv_kwargs())
        verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, dtype, dtype)
        assert verdict.status != Status.FAIL, (spec.descriptor, dtype, workspace, layer_plan, verdict)
    assert kernels == {"broadcast", "lane", "wvector"}


@FLOAT32
@pytest.mark.parametrize("workspace", [256 * 2**20, 4096])
def test_exact_regime_bitwise_whatever_the_tiling(workspace):
    backend = NumbaDirect(workspace_bytes=workspace)
    spec = layer_spec(GRID[1] | dict(activation="relu"), spatial=(9, 8, 7))
    x, w, b = make_arrays(spec, "float32", "exact", 3)
    expected = evaluate(x, w, b, **spec.conv_kwargs()).output.astype(np.float32)
    assert np.array_equal(backend.conv3d(x, w, b, **spec.conv_kwargs()), expected)


@FLOAT32
@pytest.mark.parametrize("kernel,groups,channels,filters", [
    (3, 1, 32, 32), (3, 32, 32, 32), (3, 8, 32, 32), (1, 1, 64, 64),
    (3, 1, 2, 3), (3, 2, 32, 34),  # filters padded to whole blocks: one tile's padding at a time
])
def test_extra_memory_stays_within_the_workspace(kernel, groups, channels, filters):
    budget = 8 * 2**20
    spec = Conv3DSpec(filters=filters, kernel_size=kernel, groups=groups, padding="same",
                      input_shape=(2, 24, 40, 40, channels))
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    backend = NumbaDirect(workspace_bytes=budget)
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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("data", ["normal", "special", "exact"])
@pytest.mark.parametrize("kernel,channels_per_group", [("depthwise", 1), ("wvector", 4)])
def test_grouped_kernels_within_bound(kernel, channels_per_group, dtype, data):
    """groups == channels == filters, channels last: the depthwise kernel, which reads the input in
    place and handles the padding itself (special values must still propagate as in the reference);
    4 channels and 4 filters per group: the W-vector kernel (the layers whose W stride is 1). With
    and without bias."""
    backend = NumbaDirect()
    for i, ((shape, k, s, d, padding), bias) in enumerate(itertools.product(DEPTHWISE, [True, False])):
        shape = (*shape[:4], shape[4] - shape[4] % channels_per_group)
        spec = Conv3DSpec(filters=shape[-1], kernel_size=k, strides=s, dilation_rate=d, padding=padding,
                          groups=shape[-1] // channels_per_group, use_bias=bias, input_shape=shape)
        layer_plan = plan(spec, np.dtype(dtype))
        if spec.strides[2] > 1 and kernel == "wvector":
            assert layer_plan.kernel == "lane", (spec.descriptor, layer_plan)
            continue
        assert layer_plan.kernel == kernel, (spec.descriptor, layer_plan)
        x, w, b = make_arrays(spec, dtype, data, i)
        got = backend.conv3d(x, w, b, **spec.conv_kwargs())
        verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, dtype, dtype)
        assert verdict.status != Status.FAIL, (spec.descriptor, dtype, data, layer_plan, verdict)


@FLOAT32
def test_depthwise_plan_falls_back_to_the_lane_kernel():
    """Channels first, a non-contiguous input, non-finite weights or fewer channels than a vector:
    the lane kernel."""
    spec = Conv3DSpec(filters=32, kernel_size=3, groups=32, padding="same", input_shape=(1, 4, 4, 4, 32))
    assert plan(spec, np.dtype("float32")).kernel == "depthwise"
    assert plan(spec, np.dtype("float32"), in_place=False).kernel == "lane"
    first = Conv3DSpec(filters=32, kernel_size=3, groups=32, data_format="channels_first",
                       input_shape=(1, 32, 4, 4, 4))
    assert plan(first, np.dtype("float32")).kernel == "lane"
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    w[0, 0, 0, 0, 5] = np.inf  # the reference's padding taps give 0 * inf = NaN at the borders
    got = NumbaDirect().conv3d(x, w, b, **spec.conv_kwargs())
    verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, "float32", "float32")
    assert verdict.status != Status.FAIL, verdict
    narrow = Conv3DSpec(filters=8, kernel_size=3, groups=8, input_shape=(1, 4, 4, 4, 8))
    assert plan(narrow, np.dtype("float32")).kernel == "lane"


@FLOAT32
@pytest.mark.parametrize("data", ["exact", "normal"])
def test_backward_grid_within_bound(data):
    """dx by the transposed convolution (every stride phase), dkernel and dbias, on a third of
    the grid (every argument, every kernel of the forward pass)."""
    backend = NumbaDirect()
    for i, args in enumerate(GRID[data == "normal"::3]):
        spec = layer_spec(args, filters=(12, 36)[i % 2])
        x, w, b = make_arrays(spec, "float32", data, i)
        dy = make_cotangent(spec, spec.output_shape, "float32", data, i)
        got = backend.conv3d_grad(x, w, b, dy, **spec.conv_kwargs())
        verdict = judge_grad(evaluate_grad(x, w, b, dy, **spec.conv_kwargs()), got, x, w, "float32",
                             "float32", exact=data == "exact")
        assert verdict.status != Status.FAIL, (spec.descriptor, data, i, verdict)


@FLOAT32
@pytest.mark.parametrize("data", ["exact", "normal", "special"])
@pytest.mark.parametrize("args", [dict(strides=(1, 2, 1)), dict(dilation_rate=(2, 1, 2), padding="same"),
                                  dict(strides=2, padding="same", data_format="channels_first")])
@pytest.mark.parametrize("channels,filters,groups", [(20, 20, 20), (16, 32, 8), (8, 64, 1), (12, 36, 1)])
def test_backward_paths_within_bound(channels, filters, groups, args, data):
    """Depthwise and 8-group layers: dkernel by the numba kernel vectorised over groups, dx by
    the depthwise or W-vector kernel; dense layers of 64 and 36 filters: dkernel by the blocked
    kernel (36: the last channel and filter blocks overlap), dx by the broadcast kernel. (Dense
    layers of 12 filters in test_backward_grid_within_bound: both by NumPy's GEMM.)"""
    fmt = args.get("data_format", "channels_last")
    shape = (2, 5, 7, 9, channels) if fmt == "channels_last" else (2, channels, 5, 7, 9)
    spec = Conv3DSpec(filters=filters, kernel_size=3, groups=groups, activation="tanh",
                      input_shape=shape, **args)
    x, w, b = make_arrays(spec, "float32", data, 3)
    dy = make_cotangent(spec, spec.output_shape, "float32", data, 3)
    got = NumbaDirect().conv3d_grad(x, w, b, dy, **spec.conv_kwargs())
    verdict = judge_grad(evaluate_grad(x, w, b, dy, **spec.conv_kwargs()), got, x, w, "float32",
                         "float32", exact=data == "exact")
    assert verdict.status != Status.FAIL, (spec.descriptor, data, verdict)


@pytest.mark.parametrize("size,k,s,d,pad", [(9, 3, 2, 1, 1), (10, 4, 3, 2, 0), (7, 2, 3, 1, 0),
                                            (12, 3, 4, 6, 5), (5, 1, 2, 1, 0), (8, 5, 1, 2, 4)])
def test_transposed_phases_cover_every_input_once(size, k, s, d, pad):
    """Along one axis the phases write each input cell once, from exactly the (output, tap) pairs
    that read it: the reference's index relation o*s + t*d = i + pad."""
    from backends.numba_direct.transposed import axis_phases

    outputs = (size + pad + pad - (k - 1) * d - 1) // s + 1
    seen = {}
    for p in axis_phases(size, k, s, d, pad):
        for u in range(p.count):
            i = p.first + u * s
            pairs = {(p.start + u + j * p.dilation, t) for j, t in enumerate(p.taps)}
            assert i not in seen
            seen[i] = {(o, t) for o, t in pairs if 0 <= o < outputs}
    expected = {i: {(o, t) for o in range(outputs) for t in range(k) if o * s + t * d == i + pad}
                for i in range(size)}
    assert {i: v for i, v in expected.items() if v} == {i: v for i, v in seen.items() if v}
    assert all(not expected[i] for i in set(range(size)) - set(seen))
