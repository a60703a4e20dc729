"""Third-party backends (openvino, openvino-default, tinygrad, paddle) and the known deviations
they showed: availability reasons, declared precision, and each deviation's own repro case."""

import argparse
import shlex

import numpy as np
import pytest

from backends import openvino_backend, tinygrad_backend
from backends.registry import get_backend
from conformance.cases import Case
from conformance.known_deviations import DEVIATIONS
from reference import Conv3DSpec

THIRD_PARTY = ("openvino", "openvino-default", "tinygrad", "paddle")


def _available(self):
    return openvino_backend.Availability(True)


def _case_of(repro: str) -> Case:
    """The Case a `python -m conformance ... --case ...` repro line names."""
    p = argparse.ArgumentParser()
    for flag in ("--backend", "--case", "--dtype", "--data", "--direction"):
        p.add_argument(flag)
    p.add_argument("--seed", type=int)
    args, _ = p.parse_known_args(shlex.split(repro)[3:])
    return Case(Conv3DSpec.from_descriptor(args.case), args.dtype, args.data, args.seed,
                direction=args.direction or "forward")


@pytest.mark.parametrize("deviation", [d for d in DEVIATIONS if " --case " in d.repro],
                         ids=lambda d: d.repro.split("--case ")[1][:70])
def test_every_deviation_applies_to_the_case_of_its_own_repro_line(deviation):
    backend = shlex.split(deviation.repro)[4]
    assert backend in deviation.backends, deviation.repro
    assert deviation.applies(_case_of(deviation.repro)), deviation.repro


def test_openvino_deviations_leave_ordinary_cases_alone():
    """The narrow OpenVINO entries must not turn a FAIL on a plain case into KNOWN-FAIL."""
    plain = Case(Conv3DSpec(filters=4, kernel_size=3, input_shape=(2, 6, 6, 6, 3), padding="same",
                            strides=2))
    assert not [d.reason for d in DEVIATIONS if "openvino" in d.backends and d.applies(plain)]


@pytest.mark.parametrize("name", THIRD_PARTY)
def test_a_missing_library_makes_the_backend_unavailable_with_the_reason(name, monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda module, *a: None)
    availability = get_backend(name).availability()
    assert not availability.ok and "not installed" in availability.reason


def test_tinygrad_without_a_c_compiler_says_so(monkeypatch):
    monkeypatch.setattr(tinygrad_backend, "_compiler", lambda: None)
    availability = get_backend("tinygrad").availability()
    assert not availability.ok and "clang" in availability.reason


@pytest.mark.parametrize(("hint", "precision"), [("bf16", "bfloat16-float32"), ("f32", "float32")])
def test_openvino_default_declares_the_hint_the_plugin_reports(hint, precision, monkeypatch):
    monkeypatch.setattr(openvino_backend, "default_hint", lambda: hint)
    monkeypatch.setattr(openvino_backend.OpenVino, "availability", _available)
    assert get_backend("openvino-default").capabilities.precision("float32") == precision
    assert get_backend("openvino").capabilities.precision("float32") == "float32"


def test_openvino_default_refuses_a_hint_it_cannot_declare(monkeypatch):
    monkeypatch.setattr(openvino_backend, "default_hint", lambda: "f16")
    monkeypatch.setattr(openvino_backend.OpenVino, "availability", _available)
    with pytest.raises(RuntimeError, match="f16"):
        get_backend("openvino-default").capabilities  # noqa: B018


@pytest.mark.parametrize("name", ("openvino", "paddle"))
def test_a_library_call_matches_the_reference_on_a_grouped_strided_same_case(name):
    """One direct call through each cheap-to-load library (the conformance plugin runs the rest)."""
    backend = get_backend(name)
    if not backend.availability().ok:
        pytest.skip(backend.availability().reason)
    from reference import conv3d

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, 7, 4)).astype(np.float32)
    kernel = rng.standard_normal((3, 2, 3, 2, 6)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    args = dict(strides=(1, 2, 2), padding="same", groups=2, activation="tanh")
    got = backend.conv3d(x, kernel, bias, **args)
    expected = conv3d(x.astype(np.float64), kernel.astype(np.float64), bias.astype(np.float64), **args)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
