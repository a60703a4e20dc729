"""Checks of the checker: no false alarms, wrong backends caught with working repro lines,
process-level failures isolated."""

import pytest

from conformance.__main__ import main as conformance_main
from conformance.engine import Job, run_check
from conformance.execute import run_case
from conformance.fixed import worked_cases
from conformance.profiles import PROFILES
from conformance.report import main as report_main
from runtime.records import Status
from runtime.worker import Worker

HERE = "tests.backends_for_tests"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_correct_backend_passes_every_generated_case(seed):
    records = []
    for check in ("exact", "realistic", "extreme"):
        records += run_check(Job("numpy-im2col", check, "quick", seed, database=None)).records
    # hypothesis may draw a case twice or discard a few: nearly all of the profile's examples ran
    assert len(records) >= 0.9 * sum(PROFILES["quick"].examples[c] for c in ("exact", "realistic", "extreme"))
    failing = [r.repro for r in records if r.status.failing]
    assert not failing, failing
    assert sum(r.status == Status.PASS for r in records) > 0.8 * len(records)


@pytest.mark.parametrize("mutant,check", [
    ("FlippedKernel", "exact"), ("SameOddCellFirst", "exact"), ("BiasDropped", "exact"),
    ("Float16Accumulation", "realistic"),
])
def test_wrong_backend_caught_and_repro_line_reproduces(mutant, check, capsys):
    name = f"conformance.mutants.zoo:{mutant}"
    records = run_check(Job(name, check, "quick", 0, database=None)).records
    shrunk = [r for r in records if r.shrunk]
    assert shrunk and shrunk[0].status == Status.FAIL, records[-1]
    repro = shrunk[0].repro.split()
    assert repro[:3] == ["python", "-m", "conformance"]
    argv = [a.strip("'") for a in repro[3:]]
    assert conformance_main(argv) == 1
    assert "FAIL" in capsys.readouterr().out


def test_user_function_by_module_attr_passes():
    records = run_check(Job(f"{HERE}:exact_float32", "realistic", "quick", 0, database=None)).records
    assert records and not any(r.status.failing for r in records)


@pytest.mark.parametrize("function,text", [
    ("aborts", "died"), ("hangs", "timed out"), ("raises_runtime_error", "RuntimeError"),
])
def test_process_failures_are_crashed_and_the_run_goes_on(function, text):
    cases = worked_cases()[:3]
    with Worker(f"{HERE}:{function}", timeout_s=2) as worker:
        records = [run_case(worker, case) for case in cases]  # each case gets a fresh process
    assert [r.status for r in records] == [Status.CRASHED] * 3
    assert text in records[0].message


def test_cli_exit_codes(tmp_path):
    assert conformance_main(["--backend", "no-such-backend"]) == 2
    assert conformance_main(["--backend", "numpy-im2col", "--profile", "quick", "--checks", "invalid",
                             "--no-db", "--report", str(tmp_path)]) == 0
    for name in ("results.csv.gz", "results.json", "summary.md", "summary.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert report_main([str(tmp_path)]) == 0  # redraws from the saved files
    assert conformance_main(["--backend", f"{HERE}:aborts", "--profile", "quick", "--checks",
                             "property", "--no-db", "--timeout", "5"]) == 1  # 12 cases, each CRASHED
