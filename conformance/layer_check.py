"""The `layer` check: the whole keras.layers.Conv3D, its arguments beyond the convolution.

Each case names the seed argument it tests (kernel_initializer, bias_initializer, kernel_regularizer,
bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, data_format default,
padding, use_bias, training step, serialization, shapes, arguments), runs one probe of
backends.keras_layer in the backend's worker and judges what it observed against this project's
own reference (reference.layer, reference.conv3d, reference.conv3d_grad), never against Keras.

How each is judged (float32 throughout, u = 2^-24, gamma(k) = k u / (1 - k u)):
- initializers: every value within the law's support (the float32 limit: one rounding), the
  Kolmogorov-Smirnov test for the documented law at significance ALPHA (scipy.stats.kstest; the
  seeds are fixed, so the verdict is deterministic), and the same seed drawing the same kernel
  bitwise. The default initializer draws from the global seed (keras.utils.set_random_seed).
- regularizers: a float32 sum of n non-negative terms in any order is within gamma(n - 1) of the
  exact sum; the square of each term, the factor's conversion to float32, its product and (L1L2)
  the final addition add one rounding each, the activity loss's division by the batch another:
  |loss - exact| <= gamma(n + 5) exact, the exact value computed from the very weights and output
  the layer holds and returned.
- constraints: after w - lr g with lr a power of two (one rounding), the projection
  w * desired(norm) / (eps + norm) has a logarithmic derivative in the norm within [-1, 1]
  (desired is the identity or a clip, MinMaxNorm mixes the two), so the norm's relative error
  (m squares summed: gamma(m + 3) for m elements per norm, and the square root) passes into the
  factor at most once; the addition of eps, the division, the product, and MinMaxNorm's three
  operations add one rounding each: |w' - exact| <= gamma(m + 14) |exact| per element (plus
  2^-50 |exact| for the float64 reference and a few subnormal units for roundings near zero).
- the training step, data_format default, use_bias and padding rows use exact-regime data (small
  integers, power-of-two sizes and learning rate: every partial sum, gradient and update is a
  float32 number), so they are judged at tolerance zero, as VERIFICATION.md's exact regime is;
  serialization and padding spellings must give bitwise-identical outputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from conformance.cases import command
from conformance.execute import refusal_message
from conformance.judge import pre_activation_bound
from conformance.judge_grad import gradient_bounds
from reference import conv3d, conv3d_grad, evaluate_grad
from reference.layer import (
    CONSTRAINT_DEFAULTS,
    activity_loss,
    constrain,
    initializer_law,
    mse_cotangent,
    regularization,
    sgd_step,
)
from reference.spec import Conv3DSpec
from runtime.records import Record, Status
from runtime.worker import DECLINED, Worker

U32 = 2.0 ** -24
ETA32 = 2.0 ** -149  # float32's smallest subnormal: the absolute error of a rounding near zero
REFERENCE_ERROR = 2.0 ** -50  # relative error of the float64 reference values, generously
ALPHA = 1e-3  # significance of the Kolmogorov-Smirnov test of an initializer's law
LEARNING_RATE = 0.5  # a power of two: lr * g is exact
FIT_LEARNING_RATE = 2.0 ** -4
ARGUMENTS = ("kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
             "activity_regularizer", "kernel_constraint", "bias_constraint", "data_format default",
             "padding", "use_bias", "training step", "serialization", "shapes", "arguments")


def gamma(k: int) -> float:
    return k * U32 / (1 - k * U32)


Verdict = tuple[Status, str]


@dataclass(frozen=True)
class LayerCase:
    """One row: the argument it tests, the probe it runs, its parameters (from a seeded
    generator) and the judge of what the probe returned."""

    id: str
    argument: str
    probe: str
    params: Callable[[np.random.Generator], dict]
    judge: Callable[[dict, dict], Verdict]
    quick: bool = True  # also in the quick profile


def _integers(rng: np.random.Generator, shape, low: int = -2, high: int = 2) -> np.ndarray:
    return rng.integers(low, high + 1, size=shape).astype(np.float32)


def _normal(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _ok(failures: list[str], passed: str) -> Verdict:
    return (Status.FAIL, "; ".join(failures)) if failures else (Status.PASS, passed)


def _bitwise(name: str, got, expected) -> list[str]:
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return [f"{name}: shape {got.shape}, expected {expected.shape}"]
    differ = int(np.count_nonzero(got.astype(np.float64) != expected))
    if not differ:
        return []
    at = np.unravel_index(int(np.argmax(got.astype(np.float64) != expected)), got.shape)
    return [f"{name}: {differ} of {got.size} elements differ, first at {tuple(map(int, at))}: got "
            f"{float(got[at])!r}, expected {float(expected[at])!r}"]


def _ratios(got, expected, bound) -> np.ndarray:
    """|got - expected| / bound per element (0 where they are equal, NaN where got is NaN)."""
    got = np.asarray(got, np.float64)
    ratio = np.abs(got - expected) / np.maximum(bound, np.finfo(np.float64).tiny)
    return np.where(got == expected, 0.0, ratio)


def _worst_ratio(got, expected, bound) -> float:
    return float(np.max(_ratios(got, expected, bound), initial=0.0))


def _within(name: str, got, expected, bound) -> list[str]:
    got = np.asarray(got, np.float64)
    if got.shape != np.shape(expected):
        return [f"{name}: shape {got.shape}, expected {np.shape(expected)}"]
    ratio = _ratios(got, expected, bound)
    worst = int(np.argmax(ratio))
    if ratio.flat[worst] <= 1:
        return []
    at = np.unravel_index(worst, got.shape)
    return [f"{name}: {int(np.count_nonzero(~(ratio <= 1)))} of {got.size} elements outside the bound, "
            f"worst at {tuple(map(int, at))}: got {got[at]!r}, expected {np.asarray(expected)[at]!r}, "
            f"error/bound {ratio.flat[worst]:.3g}"]


# --- initializers -------------------------------------------------------------------------------

INIT_PROBLEM = dict(input_shape=(1, 6, 6, 6, 16), filters=32, kernel_size=(3, 3, 3))


def _initializer_case(name: str | None, groups: int, quick: bool = True) -> LayerCase:
    """kernel_initializer `name` (None: the default, glorot_uniform) on a layer of `groups`."""
    label = name or "default"

    def params(rng):
        args = dict(groups=groups)
        if name:
            args["kernel_initializer"] = {"class_name": name, "config": {"seed": int(rng.integers(2**31))}}
        return dict(INIT_PROBLEM, args=args, seed=int(rng.integers(2**31)))

    def judge(p, got):
        kernel = got["kernel"]
        shape = (*INIT_PROBLEM["kernel_size"], INIT_PROBLEM["input_shape"][-1] // groups,
                 INIT_PROBLEM["filters"])
        if kernel.shape != shape:
            return Status.FAIL, f"kernel shape {kernel.shape}, expected {shape}"
        return _judge_law(name or "glorot_uniform", kernel, got["kernel_again"])

    return LayerCase(f"kernel_initializer:{label}:g{groups}", "kernel_initializer", "initializer",
                     params, judge, quick)


def _judge_law(name: str, kernel: np.ndarray, again: np.ndarray) -> Verdict:
    from scipy import stats

    law = initializer_law(name, kernel.shape)
    values = kernel.astype(np.float64).ravel()
    failures = []
    largest = float(np.abs(values).max())
    if not largest <= law.support * (1 + 2 * U32):  # a NaN fails too
        failures.append(f"|value| {largest:.6g} exceeds the law's support {law.support:.6g}")
    if law.distribution == "uniform":
        cdf = stats.uniform(loc=-law.scale, scale=2 * law.scale).cdf
    else:
        cdf = stats.truncnorm(-2.0, 2.0, scale=law.scale).cdf
    test = stats.kstest(values, cdf)
    if not test.pvalue >= ALPHA:
        failures.append(f"Kolmogorov-Smirnov against {law.distribution}({law.scale:.6g}): D = "
                        f"{test.statistic:.4f}, p = {test.pvalue:.2e} < {ALPHA:g}")
    failures += _bitwise("the same seed drew another kernel", again, kernel)
    return _ok(failures, f"{values.size} values, {law.distribution} scale {law.scale:.6g}: "
                         f"KS p = {test.pvalue:.3f}, max |value| {largest:.6g} <= {law.support:.6g}")


def _bias_initializer_case(initializer: dict | None, quick: bool = True) -> LayerCase:
    label = initializer["class_name"] if initializer else "default"
    value = initializer["config"].get("value", 1.0) if initializer else 0.0

    def params(rng):
        args = dict(bias_initializer=initializer) if initializer else {}
        return dict(INIT_PROBLEM, args=args, seed=int(rng.integers(2**31)))

    def judge(p, got):
        bias = got["bias"]
        if bias is None or bias.shape != (INIT_PROBLEM["filters"],):
            shape = None if bias is None else bias.shape
            return Status.FAIL, f"bias {shape}, expected ({INIT_PROBLEM['filters']},)"
        return _ok(_bitwise("bias", bias, np.full(bias.shape, value)), f"every bias element is {value:g}")

    return LayerCase(f"bias_initializer:{label}", "bias_initializer", "initializer", params, judge, quick)


# --- regularizers -------------------------------------------------------------------------------

REG_PROBLEM = dict(x=(3, 5, 6, 7, 8), kernel=(3, 3, 3, 4, 8), groups=2)
FACTORS = {"L1": dict(l1=0.01), "L2": dict(l2=0.02), "L1L2": dict(l1=0.01, l2=0.02)}


def _regularizer_case(where: str, kind: str, quick: bool = True) -> LayerCase:
    argument = f"{where}_regularizer"

    def params(rng):
        x, kernel = _normal(rng, REG_PROBLEM["x"]), _normal(rng, REG_PROBLEM["kernel"])
        return dict(x=x, kernel=kernel, bias=_normal(rng, (kernel.shape[-1],)),
                    args={argument: {"class_name": kind, "config": FACTORS[kind]},
                          "groups": REG_PROBLEM["groups"]})

    def judge(p, got):
        if len(got["losses"]) != 1:
            return Status.FAIL, f"layer.losses holds {len(got['losses'])} losses, expected 1"
        if where == "activity":
            source, exact = got["y"], activity_loss(got["y"], **FACTORS[kind])
        else:
            source = p[where]
            exact = regularization(source, **FACTORS[kind])
        bound = gamma(source.size + 5) * exact
        loss = got["losses"][0]
        if not abs(loss - exact) <= bound:  # a NaN loss fails too
            return Status.FAIL, (f"loss {loss!r}, expected {exact!r} (from the layer's own "
                                 f"{'output' if where == 'activity' else where}): error "
                                 f"{abs(loss - exact):.3g} > bound {bound:.3g}")
        return Status.PASS, f"loss {loss!r}, exact {exact!r}, error/bound {abs(loss - exact) / bound:.3g}"

    return LayerCase(f"{argument}:{kind}", argument, "regularizer", params, judge, quick)


# --- constraints --------------------------------------------------------------------------------

CONSTRAINT_KERNEL = (3, 3, 3, 4, 8)


def _constraint_case(where: str, name: str, config: dict, quick: bool = True) -> LayerCase:
    argument = f"{where}_constraint"
    label = name + ("(" + ",".join(f"{k}={v}" for k, v in config.items()) + ")" if config else "")

    def params(rng):
        kernel = _normal(rng, CONSTRAINT_KERNEL)
        f = kernel.shape[-1]
        return dict(x=np.zeros((1, 5, 5, 5, 4), np.float32), kernel=kernel, bias=_normal(rng, (f,)),
                    kernel_grad=_normal(rng, kernel.shape), bias_grad=_normal(rng, (f,)),
                    learning_rate=LEARNING_RATE,
                    args={argument: {"class_name": name, "config": config}})

    def judge(p, got):
        failures, worst = [], 0.0
        for part in ("kernel", "bias"):
            stepped = sgd_step(p[part], p[f"{part}_grad"], LEARNING_RATE)
            if part == where:
                expected = constrain(name, stepped, **config)
                axis = (CONSTRAINT_DEFAULTS[name] | config).get("axis", 0)
                axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
                m = 1 if name == "NonNeg" else math.prod(stepped.shape[a] for a in axes)
                bound = (gamma(m + 14) + REFERENCE_ERROR) * np.abs(expected) + 16 * ETA32
            else:
                expected, bound = stepped, (U32 + REFERENCE_ERROR) * np.abs(stepped) + ETA32
            failures += _within(part, got[part], expected, bound)
            worst = max(worst, _worst_ratio(got[part], expected, bound))
        return _ok(failures, f"{where} projected by {label} within gamma(m + 14) after one SGD step "
                             f"(worst error/bound {worst:.3g})")

    return LayerCase(f"{argument}:{label}", argument, "constraint", params, judge, quick)


# --- exact-regime rows: training step, data_format default, use_bias, padding -------------------

EXACT_FILTERS = 8


def _exact_problem(rng, groups: int = 1, bias: bool = True, channels_first: bool = False) -> dict:
    """(2, 6, 6, 6, 4) -> (2, 4, 4, 4, 8) under a 3x3x3 "valid" kernel: N*D*H*W and F are powers of
    two, the data small integers. F differs from the output's W: a (1, F, 1, 1, 1) bias on a W of F
    meets the known keras-tensorflow ops.add deviation, which the forward checks report."""
    x = _integers(rng, (2, 6, 6, 6, 4))
    if channels_first:
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    return dict(x=x, kernel=_integers(rng, (3, 3, 3, 4 // groups, EXACT_FILTERS)),
                bias=_integers(rng, (EXACT_FILTERS,)) if bias else None, args=dict(groups=groups))


def _fit_case(groups: int, bias: bool, quick: bool = True) -> LayerCase:
    """Exact regime: the update is a float32 number, judged at tolerance zero."""
    def params(rng):
        p = _exact_problem(rng, groups, bias)
        return dict(p, target=_integers(rng, (2, 4, 4, 4, EXACT_FILTERS), -3, 3),
                    learning_rate=FIT_LEARNING_RATE)

    def judge(p, got):
        y = conv3d(p["x"], p["kernel"], p["bias"], groups=groups)
        _, dkernel, dbias = conv3d_grad(p["x"], p["kernel"], p["bias"], mse_cotangent(y, p["target"]),
                                        groups=groups)
        failures = _bitwise("kernel", got["kernel"], sgd_step(p["kernel"], dkernel, FIT_LEARNING_RATE))
        if bias:
            failures += _bitwise("bias", got["bias"], sgd_step(p["bias"], dbias, FIT_LEARNING_RATE))
        return _ok(failures, "kernel and bias equal w - lr * reference.conv3d_grad exactly")

    return LayerCase(f"training step:mse-sgd:g{groups}{'' if bias else ':no-bias'}", "training step",
                     "fit", params, judge, quick)


def _fit_bounds(p: dict, groups: int) -> tuple[dict, dict]:
    """The reference update of a realistic-data fit step and its per-element bounds.

    The backend's cotangent is 2 (y^ - t) / n from its own output y^, |y^ - y| <= B_y (the
    forward bound, conformance.judge), n a power of two: |dy^ - dy| <= E = (2 / n)(B_y + u (|y - t|
    + B_y)). Its dkernel is the float32 sum of x dy^: within the gradient bound G of dy (conformance
    .judge_grad, whose magnitudes take |dy| + E) plus the exact propagation sum |x| E, i.e.
    G + (1 + gamma(n)) sum |x| E (the same for dbias with sum E). The update w - lr g (lr a power
    of two) rounds once: |w^ - w'| <= lr e + u (|w'| + lr e)."""
    x, kernel, bias, target = p["x"], p["kernel"], p["bias"], p["target"]
    y = conv3d(x, kernel, bias, groups=groups)
    dy = mse_cotangent(y, target)
    ev = evaluate_grad(x, kernel, bias, dy, groups=groups)
    b_y = pre_activation_bound(ev.forward, x, kernel, "float32", "float32", True)
    e_dy = (2.0 / y.size) * (b_y + U32 * (np.abs(y - target) + b_y))
    _, g_kernel, g_bias = gradient_bounds(ev, x, kernel, "float32", "float32", flushes=True)
    _, spread_kernel, spread_bias = conv3d_grad(np.abs(x), np.abs(kernel), np.zeros_like(bias), e_dy,
                                                groups=groups)
    n = ev.spec.grad_terms[1]
    grads = dict(kernel=(ev.dkernel, g_kernel + (1 + gamma(n)) * spread_kernel * (1 + 2.0**-40)),
                 bias=(ev.dbias, g_bias + (1 + gamma(n)) * spread_bias * (1 + 2.0**-40)))
    expected, bounds = {}, {}
    for part, (grad, error) in grads.items():
        expected[part] = sgd_step(p[part], grad, FIT_LEARNING_RATE)
        lr_error = FIT_LEARNING_RATE * error
        bounds[part] = (lr_error + (U32 + REFERENCE_ERROR) * (np.abs(expected[part]) + lr_error)
                        + ETA32)
    return expected, bounds


def _realistic_fit_case(groups: int, quick: bool = True) -> LayerCase:
    def params(rng):
        x, kernel = _normal(rng, (2, 6, 6, 6, 4)), _normal(rng, (3, 3, 3, 4 // groups, EXACT_FILTERS))
        return dict(x=x, kernel=kernel, bias=_normal(rng, (EXACT_FILTERS,)),
                    target=_normal(rng, (2, 4, 4, 4, EXACT_FILTERS)), args=dict(groups=groups),
                    learning_rate=FIT_LEARNING_RATE)

    def judge(p, got):
        expected, bounds = _fit_bounds(p, groups)
        failures = [f for part in ("kernel", "bias") for f in _within(part, got[part], expected[part],
                                                                      bounds[part])]
        worst = max(_worst_ratio(got[part], expected[part], bounds[part]) for part in ("kernel", "bias"))
        return _ok(failures, f"kernel and bias within the bound of w - lr * reference.conv3d_grad "
                             f"(worst error/bound {worst:.3g})")

    return LayerCase(f"training step:mse-sgd:g{groups}:realistic", "training step", "fit", params, judge,
                     quick)


def _data_format_case(value: str) -> LayerCase:
    """ci only (a child process each: 4-6 s); make test runs the child through the mutant test."""
    def params(rng):
        return dict(_exact_problem(rng, channels_first=value == "channels_first"), image_data_format=value)

    def judge(p, got):
        failures = [] if got["data_format"] == value else [
            f"data_format=None resolved to {got['data_format']!r}, keras.json says {value!r}"]
        failures += _bitwise("output", got["y"], conv3d(p["x"], p["kernel"], p["bias"], data_format=value))
        return _ok(failures, f"data_format=None follows keras.json ({value}); output exact")

    return LayerCase(f"data_format default:keras.json {value}", "data_format default", "data_format",
                     params, judge, quick=False)


def _use_bias_case(use_bias: bool, quick: bool = True) -> LayerCase:
    def params(rng):
        return _exact_problem(rng, bias=use_bias)

    def judge(p, got):
        shapes = [tuple(p["kernel"].shape)] + ([(EXACT_FILTERS,)] if use_bias else [])
        failures = [] if [tuple(s) for s in got["weight_shapes"]] == shapes else [
            f"weights {got['weight_shapes']}, expected {shapes}"]
        failures += _bitwise("output", got["y"], conv3d(p["x"], p["kernel"], p["bias"]))
        return _ok(failures, f"weights {shapes}; output exact")

    return LayerCase(f"use_bias:{str(use_bias).lower()}", "use_bias", "output", params, judge, quick)


def _padding_case(spelling: str, quick: bool = True) -> LayerCase:
    def params(rng):
        p = _exact_problem(rng)
        return dict(p, args=dict(p["args"], padding=spelling, strides=2))

    def judge(p, got):
        expected = conv3d(p["x"], p["kernel"], p["bias"], padding=spelling.lower(), strides=2)
        return _ok(_bitwise("output", got["y"], expected), f"padding={spelling!r} is {spelling.lower()!r}")

    return LayerCase(f"padding:{spelling}", "padding", "output", params, judge, quick)


# --- serialization, shapes, invalid arguments ---------------------------------------------------

def _serialization_case() -> LayerCase:
    def params(rng):
        x, kernel = _normal(rng, (2, 5, 6, 7, 6)), _normal(rng, (2, 3, 3, 3, 8))
        return dict(x=x, kernel=kernel, bias=_normal(rng, (8,)),
                    args=dict(groups=2, padding="same", strides=(1, 2, 1), activation="relu"))

    def judge(p, got):
        failures = _bitwise("Conv3D.from_config(get_config())", got["from_config"], got["y"])
        failures += _bitwise(".keras save and load", got["loaded"], got["y"])
        return _ok(failures, "from_config and .keras round trips give bitwise-identical outputs")

    return LayerCase("serialization:get_config+from_config+.keras", "serialization", "serialization",
                     params, judge)


SHAPE_ARGS = [dict(filters=6, kernel_size=(2, 3, 3), strides=2, padding="same"),
              dict(filters=4, kernel_size=3, dilation_rate=(1, 2, 2), data_format="channels_first"),
              dict(filters=8, kernel_size=(1, 3, 2), strides=(1, 2, 3), groups=2)]
SHAPE_INPUT = (2, 7, 9, 10, 4)


def _shape_case(index: int, quick: bool = True) -> LayerCase:
    args = SHAPE_ARGS[index]
    first = args.get("data_format") == "channels_first"
    shape = (2, 4, 7, 9, 10) if first else SHAPE_INPUT

    def judge(p, got):
        spec = Conv3DSpec(input_shape=shape, **args)
        f = args["filters"]
        symbolic = (None, f, None, None, None) if first else (None, None, None, None, f)
        failures = [] if tuple(got["known"]) == spec.output_shape else [
            f"compute_output_shape {tuple(got['known'])}, the spec says {spec.output_shape}"]
        if tuple(got["symbolic"]) != symbolic:
            failures.append(f"symbolic output {tuple(got['symbolic'])}, expected {symbolic}")
        return _ok(failures, f"{spec.output_shape} and {symbolic}")

    return LayerCase(f"shapes:{json.dumps(args, separators=(',', ':'))}", "shapes", "shapes",
                     lambda rng: dict(args=args, input_shape=shape), judge, quick)


INVALID_ARGS = {"filters=0": dict(filters=0), "kernel_size=0": dict(kernel_size=0),
                "strides=0": dict(strides=0), "padding=full": dict(padding="full"),
                "strides>1 with dilation>1": dict(strides=2, dilation_rate=2),
                "groups not dividing C": dict(groups=3), "data_format=channels_middle":
                dict(data_format="channels_middle")}


def _argument_case(label: str, quick: bool = True) -> LayerCase:
    def params(rng):
        args = dict(filters=6, kernel_size=2) | INVALID_ARGS[label]
        return dict(args=args, x=np.zeros((1, 5, 5, 5, 4), np.float32))

    def judge(p, got):
        if got["raised"] == "ValueError":
            return Status.PASS, f"ValueError: {got['message'][:200]}"
        if not got["raised"]:
            return Status.ACCEPTED_INVALID, f"{label}: built and called without an error"
        return Status.CRASHED, f"{label}: raised {got['raised']}, not ValueError: {got['message'][:200]}"

    return LayerCase(f"arguments:{label}", "arguments", "arguments", params, judge, quick)


ALL_AXES = [0, 1, 2, 3]  # one norm per filter of a 5-D kernel


def layer_cases(profile: str) -> list[LayerCase]:
    """Every case of the profile (quick: those marked quick)."""
    initializers = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                    "lecun_normal")
    cases = [
        _initializer_case(None, 1, quick=False), _initializer_case(None, 4),
        *(_initializer_case(n, 4, quick=False) for n in initializers),
        _bias_initializer_case(None),
        _bias_initializer_case({"class_name": "Constant", "config": {"value": 0.5}}, quick=False),
        *(_regularizer_case(where, kind, kind == "L1L2" and where != "bias")
          for where in ("kernel", "bias", "activity") for kind in FACTORS),
        _constraint_case("kernel", "MaxNorm", {}, quick=False),
        _constraint_case("kernel", "MaxNorm", dict(max_value=1.5, axis=ALL_AXES), quick=False),
        _constraint_case("kernel", "MinMaxNorm", {}, quick=False),
        _constraint_case("kernel", "MinMaxNorm", dict(min_value=0.5, max_value=1.0, rate=0.7, axis=ALL_AXES)),
        _constraint_case("kernel", "UnitNorm", {}, quick=False),
        _constraint_case("kernel", "UnitNorm", dict(axis=ALL_AXES), quick=False),
        _constraint_case("kernel", "NonNeg", {}, quick=False),
        _constraint_case("bias", "NonNeg", {}),
        _constraint_case("bias", "MaxNorm", dict(max_value=1.0), quick=False),
        _constraint_case("bias", "UnitNorm", {}, quick=False),
        _data_format_case("channels_first"), _data_format_case("channels_last"),
        _padding_case("SAME"), _padding_case("Valid", quick=False),
        _use_bias_case(False), _use_bias_case(True, quick=False),
        _fit_case(1, True), _fit_case(2, False, quick=False), _realistic_fit_case(1, quick=False),
        _realistic_fit_case(2),
        _serialization_case(),
        *(_shape_case(i, quick=i == 0) for i in range(len(SHAPE_ARGS))),
        *(_argument_case(label, quick=label in ("filters=0", "padding=full", "groups not dividing C"))
          for label in INVALID_ARGS),
    ]
    return cases if profile != "quick" else [c for c in cases if c.quick]


def repro(backend: str, case: LayerCase, profile: str, seed: int) -> str:
    return (f"{command(backend)} --layer-case '{case.id}' --profile {profile} "
            f"--seed {seed}")


def run_layer_case(worker: Worker, case: LayerCase, profile: str, seed: int) -> Record:
    """One case on `worker`: its probe, judged."""
    rng = np.random.default_rng([seed, *case.id.encode()])
    params = case.params(rng)
    outcome = worker.layer_probe(case.probe, params)
    common = dict(backend=worker.name, check="layer", case=case.id, argument=case.argument, dtype="float32",
                  seed=seed, seconds=outcome.seconds, repro=repro(worker.name, case, profile, seed))
    if outcome.kind == "crashed":
        return Record(status=Status.CRASHED, message=outcome.message, **common)
    if outcome.kind == "raised":  # valid arguments: anything raised is a crash, unless declined
        status = Status.UNSUPPORTED if outcome.error_type == DECLINED else Status.CRASHED
        return Record(status=status, message=refusal_message(outcome), **common)
    status, message = case.judge(params, outcome.outputs)
    return Record(status=status, message=message, **common)


def layer_records(worker: Worker, profile: str, seed: int, only: str | None = None) -> list[Record]:
    """The layer check on `worker` (one case when `only` names it)."""
    cases = [c for c in layer_cases("ci" if only else profile) if only in (None, c.id)]
    if not cases:
        raise ValueError(f"no layer case {only!r}; see conformance.layer_check.layer_cases")
    return [run_layer_case(worker, case, profile, seed) for case in cases]
