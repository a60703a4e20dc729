"""cupy-im2col's host-side glue, run on the CPU with NumPy standing in for CuPy (the algorithm
itself is backends.im2col, exercised by every numpy-im2col test)."""

import types

import numpy as np
import pytest

import backends.cupy_im2col as cupy_module
from conformance.judge import judge
from reference import Conv3DSpec, evaluate
from runtime.data import make_arrays
from runtime.records import Status


@pytest.fixture
def numpy_as_cupy(monkeypatch):
    fake = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    fake.asnumpy = np.asarray
    fake.cuda = types.SimpleNamespace(Device=lambda: types.SimpleNamespace(synchronize=lambda: None))
    monkeypatch.setattr(cupy_module, "_cupy", lambda: fake)
    return fake


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "softmax"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_glue_matches_the_reference(numpy_as_cupy, activation, data_format):
    shape = (2, 5, 6, 7, 4) if data_format == "channels_last" else (2, 4, 5, 6, 7)
    spec = Conv3DSpec(filters=6, kernel_size=(3, 2, 2), strides=(1, 2, 1), padding="same", groups=2,
                      data_format=data_format, activation=activation, input_shape=shape)
    x, w, b = make_arrays(spec, "float32", "normal", 1)
    got = cupy_module.CupyIm2col().conv3d(x, w, b, **spec.conv_kwargs())
    assert got.dtype == np.float32
    verdict = judge(evaluate(x, w, b, **spec.conv_kwargs()), got, x, w, "float32", "float32")
    assert verdict.status != Status.FAIL, verdict
