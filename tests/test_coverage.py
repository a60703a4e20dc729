"""The covering array holds every reachable combination of parameter classes, region mutants are
caught by it on any seed, and the report shows coverage with its holes."""

from dataclasses import replace

import numpy as np
import pytest

from conformance.coverage import (
    FACTORS,
    classes,
    combinations_of,
    covering_cases,
    reachable_combinations,
    regions,
)
from conformance.engine import Job, run_check
from conformance.execute import run_case
from conformance.mutants.zoo import (
    ChannelTailBeyondVector,
    DepthwiseMultiplierTransposed,
    GroupsHalfChannelsSwapped,
    IgnoresStrides,
    InnermostExtentOneStrided,
    LastPartialWBlockStale,
    OddBatchChannelsFirst,
    StridedOddSameOnHFirst,
)
from conformance.report import Coverage
from reference.spec import Conv3DSpec
from runtime.data import strided_view
from runtime.records import VERIFIED, Record, Status
from runtime.tables import frame
from runtime.worker import Worker

REGION_MUTANTS = (InnermostExtentOneStrided, OddBatchChannelsFirst, ChannelTailBeyondVector,
                  LastPartialWBlockStale, DepthwiseMultiplierTransposed, GroupsHalfChannelsSwapped,
                  StridedOddSameOnHFirst, IgnoresStrides)


def test_covering_array_holds_every_reachable_combination_and_is_small():
    cases = covering_cases()
    held = set().union(*(combinations_of(classes(c.spec, c.dtype, c.strided)) for c in cases))
    reachable = reachable_combinations()
    assert held == reachable
    assert len(reachable) > 2000 and len(cases) <= 80
    assert sum(c.spec.flops // 2 for c in cases) < 5_000_000  # a few ms of reference time
    every_class = {(c[0], c[1]) for c in reachable if len(c) == 4}
    assert len({f for f, _ in every_class}) == len(FACTORS) - 1  # the last factor only pairs right
    assert ("layout", "non-contiguous") in every_class
    assert [c.id for c in covering_cases()] == [c.id for c in cases]  # deterministic


def test_covering_array_follows_declared_features():
    cases = covering_cases(("float32",), ("channels_last",), groups=False, dilation=False)
    assert {c.dtype for c in cases} == {"float32"}
    assert all(c.spec.channels_last and c.spec.groups == 1 and max(c.spec.dilation_rate) == 1
               for c in cases)


def test_classes_and_regions_of_a_case():
    spec = Conv3DSpec.from_descriptor(
        "g17_mb3_ic17id5ih6iw3_oc34_kd2kh3kw1_sd1sh2sw3_dd1dh1dw1_same_cf_relu_bias")
    cls = classes(spec, "float32")
    assert cls["w_extent"] == "1" and cls["w_stride"] == ">kernel" and cls["batch"] == "odd >2"
    assert cls["groups"] == "depthwise x multiplier" and cls["channels"] == "tail >8"
    assert cls["layout"] == "channels_first" and cls["activation"] == "exact ops"
    assert "output extent 1 with stride > 1 (innermost axis)" in regions(spec)


@pytest.mark.parametrize("mutant", REGION_MUTANTS, ids=lambda m: m.__name__)
def test_region_mutant_is_caught_by_the_covering_check_on_any_seed(mutant):
    """The covering cases do not depend on the seed: caught here is caught on every seed."""
    records = run_check(Job(f"conformance.mutants.zoo:{mutant.__name__}", "covering", "ci", 0,
                            database=None)).records
    assert any(r.status in mutant.expected for r in records), mutant.bug_class


@pytest.mark.parametrize("backend", [
    "conformance.mutants.zoo:Mutant",
    "numpy-im2col",
    pytest.param("numba-direct", marks=pytest.mark.xdist_group("numba-direct")),  # its plugin checks' process
])
def test_covering_check_passes_on_the_base_and_our_backends(backend):
    """`make test` leaves the covering check of the frameworks to `make conformance`; ours run it here."""
    records = run_check(Job(backend, "covering", "ci", 0, database=None, direction="forward")).records
    assert records and not [r.repro for r in records if r.status.failing]


def test_report_shows_classes_regions_and_holes():
    case = covering_cases()[0]
    rows = [Record(backend="b", check="covering", case=case.id, status=Status.PASS,
                   descriptor=case.spec.descriptor, dtype=case.dtype, strided=case.strided)]
    cover = Coverage.of(frame(rows), {"backend_info": [{"name": "b", "dtypes": ["float32", "float64"]}]})
    assert (cover.classes["b"] == "0/0").any() and (cover.classes["b"] == "1/1").any()
    assert len(cover.holes["b"]) == len(reachable_combinations()) - len(
        combinations_of(classes(case.spec, case.dtype, case.strided)))
    assert "Coverage holes" in "\n".join(cover.markdown())


def test_strided_cases_reach_the_backend_as_non_contiguous_views():
    """The worker makes the views (pickling would make them contiguous); the values are the same."""
    view = strided_view(np.arange(24.0).reshape(2, 3, 4))
    assert not view.flags.c_contiguous and (view == np.arange(24.0).reshape(2, 3, 4)).all()
    case = next(c for c in covering_cases() if c.dtype == "float32")
    with Worker("tests.backends_for_tests:contiguous_only", timeout_s=30) as worker:
        assert run_case(worker, replace(case, strided=False)).status in VERIFIED
        record = run_case(worker, replace(case, strided=True))
    assert record.status == Status.REJECTED_VALID and record.strided
    assert record.case.endswith(":strided") and " --strided " in record.repro
