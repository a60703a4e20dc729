"""The judge: the VERIFICATION.md bound admits correct float32 results and rejects wrong ones."""

import numpy as np
import pytest

from conformance.judge import gamma, judge
from reference import Conv3DSpec, evaluate
from runtime.data import make_arrays
from runtime.records import Status

PASS, FAIL, MISTRUSTED = Status.PASS, Status.FAIL, Status.MISTRUSTED

SPEC = Conv3DSpec(filters=8, kernel_size=3, input_shape=(2, 6, 6, 6, 16), padding="same")


def _case(spec=SPEC, dtype="float32", data="normal", seed=0):
    x, w, b = make_arrays(spec, dtype, data, seed)
    return evaluate(x, w, b, **spec.conv_kwargs()), x, w, b


def test_gamma():
    assert gamma(10, 2.0**-24) == pytest.approx(10 * 2.0**-24, rel=1e-6)
    assert gamma(2**24, 2.0**-24) == np.inf


@pytest.mark.parametrize("data", ["normal", "uniform", "wide"])
def test_float32_sequential_sum_passes(data):
    """Naive float32 accumulation in a bad order is still inside the bound (no false alarm)."""
    ev, x, w, b = _case(data=data)
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
    out = np.broadcast_to(b, ev.output.shape).astype(np.float32).copy()
    for a in range(3):
        for bb in range(3):
            for c in range(3):
                patch = xpad[:, a:a + 6, bb:bb + 6, c:c + 6, :]
                out += np.einsum("ndhwc,cf->ndhwf", patch, w[a, bb, c]).astype(np.float32)
    verdict = judge(ev, out, x, w, "float32", "float32")
    assert verdict.status == PASS and 0 < verdict.max_ratio < 1, verdict


def test_reference_rounded_is_well_inside():
    ev, x, w, _ = _case()
    verdict = judge(ev, ev.output.astype(np.float32), x, w, "float32", "float32")
    assert verdict.status == PASS and verdict.max_ratio < 0.01


def test_float16_accumulation_fails_the_float32_bound_but_passes_as_declared_float16():
    ev, x, w, _ = _case(data="uniform")
    wrong = ev.output.astype(np.float16).astype(np.float32)
    failed = judge(ev, wrong, x, w, "float32", "float32")
    assert failed.status == FAIL and failed.max_ratio > 1
    assert failed.worst.index is not None and failed.worst.ulps > 1
    assert judge(ev, wrong, x, w, "float32", "float16").status == PASS


def test_one_ulp_is_fatal_in_the_exact_regime():
    ev, x, w, _ = _case(data="exact")
    got = ev.output.astype(np.float32)
    assert judge(ev, got, x, w, "float32", "float32", exact=True).status in (PASS, MISTRUSTED)
    got.flat[5] = np.nextafter(got.flat[5], np.float32(np.inf))
    verdict = judge(ev, got, x, w, "float32", "float32", exact=True)
    assert verdict.status == FAIL and verdict.worst.ulps == pytest.approx(1)


def test_worst_index_is_n_d_h_w_c_in_both_layouts():
    spec = Conv3DSpec(filters=3, kernel_size=1, input_shape=(1, 2, 4, 3, 5), data_format="channels_first")
    ev, x, w, _ = _case(spec=spec)
    got = ev.output.astype(np.float32)
    got[0, 2, 1, 2, 0] += 1  # channel 2, d 1, h 2, w 0
    verdict = judge(ev, got, x, w, "float32", "float32")
    assert verdict.worst.index == (0, 1, 2, 0, 2)


def test_nan_must_propagate():
    ev, x, w, _ = _case(data="special")
    got = ev.output.astype(np.float32)
    assert np.isnan(got).any()
    assert judge(ev, got, x, w, "float32", "float32").status in (PASS, MISTRUSTED)
    swallowed = np.nan_to_num(got, nan=0.0)
    assert judge(ev, swallowed, x, w, "float32", "float32").status == FAIL


def test_shape_and_dtype_mismatches_fail_with_a_message():
    ev, x, w, _ = _case()
    assert "shape" in judge(ev, ev.output[:, :-1], x, w, "float32", "float32").message
    assert "dtype" in judge(ev, ev.output, x, w, "float32", "float32").message


def test_all_zero_output_is_mistrusted():
    spec = Conv3DSpec(filters=2, kernel_size=1, input_shape=(1, 3, 3, 3, 2), activation="relu")
    ev, x, w, _ = _case(spec=spec)
    zeros = np.zeros(ev.output.shape, dtype=np.float32)
    ev_zero = evaluate(np.zeros_like(x), w, **spec.conv_kwargs())
    assert judge(ev_zero, zeros, x * 0, w, "float32", "float32").status == MISTRUSTED


def _bf16(a):
    from reference.formats import numpy_dtype

    return np.asarray(a, np.float32).astype(numpy_dtype("bfloat16")).astype(np.float32)


def test_bfloat16_inputs_with_float32_sums_pass_their_declaration_where_gamma_n_is_infinite():
    """OpenVINO's bf16 hint on AMX: inputs and results rounded to bfloat16, sums in float32. With
    432 taps gamma_n(2^-8) is infinite; the derived bound stays finite, admits the emulation, and
    rejects accumulating in bfloat16."""
    from reference.formats import FORMATS

    _, x, w, b = _case(data="uniform")
    x, w, b = np.abs(x), np.abs(w), np.abs(b)  # no cancellation: a bfloat16 sum stagnates
    ev = evaluate(x, w, b, **SPEC.conv_kwargs())
    assert gamma(SPEC.taps + 1, 2.0**-8) == np.inf and FORMATS["bfloat16-float32"].exact_bits == 8
    xpad = np.pad(_bf16(x), ((0, 0), (1, 1), (1, 1), (1, 1), (0, 0)))
    wide = np.broadcast_to(_bf16(b), ev.output.shape).astype(np.float32).copy()
    narrow = wide.copy()
    for a, bb, c in np.ndindex(3, 3, 3):
        patch, taps = xpad[:, a:a + 6, bb:bb + 6, c:c + 6, :], _bf16(w[a, bb, c])
        wide += np.einsum("ndhwc,cf->ndhwf", patch, taps).astype(np.float32)
        for channel in range(patch.shape[-1]):  # a bfloat16 accumulator: one rounding per product
            narrow = _bf16(narrow + patch[..., channel:channel + 1] * taps[channel])
    verdict = judge(ev, _bf16(wide), x, w, "float32", "bfloat16-float32")
    assert verdict.status == PASS and 0 < verdict.max_ratio < 1, verdict
    assert judge(ev, _bf16(wide), x, w, "float32", "float32").status == FAIL
    assert judge(ev, narrow, x, w, "float32", "bfloat16-float32").status == FAIL


def test_effective_precision_names_the_precision_the_errors_need():
    """Float32 sums come out as float32; the same inputs rounded to TF32's 11 bits first come out
    no better than tf32 (a float32 backend silently in TF32 shows up before it fails)."""
    from conformance.judge import effective_precision
    from reference.formats import numpy_dtype

    ev, x, w, b = _case(data="uniform")
    assert effective_precision(ev, ev.output.astype(np.float32), x, w, "float32") in ("float64", "float32")
    tf32 = [np.asarray(a, np.float32).view(np.uint32) & np.uint32(0xFFFFE000) for a in (x, w)]
    x11, w11 = (t.view(np.float32) for t in tf32)
    rough = evaluate(x11, w11, b, **SPEC.conv_kwargs()).output.astype(np.float32)
    assert effective_precision(ev, rough, x, w, "float32") in ("tf32", "float16", "bfloat16")
    assert effective_precision(ev, rough.astype(numpy_dtype("bfloat16")), x, w, "float32") != "float32"


def test_a_backend_may_declare_fewer_dtypes_backward():
    from backends.base import Capabilities

    caps = Capabilities(dtypes=("float32", "bfloat16"), directions=("forward", "backward"),
                        backward_dtypes=("float32",))
    assert caps.unsupported(SPEC, "bfloat16", "forward") is None
    assert "backward" in caps.unsupported(SPEC, "bfloat16", "backward")
    assert caps.unsupported(SPEC, "float32", "backward") is None


def test_a_declaration_that_admits_no_bound_keeps_to_the_exact_regime():
    """bfloat16 sums (u = 2^-8) over 432 taps: gamma_n is infinite, so only exact cases are judged."""
    from backends.base import Capabilities
    from conformance.cases import Case
    from conformance.execute import run_case

    class Declared:  # a worker's declaration; the case is refused before any call
        name = "declares-bfloat16-sums"
        memory_cap = None
        capabilities = Capabilities(dtypes=("float32",), compute_precision={"float32": "bfloat16"})

    record = run_case(Declared(), Case(SPEC, "float32", "normal", 0))
    assert record.status == Status.UNSUPPORTED and "exact regime only" in record.message

