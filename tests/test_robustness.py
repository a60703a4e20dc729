"""A run that cannot lie: interruptions, faulty backends, bad arguments and a shared report directory
end in an honest status and exit code, never a false pass, a driver crash or a lost report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import strategies as st

from backends.registry import get_backend
from conformance.__main__ import main as conformance_main
from conformance.cases import Case
from conformance.engine import SHRINK_TIMEOUT_S, Job, _hypothesis_check
from conformance.execute import run_case
from conformance.fixed import worked_cases
from conformance.profiles import PROFILES
from conformance.properties import PROPERTIES, Problem, check_property
from conformance.report import save_results, write_report
from reference import conv3d
from reference.spec import Conv3DSpec
from runtime.files import ReportDir, ReportDirError, atomic_write
from runtime.interrupts import Interrupted, Interrupts
from runtime.records import Record, Status
from runtime.selection import resolve_backends
from runtime.tables import read_csv
from runtime.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
HERE = "tests.backends_for_tests"
CASE = "g1_mb1_ic3id5ih5iw5_oc4_kd3kh3kw3_sd1sh1sw1_dd1dh1dw1_valid_cl_linear_bias"
PROBLEM = Problem(*PROFILES["quick"].property_problem)


# --- interruption -------------------------------------------------------------------------------

def _children(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        try:
            kids = Path(f"/proc/{todo.pop()}/task").glob("*/children")
            new = {int(c) for f in kids for c in f.read_text().split()}
        except OSError:
            new = set()
        todo += sorted(new - found)
        found |= new
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except OSError:
        return False


@pytest.mark.parametrize("signum,jobs", [(signal.SIGINT, 1), (signal.SIGTERM, 2)])
def test_interrupted_run_exits_nonzero_with_an_incomplete_report_and_no_process_left(
        tmp_path, signum, jobs):
    """One check finishes, the other hangs; the signal comes while it hangs."""
    command = [sys.executable, "-m", "conformance", "--backend", f"{HERE}:exact_float32",
               "--backend", f"{HERE}:hangs", "--checks", "invalid", "--profile", "quick",
               "--direction", "forward", "--no-db",
               "-j", str(jobs),
               "--report", str(tmp_path)]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    for line in driver.stdout:  # the line of the finished check
        if "exact_float32 invalid" in line:
            break
    time.sleep(1.0)
    family = _children(driver.pid)
    driver.send_signal(signum)
    driver.stdout.read()
    assert driver.wait(30) == 128 + signum, (tmp_path / "stderr.txt").read_text()[-2000:]
    expected = f"interrupted by {signal.Signals(signum).name} after 1 of 2 checks"
    assert f"**INCOMPLETE: {expected}.**" in (tmp_path / "summary.md").read_text()
    assert expected in (tmp_path / "summary.html").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["meta"]["interrupted"] == expected
    table = read_csv(tmp_path / "results.csv.gz")
    assert len(table) > 0 and set(table["backend"]) == {f"{HERE}:exact_float32"}
    time.sleep(0.5)
    assert family and not [p for p in family if _alive(p)], "processes left behind"


def test_a_signal_while_saving_is_remembered_not_raised():
    with Interrupts() as stop:
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        stop.deferring = True
        os.kill(os.getpid(), signal.SIGTERM)  # would cut a report short if it raised
        time.sleep(0.1)
    assert stop.exit_code == 130


def test_report_of_nothing_or_of_rows_without_ratios_is_written(tmp_path):
    save_results([], tmp_path / "none", dict(interrupted="interrupted by SIGINT after 0 of 7 checks"))
    assert "INCOMPLETE" in write_report(tmp_path / "none").read_text()
    invalid = Record(backend="b", check="invalid", case="invalid:x", status=Status.PASS, rule="strides")
    save_results([invalid], tmp_path / "invalid", {})
    assert "PASS" in write_report(tmp_path / "invalid").read_text()


# --- faulty backends: a FAIL row with a message, never a driver crash ---------------------------

@pytest.mark.parametrize("function,text", [
    ("returns_none", "returned None"), ("wrong_shape", "output shape"),
    ("writes_into_input", "modified its input x"),
])
def test_faulty_output_or_input_write_fails_cases_and_properties(function, text):
    with Worker(f"{HERE}:{function}", timeout_s=30) as worker:
        case = run_case(worker, worked_cases()[0])
        properties = [check_property(worker, name, PROBLEM, "float32", 0, "quick")
                      for name in ("linearity_in_x", "translation_equivariance")]
    for record in (case, *properties):
        assert record.status == Status.FAIL and text in record.message, (record.case, record.message)


def test_nan_and_constant_outputs_are_not_passed_by_properties():
    with Worker(f"{HERE}:returns_nan", timeout_s=30) as worker:
        nan = check_property(worker, "linearity_in_x", PROBLEM, "float32", 0, "quick")
    assert nan.status == Status.FAIL and "NaN or infinite" in nan.message
    with Worker(f"{HERE}:returns_zeros", timeout_s=30) as worker:
        zeros = [check_property(worker, name, PROBLEM, "float32", 0, "quick") for name in PROPERTIES]
    assert all(r.status in (Status.MISTRUSTED, Status.FAIL) for r in zeros), [
        (r.case, r.status) for r in zeros]
    assert "--profile quick" in zeros[0].repro


def test_memory_cap_crashes_the_case_with_a_clear_message():
    with Worker(f"{HERE}:memory_bomb", timeout_s=60, memory_cap=300 * 2**20) as worker:
        record = run_case(worker, worked_cases()[0])
    assert record.status == Status.CRASHED and "exceeded the memory cap" in record.message


def test_case_too_large_is_refused_up_front():
    huge = Conv3DSpec.from_descriptor(CASE.replace("id5ih5iw5", "id900ih900iw900"))
    with Worker(f"{HERE}:exact_float32", timeout_s=30, memory_cap=2**30) as worker:
        record = run_case(worker, Case(huge))
    assert record.status == Status.UNSUPPORTED and record.message.startswith("too large")
    with pytest.raises(SystemExit) as exit_:
        conformance_main(["--backend", "numpy-im2col", "--case", huge.descriptor])
    assert exit_.value.code == 2


def test_shrinking_a_hang_uses_a_short_timeout():
    """After the first failure every shrink step runs with the short timeout, not the full one."""
    seen = []
    worker = SimpleNamespace(timeout_s=100.0)

    def execute(n: int) -> Record:
        seen.append((n, worker.timeout_s))
        status = Status.CRASHED if n > 20 else Status.PASS
        return Record(backend="b", check="exact", case=str(n), status=status, seconds=0.1)

    job = Job("b", "exact", "quick", 0, database=None, max_failures=1)
    records = list(_hypothesis_check(job, st.integers(0, 1000), execute, 50, worker))
    assert records[-1].shrunk and records[-1].case == "21"
    first = next(i for i, (n, _) in enumerate(seen) if n > 20)
    assert seen[first][1] == 100.0
    assert all(timeout == SHRINK_TIMEOUT_S for _, timeout in seen[first + 1:])
    assert worker.timeout_s == 100.0  # restored for the next check


# --- backends are only imported in workers ------------------------------------------------------

@pytest.mark.parametrize("module,text", [("exits_on_import", "SystemExit: 0"),
                                         ("hangs_on_import", "did not load within 3 s")])
def test_module_that_exits_or_hangs_at_import_is_a_usage_error(module, text, capsys):
    assert conformance_main(["--backend", f"tests.{module}:f", "--case", CASE, "--timeout", "3"]) == 2
    assert text in capsys.readouterr().err
    assert f"tests.{module}" not in sys.modules


def test_all_is_probed_outside_the_driver():
    before = set(sys.modules)
    names = resolve_backends(["all", f"{HERE}:exact_float32"], timeout_s=300)
    assert "numpy-im2col" in names and names[-1] == f"{HERE}:exact_float32"
    assert not {m for m in set(sys.modules) - before if m.startswith(("backends.", "tests."))}


# --- arguments ----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--case", CASE, "--dtype", "bogus"], ["--case", CASE, "--timeout", "-1"],
    ["--invalid", "{}"], ["--invalid", "not json"], ["--case", "g1_nonsense"],
    ["--case", CASE, "--jobs", "0"],
])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exit_:
        conformance_main(["--backend", "numpy-im2col", *argv])
    assert exit_.value.code == 2


def test_relative_module_name_is_a_usage_error():
    assert conformance_main(["--backend", ".foo:bar", "--case", CASE]) == 2


@pytest.mark.parametrize("bias", [np.ones((4, 1)), np.ones((2, 2)), np.float32(1), np.ones(5)])
def test_prepare_rejects_bias_shapes_the_reference_rejects(bias):
    x, w = np.ones((1, 5, 5, 5, 3), np.float32), np.ones((3, 3, 3, 3, 4), np.float32)
    bias = np.asarray(bias, np.float32)
    with pytest.raises(ValueError, match="bias must have shape"):
        conv3d(x, w, bias)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        get_backend("numpy-im2col").conv3d(x, w, bias)


def test_messages_show_plain_numbers():
    with pytest.raises(ValueError) as error:
        conv3d(np.ones((1, 5, 5, 5, 3)), np.ones((3, 3, 3, 3, 4)), strides=(np.int64(0), 1, 1))
    assert "np.int64" not in str(error.value) and "strides=(0, 1, 1)" in str(error.value)


# --- the report directory -----------------------------------------------------------------------

def test_report_directory_is_checked_before_the_run(tmp_path):
    (tmp_path / "a_file").write_text("")
    started = time.perf_counter()
    assert conformance_main(["--backend", "numpy-im2col", "--report", str(tmp_path / "a_file")]) == 2
    assert time.perf_counter() - started < 10


def test_two_runs_on_one_directory_do_not_interleave(tmp_path):
    with ReportDir(tmp_path):
        with pytest.raises(ReportDirError, match=f"in use by another run \\(pid {os.getpid()}\\)"):
            ReportDir(tmp_path).__enter__()
        assert conformance_main(["--backend", "numpy-im2col", "--checks", "worked",
                                 "--report", str(tmp_path)]) == 2
    with ReportDir(tmp_path):  # free again
        pass


def test_writes_never_follow_planted_links(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    out = tmp_path / "report"
    out.mkdir()
    (out / "results.json.tmp").symlink_to(outside)
    (out / "summary.md").symlink_to(outside)
    atomic_write(out / "results.json", "{}")
    atomic_write(out / "summary.md", "# new")
    assert outside.read_text() == "keep me"
    assert not (out / "summary.md").is_symlink() and (out / "summary.md").read_text() == "# new"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp") and not p.is_symlink()]


def test_shrinking_stops_at_its_budget_with_the_smallest_failure_so_far(monkeypatch):
    import conformance.engine as engine

    monkeypatch.setattr(engine, "SHRINK_BUDGET_S", 0.3)
    worker = SimpleNamespace(timeout_s=100.0)

    def execute(n: int) -> Record:
        time.sleep(0.05)
        return Record(backend="b", check="exact", case=str(n),
                      status=Status.CRASHED if n > 20 else Status.PASS)

    job = Job("b", "exact", "quick", 0, database=None, max_failures=1)
    started = time.perf_counter()
    records = list(_hypothesis_check(job, st.integers(0, 10**9), execute, 50, worker))
    assert time.perf_counter() - started < 10
    last = records[-1]
    assert last.shrunk and int(last.case) > 20 and "shrinking stopped" in last.message
    assert int(last.case) == min(int(r.case) for r in records if r.status == Status.CRASHED)


def _two_bugs(n: int) -> Record:
    status = Status.CRASHED if n > 500 else Status.FAIL if 100 <= n < 120 else Status.PASS
    return Record(backend="b", check="exact", case=str(n), status=status)


def test_a_check_keeps_going_past_its_first_failure():
    """One failure found and shrunk does not end the check: a failure of another status is found too."""
    job = Job("b", "exact", "quick", 0, database=None)
    records = list(_hypothesis_check(job, st.integers(0, 1000), _two_bugs, 300,
                                     SimpleNamespace(timeout_s=10.0)))
    shrunk = {str(r.status): r.case for r in records if r.shrunk}
    assert shrunk == {"CRASHED": "501", "FAIL": "100"}, shrunk
    assert len([r for r in records if not r.shrunk]) <= 300


def test_replayed_failures_are_reported_and_replay_only_generates_nothing(tmp_path):
    database, ran, replayed_calls = str(tmp_path / "db"), set(), set()

    def counted(into: set):
        return lambda n: into.add(n) or _two_bugs(n)

    first = list(_hypothesis_check(Job("b", "exact", "quick", 0, database=database),
                                   st.integers(0, 1000), counted(ran), 300, SimpleNamespace(timeout_s=10.0)))
    assert {str(r.status) for r in first if r.shrunk} == {"CRASHED", "FAIL"}
    replayed = list(_hypothesis_check(Job("b", "exact", "quick", 1, database=database, replay_only=True),
                                      st.integers(0, 1000), counted(replayed_calls), 300,
                                      SimpleNamespace(timeout_s=10.0)))
    assert {str(r.status) for r in replayed if r.status.failing} == {"CRASHED", "FAIL"}
    assert replayed_calls <= ran and len(replayed_calls) < 50  # stored examples only


def test_the_shrink_budget_covers_all_rounds_of_a_check(monkeypatch):
    """A backend failing everywhere (a hang, say) gets neither a fresh shrink budget per round nor
    its whole example budget run after the failures stop being new."""
    import conformance.engine as engine

    monkeypatch.setattr(engine, "SHRINK_BUDGET_S", 0.3)
    steps = []

    def execute(n: int) -> Record:
        steps.append(n)
        time.sleep(0.02)
        return Record(backend="b", check="exact", case=str(n), status=Status.CRASHED,
                      descriptor=f"g1_mb1_ic1id{n % 7 + 1}ih1iw1_oc1_kd1kh1kw1_sd1sh1sw1_dd1dh1dw1_"
                                 "valid_cl_linear_nobias")

    started = time.perf_counter()
    records = list(_hypothesis_check(Job("b", "exact", "quick", 0, database=None),
                                     st.integers(0, 10**9), execute, 200, SimpleNamespace(timeout_s=9.0)))
    assert time.perf_counter() - started < 0.3 + 3 * 0.5, len(steps)
    assert 1 <= len([r for r in records if r.shrunk]) <= 3
    assert len(steps) < 100  # the rest of the 200 examples were not run: nothing new was coming


def test_a_fixed_check_skips_the_rest_after_a_streak_of_hangs():
    from conformance.engine import HANG_STREAK, _fixed

    with Worker(f"{HERE}:hangs", timeout_s=0.5) as worker:
        records = list(_fixed(worker, worked_cases()[:HANG_STREAK + 3]))
    assert [r.status for r in records] == [Status.CRASHED] * HANG_STREAK + [Status.SKIPPED] * 3
    assert "not run" in records[-1].message and records[-1].repro
