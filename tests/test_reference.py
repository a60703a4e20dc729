"""The reference: hand-computed values, exact Fraction arithmetic, both engines, and bad input."""

import itertools
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from reference import ACTIVATIONS, conv3d, evaluate
from reference.loops import ENGINE_VARIABLE


def test_hand_computed_single_window():
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 2, 2, 2, 1)
    w = np.ones((2, 2, 2, 1, 1), dtype=np.float32)
    assert conv3d(x, w).item() == 36.0
    assert conv3d(x, w, np.array([-40.0], dtype=np.float32), activation="relu").item() == 0.0


def test_cross_correlation_not_convolution():
    x = np.zeros((1, 1, 1, 3, 1), dtype=np.float32)
    x[0, 0, 0, :, 0] = [1, 2, 3]
    w = np.array([1, 10, 100], dtype=np.float32).reshape(1, 1, 3, 1, 1)
    assert conv3d(x, w).item() == 1 * 1 + 2 * 10 + 3 * 100


def test_same_padding_puts_the_odd_cell_last():
    x = np.ones((1, 1, 1, 4, 1), dtype=np.float32)
    w = np.array([1, 2], dtype=np.float32).reshape(1, 1, 2, 1, 1)
    # total padding 1 goes after: windows (x0,x1) (x1,x2) (x2,x3) (x3,0)
    assert conv3d(x, w, padding="same").ravel().tolist() == [3, 3, 3, 1]


def test_groups_are_contiguous_blocks():
    x = np.array([1, 10, 100, 1000], dtype=np.float32).reshape(1, 1, 1, 1, 4)
    w = np.ones((1, 1, 1, 2, 4), dtype=np.float32)
    assert conv3d(x, w, groups=2).ravel().tolist() == [11, 11, 1100, 1100]


def _fraction_conv(x, w, b, strides, dilation):
    """Exact rational Conv3D (valid padding, channels last, groups 1)."""
    (kd, kh, kw, c, f), (n, d, h, wd, _) = w.shape, x.shape
    out_dims = [(size - dil * (k - 1) - 1) // s + 1
                for size, k, s, dil in zip((d, h, wd), (kd, kh, kw), strides, dilation)]
    out = np.empty((n, *out_dims, f), dtype=object)
    for idx in itertools.product(*(range(v) for v in out.shape)):
        nn, od, oh, ow, ff = idx
        total = Fraction(float(b[ff]))
        for a, bb, cc, ci in itertools.product(range(kd), range(kh), range(kw), range(c)):
            xv = x[nn, od * strides[0] + a * dilation[0], oh * strides[1] + bb * dilation[1],
                   ow * strides[2] + cc * dilation[2], ci]
            total += Fraction(float(xv)) * Fraction(float(w[a, bb, cc, ci, ff]))
        out[idx] = total
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_error_is_what_the_docs_say_against_fractions(dtype, seed):
    """|ref - exact| <= 2^-53 |exact| + gamma_n(2^-53)^2 * S, n = K + 1 (Dot2's bound)."""
    rng = np.random.default_rng(seed)
    strides, dilation = [(1, 2, 1), (1, 1, 1)][seed % 2], [(1, 1, 1), (2, 1, 1)][seed % 2]
    # wide dynamic range with cancellation: the hard case for naive float64 summation
    x = (rng.standard_normal((2, 5, 4, 5, 3)) * 2.0 ** rng.integers(-30, 30, (2, 5, 4, 5, 3))).astype(dtype)
    w = (rng.standard_normal((2, 2, 3, 3, 2)) * 2.0 ** rng.integers(-30, 30, (2, 2, 3, 3, 2))).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    ev = evaluate(x, w, b, strides=strides, dilation_rate=dilation)
    exact = _fraction_conv(x, w, b, strides, dilation)
    n = ev.spec.taps + 1
    u = 2.0**-53
    gamma2 = (n * u / (1 - n * u)) ** 2
    for idx in np.ndindex(exact.shape):
        err = abs(Fraction(ev.pre_activation[idx]) - exact[idx])
        assert err <= Fraction(u) * abs(exact[idx]) + Fraction(gamma2) * Fraction(ev.abs_sum[idx]), idx


def test_special_values_propagate_like_ieee():
    x = np.ones((1, 1, 1, 4, 1), dtype=np.float32)
    x[0, 0, 0, 0, 0] = np.inf
    x[0, 0, 0, 3, 0] = np.nan
    w = np.ones((1, 1, 2, 1, 1), dtype=np.float32)
    y = conv3d(x, w).ravel()
    assert y[0] == np.inf and y[1] == 2 and np.isnan(y[2])
    w[0, 0, 0] = 0  # inf * 0 is NaN
    assert np.isnan(conv3d(x, w).ravel()[0])


def test_every_activation_runs_in_float64():
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 2, 2)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((1, 1, 1, 2, 4)).astype(np.float32)
    for name in ACTIVATIONS:
        y = conv3d(x, w, activation=name)
        assert y.dtype == np.float64 and y.shape == (1, 2, 2, 2, 2 if name == "glu" else 4), name
        assert np.isfinite(y).all(), name
    pre = conv3d(x, w)
    assert np.array_equal(conv3d(x, w, activation=np.tanh), np.tanh(pre))
    gelu = conv3d(x, w, activation="gelu")
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in pre.ravel()])
    assert np.array_equal(gelu.ravel(), exact)


def test_channels_first_is_transposed_channels_last():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4, 6, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 2, 3, 4)).astype(np.float32)
    cl = conv3d(x, w, padding="same", activation="softmax")
    cf = conv3d(np.moveaxis(x, -1, 1), w, padding="same", data_format="channels_first")
    assert np.array_equal(np.moveaxis(conv3d(x, w, padding="same"), -1, 1), cf)
    assert np.allclose(cl.sum(axis=-1), 1)  # softmax acts on the last axis


BAD_INPUTS = [
    (np.zeros((1, 4, 4, 4)), np.zeros((1, 1, 1, 4, 1)), "rank-5 input"),
    (np.zeros((1, 1, 4, 4, 4, 1)), np.zeros((1, 1, 1, 1, 1)), "rank-5 input"),
    (np.zeros((1, 4, 4, 4, 2), dtype=np.int32), np.zeros((1, 1, 1, 2, 1)), "floating-point"),
    (np.zeros((1, 4, 4, 4, 2), dtype=np.complex64), np.zeros((1, 1, 1, 2, 1)), "floating-point"),
    (np.zeros((1, 4, 4, 4, 2), dtype=object), np.zeros((1, 1, 1, 2, 1)), "floating-point"),
    (np.zeros((1, 4, 4, 4, 2)), np.zeros((1, 1, 1, 3, 1)), "does not fit the input"),
    (np.zeros((1, 4, 4, 4, 2)), np.zeros((1, 1, 2, 1)), "kernel must have rank 5"),
    (np.zeros((0, 4, 4, 4, 2)), np.zeros((1, 1, 1, 2, 1)), "positive sizes"),
    (np.zeros((1, 4, 4, 4, 2)), np.zeros((1, 1, 1, 2, 0)), "filters"),
]


@pytest.mark.parametrize("x,w,message", BAD_INPUTS, ids=[m for *_, m in BAD_INPUTS])
def test_bad_input_is_a_clear_error(x, w, message):
    with pytest.raises(ValueError, match=message):
        conv3d(x, w)


def test_bias_shape_checked():
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        conv3d(np.zeros((1, 2, 2, 2, 1)), np.zeros((1, 1, 1, 1, 2)), np.zeros(3))


ENGINE_SCRIPT = """
import sys, numpy as np
from reference import evaluate, engine
rng = np.random.default_rng(7)
rows = []
for dtype in (np.float32, np.float64):
    x = (rng.standard_normal((2, 6, 5, 7, 6)) * 2.0 ** rng.integers(-20, 20, (2, 6, 5, 7, 6))).astype(dtype)
    x[0, 1, 1, 1, 0] = np.inf
    w = rng.standard_normal((3, 2, 3, 3, 4)).astype(dtype)
    ev = evaluate(x, w, rng.standard_normal(4).astype(dtype), padding="same", strides=(1, 2, 3), groups=2)
    rows += [ev.pre_activation, ev.abs_sum]
np.save(sys.argv[1], np.stack([r.ravel() for r in rows[:2]] + [r.ravel() for r in rows[2:]]))
print(engine())
"""


def test_compiled_and_pure_python_are_bit_identical(tmp_path):
    pytest.importorskip("numba")
    outputs = {}
    for engine in ("python", "numba"):
        path = tmp_path / f"{engine}.npy"
        env = dict(os.environ, **{ENGINE_VARIABLE: engine})
        done = subprocess.run([sys.executable, "-c", ENGINE_SCRIPT, str(path)], env=env,
                              capture_output=True, text=True, check=True)
        assert done.stdout.strip() == engine
        outputs[engine] = np.load(path)
    assert outputs["python"].tobytes() == outputs["numba"].tobytes()
