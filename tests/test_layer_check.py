"""The layer check (conformance.layer_check): its reference, its bounds against exact arithmetic,
and every layer mutant caught. The check itself runs on every Keras backend through the pytest
plugin (`make test`), where a correct layer must pass every row."""

from fractions import Fraction

import numpy as np
import pytest

from conformance.layer_check import U32, gamma, layer_cases, run_layer_case
from conformance.mutants.layer_zoo import LAYER_ZOO
from reference import conv3d, conv3d_grad
from reference.layer import EPSILON, constrain, fans, initializer_law, mse_cotangent, regularization, sgd_step
from runtime.records import Status
from runtime.worker import Worker


def test_fans_divide_the_input_channels_by_groups():
    assert fans((3, 3, 3, 4, 32)) == (108, 864)  # C=16, groups=4: C/groups=4 in the kernel
    law = initializer_law("glorot_uniform", (3, 3, 3, 4, 32))
    assert law.distribution == "uniform" and law.scale == pytest.approx((6 / (108 + 864)) ** 0.5)
    he = initializer_law("he_normal", (3, 3, 3, 4, 32))
    assert he.distribution == "truncated_normal"
    assert he.support == pytest.approx(2 * (2 / 108) ** 0.5 / 0.87962566103423978)


def test_constraints_follow_their_definitions():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 2, 2, 2, 4))
    per_filter = np.sqrt((w ** 2).sum(axis=(0, 1, 2, 3)))
    got = constrain("MaxNorm", w, max_value=1.0, axis=[0, 1, 2, 3])
    np.testing.assert_allclose(got, w * np.minimum(per_filter, 1.0) / (EPSILON + per_filter), rtol=1e-14)
    along_depth = np.sqrt((w ** 2).sum(axis=0))  # the default axis=0 of a 5-D kernel: over kd only
    np.testing.assert_allclose(constrain("UnitNorm", w), w / (EPSILON + along_depth), rtol=1e-14)
    # MinMaxNorm's defaults (0, 1, rate 1) are not MaxNorm's (2)
    np.testing.assert_allclose(constrain("MinMaxNorm", w),
                               w * np.minimum(along_depth, 1.0) / (EPSILON + along_depth), rtol=1e-14)
    assert (constrain("NonNeg", w) >= 0).all()
    with pytest.raises(ValueError, match="unknown constraint"):
        constrain("MaxNorms", w)


def test_mse_cotangent_and_sgd():
    y, t = np.array([[1.0, 3.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(mse_cotangent(y, t), [[1.0, 2.0]])  # 2 (y - t) / 2
    np.testing.assert_array_equal(sgd_step(np.ones(2), np.array([2.0, -2.0]), 0.5), [0.0, 2.0])


def _float32_l1l2(w, l1, l2, order):
    """Keras' L1L2 evaluated in float32 with the terms summed in `order`."""
    a = np.float32(0)
    for i in order:
        a = np.float32(a + np.abs(w[i]))
    b = np.float32(0)
    for i in order:
        b = np.float32(b + np.float32(w[i] * w[i]))
    return float(np.float32(np.float32(np.float32(l1) * a) + np.float32(np.float32(l2) * b)))


def test_regularizer_bound_holds_against_exact_arithmetic():
    """Adversarial orders (ascending, descending, random) stay inside gamma(n + 5) of the exact
    value, computed with fractions."""
    rng = np.random.default_rng(1)
    for n in (7, 200, 3000):
        w = (rng.standard_normal(n) * rng.choice([1e-3, 1.0, 1e3], n)).astype(np.float32)
        exact = float(sum(Fraction(0.01) * abs(Fraction(float(v))) + Fraction(0.02) * Fraction(float(v)) ** 2
                          for v in w))
        assert regularization(w, 0.01, 0.02) == pytest.approx(exact, rel=1e-12)
        for order in (np.argsort(np.abs(w)), np.argsort(-np.abs(w)), rng.permutation(n)):
            assert abs(_float32_l1l2(w, 0.01, 0.02, order) - exact) <= gamma(n + 5) * exact


def _float32_max_norm(w, max_value, axis):
    """keras.constraints.MaxNorm evaluated in float32 (NumPy's float32 sums)."""
    w = w.astype(np.float32)
    norms = np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True, dtype=np.float32))
    return w * (np.clip(norms, 0, np.float32(max_value)) / (np.float32(EPSILON) + norms))


def test_constraint_bound_never_fails_a_float32_projection():
    rng = np.random.default_rng(2)
    for _ in range(20):
        w0 = rng.standard_normal((3, 3, 3, 4, 8)).astype(np.float32)
        g = rng.standard_normal(w0.shape).astype(np.float32)
        stepped32 = w0 - np.float32(0.5) * g
        for axis, m in ((0, 3), ((0, 1, 2, 3), 108)):
            got = _float32_max_norm(stepped32, 1.5, axis)
            expected = constrain("MaxNorm", sgd_step(w0, g, 0.5), max_value=1.5, axis=axis)
            assert (np.abs(got - expected) <= gamma(m + 14) * np.abs(expected)).all()
    assert gamma(1) == pytest.approx(U32)


KILLS = {"FanWithoutGroups": "kernel_initializer:default:g4",
         "BiasInitialisedNonZero": "bias_initializer:default",
         "ConstraintNeverApplied": "kernel_constraint:MaxNorm",
         "ActivityNotDivided": "activity_regularizer:L2",
         "ConfigDefaultIgnored": "data_format default:keras.json channels_first",
         "ConfigDropsGroups": "serialization:get_config+from_config+.keras"}


class _AsMutant:
    """A worker of tests.backends_for_tests:AnyLayerMutant that runs every probe as one mutant."""

    def __init__(self, worker: Worker, mutant: str) -> None:
        self.worker, self.mutant, self.name = worker, mutant, f"conformance.mutants.layer_zoo:{mutant}"

    def layer_probe(self, probe, params):
        return self.worker.layer_probe(probe, dict(params, mutant=self.mutant))


def test_every_layer_mutant_is_caught_by_its_row():
    assert sorted(KILLS) == sorted(m.__name__ for m in LAYER_ZOO)
    cases = {c.id: c for c in layer_cases("ci")}
    with Worker("tests.backends_for_tests:AnyLayerMutant") as worker:
        for mutant in LAYER_ZOO:
            case = cases[KILLS[mutant.__name__]]
            record = run_layer_case(_AsMutant(worker, mutant.__name__), case, "ci", 0)
            assert record.status in mutant.expected, (
                f"{mutant.__name__} not caught by {record.case}: {record.status} {record.message}\n"
                f"repro: {record.repro}")


def test_realistic_training_step_bound_admits_float32_and_catches_a_wrong_reduction():
    """Judged without Keras: the reference update rounded to float32 passes; the update of a loss
    summed instead of averaged over the filters (8x the gradient) fails."""
    case = next(c for c in layer_cases("ci") if c.id == "training step:mse-sgd:g2:realistic")
    p = case.params(np.random.default_rng(0))
    y = conv3d(p["x"], p["kernel"], p["bias"], groups=2)
    dy = mse_cotangent(y, p["target"])
    for scale, status in ((1.0, Status.PASS), (8.0, Status.FAIL)):
        _, dk, db = conv3d_grad(p["x"], p["kernel"], p["bias"], scale * dy, groups=2)
        got = {part: sgd_step(p[part], g, p["learning_rate"]).astype(np.float32)
               for part, g in (("kernel", dk), ("bias", db))}
        assert case.judge(p, got)[0] == status, case.judge(p, got)
