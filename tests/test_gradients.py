"""The backward reference (exact, engine-independent, validating), the gradient judge (no false
alarm on correct backends, every tested bug caught) and the backward direction end to end."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from conformance.cases import Case
from conformance.execute import run_case
from conformance.judge_grad import judge_grad
from reference import conv3d, conv3d_grad, evaluate_grad
from reference.spec import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import VERIFIED, Status
from runtime.worker import Worker

HERE = "tests.backends_for_tests"
SPEC = Conv3DSpec.from_descriptor("g2_mb2_ic4id4ih5iw6_oc6_kd2kh3kw2_sd1sh2sw3_dd1dh1dw1_same_cf_relu_bias")


def _arrays(spec, dtype="float32", data="normal", seed=0):
    x, w, b = make_arrays(spec, dtype, data, seed)
    return x, w, b, make_cotangent(spec, spec.output_shape, dtype, data, seed)


def test_python_and_numba_engines_agree_bitwise():
    x, w, b, dy = _arrays(SPEC, "float64")
    compiled = conv3d_grad(x, w, b, dy, **SPEC.conv_kwargs())
    env = dict(os.environ, CONV3D_REFERENCE_ENGINE="python")
    code = ("import sys, numpy as np, pickle; from reference import conv3d_grad; "
            "a = pickle.load(sys.stdin.buffer); "
            "sys.stdout.buffer.write(pickle.dumps(conv3d_grad(*a[:4], **a[4])))")
    import pickle

    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((x, w, b, dy, SPEC.conv_kwargs())),
                         capture_output=True, env=env, check=True).stdout
    for a, c in zip(compiled, pickle.loads(out)):
        assert a.tobytes() == c.tobytes()


@pytest.mark.parametrize("descriptor", [
    "g1_mb2_ic3id4ih5iw6_oc4_kd2kh3kw2_sd1sh2sw3_dd1dh1dw1_valid_cl_linear_bias",
    "g3_mb1_ic3id5ih4iw7_oc6_kd3kh1kw2_sd1sh1sw1_dd2dh1dw3_same_cf_linear_nobias",
])
def test_adjoint_identity_holds_exactly_on_integers(descriptor):
    """sum(conv(x, w) * dy) = sum(x * dx) = sum(w * dkernel), and dbias = sum(dy), exactly."""
    spec = Conv3DSpec.from_descriptor(descriptor)
    x, w, b, dy = (None if a is None else a.astype(np.float64) for a in _arrays(spec, data="exact"))
    dx, dk, db = conv3d_grad(x, w, b, dy, **spec.conv_kwargs())
    y = conv3d(x, w, None, **spec.conv_kwargs())
    assert np.sum(y * dy) == np.sum(x * dx) == np.sum(w * dk)
    if b is not None:
        axes = tuple(i for i in range(5) if i != (4 if spec.channels_last else 1))
        assert np.array_equal(db, dy.sum(axis=axes))


def test_input_cells_no_output_reads_get_exactly_zero():
    spec = Conv3DSpec(filters=2, kernel_size=2, input_shape=(1, 5, 5, 5, 1), strides=3)
    x, w, b, dy = _arrays(spec)
    dx = conv3d_grad(x, w, b, dy, strides=3)[0]
    assert np.all(dx[:, 2] == 0) and np.all(dx[:, :, 2] == 0) and np.all(dx[:, :, :, 2] == 0)


def test_backward_validates_like_forward_and_checks_dy():
    x, w, b, dy = _arrays(SPEC)
    with pytest.raises(ValueError, match="dy must have the output's shape"):
        conv3d_grad(x, w, b, dy[:, :, :-1], **SPEC.conv_kwargs())
    with pytest.raises(ValueError, match="strides"):
        conv3d_grad(x, w, b, dy, **(SPEC.conv_kwargs() | dict(strides=0)))
    with pytest.raises(ValueError, match="callable"):
        conv3d_grad(x, w, b, dy, **(SPEC.conv_kwargs() | dict(activation=np.tanh)))


@pytest.mark.parametrize("data", ["exact", "normal", "wide", "large", "subnormal", "special"])
def test_rounded_exact_gradients_always_pass(data):
    """The exact gradients rounded to float32: a correct implementation, judged in every regime."""
    from tests.backends_for_tests import reference_grad_float32

    for seed in range(3):
        x, w, b, dy = _arrays(SPEC, "float32", data, seed)
        ev = evaluate_grad(x, w, b, dy, **SPEC.conv_kwargs())
        verdict = judge_grad(ev, reference_grad_float32(x, w, b, dy, **SPEC.conv_kwargs()), x, w,
                             "float32", "float32", exact=data == "exact")
        assert verdict.status in VERIFIED, (data, seed, verdict.message)


def test_kinks_accept_either_one_sided_derivative_in_the_exact_regime():
    x, w = np.array([0.0, 1.0], np.float32).reshape(1, 1, 1, 2, 1), np.ones((1, 1, 1, 1, 1), np.float32)
    dy = np.full((1, 1, 1, 2, 1), 2.0, np.float32)
    ev = evaluate_grad(x, w, None, dy, activation="relu")
    for subgradient in (0.0, 1.0, 0.5):  # relu'(0) may be anything in [0, 1]
        dx = np.array([2 * subgradient, 2.0], np.float32).reshape(x.shape)
        dk = np.array(2.0, np.float32).reshape(w.shape)  # x * dz: the kink's dz meets x = 0
        assert judge_grad(ev, (dx, dk, None), x, w, "float32", "float32", exact=True).status in VERIFIED
    wrong = np.array([3.0, 2.0], np.float32).reshape(x.shape)
    assert judge_grad(ev, (wrong, dk, None), x, w, "float32", "float32", exact=True).status == Status.FAIL


@pytest.mark.parametrize("function", ["grad_bias_over_channels", "grad_dx_shifted"])
def test_gradient_bugs_fail_with_a_repro(function):
    case = Case(SPEC, "float32", "normal", 0, direction="backward")
    with Worker(f"{HERE}:{function}", timeout_s=60, function_direction="backward") as worker:
        record = run_case(worker, case)
    assert record.status == Status.FAIL and record.direction == "backward"
    assert record.repro.endswith("--direction backward")


def test_forward_only_backend_is_unsupported_backward_and_ours_pass():
    case = Case(SPEC, "float64", "exact", 1, direction="backward")
    with Worker(f"{HERE}:exact_float32", timeout_s=60) as worker:  # a plain forward function
        assert run_case(worker, case).status == Status.UNSUPPORTED
    for backend in ("numpy-im2col", "numba-direct"):
        with Worker(backend, timeout_s=60) as worker:
            for data in ("exact", "normal", "special"):
                record = run_case(worker, Case(SPEC, "float32", data, 2, direction="backward"))
                assert record.status in VERIFIED, record.repro


def test_command_line_backward_with_a_plain_function():
    """`--direction backward` takes a module:attr function as conv3d_grad (a repro line)."""
    out = subprocess.run([sys.executable, "-m", "conformance", "--backend", f"{HERE}:reference_grad_float32",
                          "--direction", "backward", "--case", SPEC.descriptor, "--data", "wide"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("PASS"), out.stdout + out.stderr[-2000:]
    assert out.stdout.rstrip().endswith("--direction backward")


@pytest.mark.parametrize("mutant", ["DxFlippedKernel", "DkernelGroupOffset"])  # all 12: make mutants
def test_gradient_mutants_are_caught_by_the_worked_backward_cases(mutant):
    """The worked backward cases in order, up to the first that catches the mutant."""
    from conformance.fixed import worked_cases

    with Worker(f"conformance.mutants.grad_zoo:{mutant}") as worker:
        for case in worked_cases():
            record = run_case(worker, dataclasses.replace(case, direction="backward"))
            assert record.direction == "backward"
            if record.status == Status.FAIL:
                return
    pytest.fail(f"{mutant} passed every worked backward case")


def test_unmutated_gradient_base_passes_the_worked_backward_cases():
    from conformance.engine import Job, run_check

    records = run_check(Job("conformance.mutants.grad_zoo:GradMutant", "worked", "quick", 0,
                            database=None, direction="backward")).records
    assert records and not [r.repro for r in records if r.status.failing]


def test_backward_properties_hold_for_a_correct_backend_and_catch_a_mutant():
    from conformance.properties import BACKWARD_PROPERTIES, Problem, check_property

    problem = Problem(2, (5, 6, 7), 8, 8)
    with Worker("numpy-im2col", timeout_s=60) as worker:
        records = [check_property(worker, name, problem, "float32", 0, "quick")
                   for name in BACKWARD_PROPERTIES]
    assert [r.status for r in records] == [Status.PASS] * len(records), [r.message for r in records]
    assert all(r.direction == "backward" and r.repro.endswith("--direction backward") for r in records)
    with Worker("conformance.mutants.grad_zoo:DxFlippedKernel", timeout_s=60) as worker:
        assert check_property(worker, "grad_adjoint_identity", problem, "float32", 0, "quick").status \
            == Status.FAIL


def test_report_applies_known_deviations_entered_after_the_run():
    from conformance.report import apply_known_deviations
    from runtime.records import Record
    from runtime.tables import frame

    descriptor = "g1_mb2_ic1id1ih1iw2_oc1_kd1kh1kw2_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_nobias"
    rows = [Record(backend=b, check="extreme", case="c", status=Status.FAIL, message="m",
                   descriptor=descriptor, dtype="float64", data="special", seed=0, direction=d)
            for b, d in (("tensorflow", "backward"), ("tensorflow", "forward"), ("torch", "backward"))]
    df, changed = apply_known_deviations(frame(rows))
    assert changed == 1 and list(df["status"]) == ["KNOWN-FAIL", "FAIL", "FAIL"]
    assert df["message"][0].startswith("known deviation: TensorFlow's CPU filter gradient")


def _fraction_grads(x, w, dy, strides, dilation):
    """Exact rational (dx, dkernel, dbias): valid padding, channels last, groups 1, linear."""
    import itertools
    from fractions import Fraction

    dx, dk = np.full(x.shape, Fraction(0), object), np.full(w.shape, Fraction(0), object)
    db = np.full(dy.shape[-1], Fraction(0), object)
    for n, od, oh, ow, f in np.ndindex(*dy.shape):
        g = Fraction(float(dy[n, od, oh, ow, f]))
        db[f] += g
        for a, b, c, ci in itertools.product(*(range(s) for s in w.shape[:4])):
            i = (n, od * strides[0] + a * dilation[0], oh * strides[1] + b * dilation[1],
                 ow * strides[2] + c * dilation[2], ci)
            dx[i] += g * Fraction(float(w[a, b, c, ci, f]))
            dk[a, b, c, ci, f] += g * Fraction(float(x[i]))
    return dx, dk, db


def _float32_grads(x, w, dy, strides, dilation):
    """The same sums accumulated one term at a time in float32: a correct, unhelpful order."""
    dx, dk = np.zeros(x.shape, np.float32), np.zeros(w.shape, np.float32)
    db = np.zeros(dy.shape[-1], np.float32)
    for n, od, oh, ow, f in np.ndindex(*dy.shape):
        g = dy[n, od, oh, ow, f]
        db[f] += g
        for a, b, c, ci in np.ndindex(*w.shape[:4]):
            i = (n, od * strides[0] + a * dilation[0], oh * strides[1] + b * dilation[1],
                 ow * strides[2] + c * dilation[2], ci)
            dx[i] += np.float32(g * w[a, b, c, ci, f])
            dk[a, b, c, ci, f] += np.float32(g * x[i])
    return dx, dk, db


@pytest.mark.parametrize("seed", range(3))
def test_gradient_bound_against_fractions(seed):
    """Against exact rational gradients: the reference is within 2^-52 |g| + gamma_n(2^-53)^2
    sum|a||b| (what judge_grad assumes of it), and a float32 implementation summing term by
    term is within the judge's bound of both the exact value and the reference."""
    from fractions import Fraction

    from conformance.judge import gamma
    from conformance.judge_grad import gradient_bounds

    rng = np.random.default_rng(seed)
    strides, dilation = [((1, 2, 1), (1, 1, 1)), ((1, 1, 1), (2, 1, 1)), ((2, 1, 2), (1, 1, 1))][seed]

    def wide(shape):  # a wide dynamic range with cancellation, far from float32's limits
        return (rng.standard_normal(shape) * 2.0 ** rng.integers(-20, 20, shape)).astype(np.float32)

    x, w = wide((2, 5, 4, 5, 3)), wide((2, 2, 3, 3, 2))
    kwargs = dict(strides=strides, dilation_rate=dilation)
    dy = wide(Conv3DSpec(filters=2, kernel_size=(2, 2, 3), input_shape=x.shape, **kwargs).output_shape)
    ev = evaluate_grad(x, w, None, dy, **kwargs)
    exact = _fraction_grads(x, w, dy, strides, dilation)
    ours = _float32_grads(x, w, dy, strides, dilation)
    bounds = gradient_bounds(ev, x, w, "float32", "float32")
    terms = ev.spec.grad_terms
    assert terms == (2 * 2 * 3 * 2, dy.size // 2, dy.size // 2)
    refs = (ev.dx, ev.dkernel, conv3d_grad(x, w, np.zeros(2, np.float32), dy, **kwargs)[2])
    abs_sums = (ev.dx_abs, ev.dkernel_abs, ev.dbias_abs)
    for name, ref, ex, got, bound, abs_sum, n in zip(("dx", "dkernel", "dbias"), refs, exact, ours,
                                                      bounds, abs_sums, terms):
        g2 = Fraction(gamma(n, 2.0**-53)) ** 2
        assert any(Fraction(float(g)) != e for g, e in zip(got.ravel(), ex.ravel())), name  # not vacuous
        for idx in np.ndindex(ex.shape):
            e = ex[idx]
            assert abs(Fraction(ref[idx]) - e) <= Fraction(2.0**-52) * abs(e) + g2 * Fraction(abs_sum[idx]), \
                (name, idx)
            assert abs(Fraction(float(got[idx])) - e) <= Fraction(bound[idx]), (name, idx, seed)
            assert abs(Fraction(float(got[idx])) - Fraction(ref[idx])) <= Fraction(bound[idx]), (name, idx)


def _per_op_grads(x, w, b, dy, spec, dtype, accumulate_dkernel_in_dtype=False):
    """A framework's backward on float16/bfloat16 tensors, channels last: z = conv (float32 sums,
    rounded) + bias (rounded), y = tanh(z) rounded, act' = 1 - y*y op by op in the dtype, dz
    rounded to the dtype (dz = dy without an activation), then float32 sums rounded once. The
    broken variant accumulates dkernel in the dtype, one output position at a time."""
    from backends.im2col_grad import all_columns, conv3d_grad_channels_last
    from reference.formats import numpy_dtype

    low = numpy_dtype(dtype)
    rnd = lambda a: np.asarray(a, np.float32).astype(low).astype(np.float32)  # noqa: E731
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    z = rnd(rnd(conv3d(x32, w32, None, **{**spec.conv_kwargs(), "activation": None})) + rnd(b))
    if spec.activation == "tanh":
        y = rnd(np.tanh(z))
        dz = rnd(dy.astype(np.float32) * rnd(1 - rnd(y * y)))
    else:
        assert spec.activation in (None, "linear")
        dz = dy.astype(np.float32)
    dx, dk, db = conv3d_grad_channels_last(np, x32, w32, dz, spec)
    if accumulate_dkernel_in_dtype:
        cols, dz_rows = all_columns(np, x32, spec)[0], dz.reshape(-1, spec.filters)
        dk = np.zeros((cols.shape[1], spec.filters), np.float32)
        for col, row in zip(cols, dz_rows):
            dk = rnd(dk + np.outer(col, row))
        dk = dk.reshape(w.shape)
    return tuple(a.astype(low) for a in (dx, dk, db))


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_per_op_low_precision_backward_passes_and_dtype_accumulation_fails(dtype):
    """float32-per-op: a framework rounding dz to the dtype is judged correct in every realistic
    regime; summing dkernel in the dtype instead of float32 is caught (without an activation: with
    one, act' evaluated in the dtype leaves the bound a few ulps of the dtype per dz)."""
    descriptor = "g1_mb2_ic4id12ih12iw12_oc4_kd3kh3kw3_sd1sh1sw1_dd1dh1dw1_same_cl_{}_bias"
    spec = Conv3DSpec.from_descriptor(descriptor.format("tanh"))
    for data in ("normal", "wide", "uniform"):
        for seed in range(2):
            x, w, b, dy = _arrays(spec, dtype, data, seed)
            ev = evaluate_grad(x, w, b, dy, **spec.conv_kwargs())
            verdict = judge_grad(ev, _per_op_grads(x, w, b, dy, spec, dtype), x, w, dtype, "float32-per-op")
            assert verdict.status in VERIFIED, (dtype, data, seed, verdict.message)
    spec = Conv3DSpec.from_descriptor(descriptor.format("linear"))
    x, w, b, dy = _arrays(spec, dtype, "normal", 0)
    ev = evaluate_grad(x, w, b, dy, **spec.conv_kwargs())
    verdict = judge_grad(ev, _per_op_grads(x, w, b, dy, spec, dtype), x, w, dtype, "float32-per-op")
    assert verdict.status == Status.PASS, verdict.message
    broken = _per_op_grads(x, w, b, dy, spec, dtype, accumulate_dkernel_in_dtype=True)
    verdict = judge_grad(ev, broken, x, w, dtype, "float32-per-op")
    assert verdict.status == Status.FAIL and "dkernel" in verdict.message, verdict.message
