"""Where users already are: the pytest plugin run from a directory outside the repository, JUnit
XML from the command line, and the installed console command."""

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from junitparser import Failure, JUnitXml, Skipped

# A user's own module: a correct float32 conv3d, and one that drops the bias of the last filter.
USER_MODULE = textwrap.dedent('''
    import numpy as np
    from reference import conv3d as exact

    def conv3d(x, kernel, bias=None, **args):
        return exact(x, kernel, bias, **args).astype(np.asarray(x).dtype)

    def broken(x, kernel, bias=None, **args):
        if bias is not None:
            bias = np.array(bias, copy=True)
            bias[-1] = 0
        return conv3d(x, kernel, bias, **args)
''')
QUICK = ["--conv3d-profile", "quick", "--conv3d-direction", "forward", "--conv3d-checks", "exact,invalid"]


@pytest.fixture
def user_dir(tmp_path) -> Path:
    (tmp_path / "mykernels.py").write_text(USER_MODULE)
    return tmp_path


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd), CONV3D_PARITY_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_pytest_plugin_outside_the_repo_passes_a_correct_function_and_fails_a_broken_one(user_dir):
    ok = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--conv3d-backend", "mykernels:conv3d",
               *QUICK], user_dir)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "2 passed" in ok.stdout
    bad = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--conv3d-backend", "mykernels:broken",
                *QUICK, "--junitxml", "out.xml"], user_dir)
    assert bad.returncode == 1, bad.stdout[-3000:]
    # the repro line runs from the repository root: it carries the module's folder
    repro = f"repro: PYTHONPATH={user_dir.resolve()} python -m conformance --backend mykernels:broken"
    assert repro in bad.stdout
    cases = list(JUnitXml.fromfile(str(user_dir / "out.xml")))[0]
    failed = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert [c.name for c in failed] == ["test_conformance[mykernels:broken-forward-exact]"]
    # the example database and hypothesis' own files went to the cache, not where pytest ran
    assert not (user_dir / ".conformance").exists() and not (user_dir / ".hypothesis").exists()
    assert (user_dir / "cache" / "db").is_dir()


def test_junit_from_the_command_line_has_one_testcase_per_case(user_dir):
    for function, code, checks in (("conv3d", 0, "invalid"), ("broken", 1, "exact")):
        done = _run(["-m", "conformance", "--backend", f"mykernels:{function}", "--profile", "quick",
                     "--checks", checks, "--direction", "both", "--no-db",
                     "--junit", f"{function}.xml"], user_dir)
        assert done.returncode == code, done.stderr[-3000:]
        ran = int(done.stderr.strip().splitlines()[-1].split()[0])  # "N cases in S s: ..."
        xml = JUnitXml.fromfile(str(user_dir / f"{function}.xml"))
        cases = [c for suite in xml for c in suite]
        assert len(cases) == ran > 0
        failures = [c for c in cases if any(isinstance(r, Failure) for r in c.result)]
        skipped = [c for c in cases if any(isinstance(r, Skipped) for r in c.result)]
        assert skipped  # the backward direction of a forward function: UNSUPPORTED
        if code:
            repro = f"repro: PYTHONPATH={user_dir.resolve()} python -m conformance"
            assert failures and all(repro in f.result[0].text for f in failures)
            assert "worst element" in failures[0].result[0].text
        else:
            assert not failures


def test_console_command_dispatches(tmp_path):
    """conv3d-parity passes its arguments on (report redrawing itself: test_bench, test_gradients)."""
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True)

    assert cli("conformance", "--help").stdout.startswith("usage: python -m conformance")
    assert cli("bench", "--help").stdout.startswith("usage: python -m bench")
    empty = cli("report", str(tmp_path))
    assert empty.returncode == 2 and "holds no conformance" in empty.stderr
    bad = cli("frobnicate")
    assert bad.returncode == 2 and "usage: conv3d-parity" in bad.stderr


def test_a_dtype_subset_restricts_every_check():
    """--conv3d-dtypes: generated, fixed and covering cases all keep to the dtypes asked for;
    asking for none the backend declares is UNSUPPORTED."""
    from conformance.engine import Job, run_check
    from runtime.records import Status

    for check in ("exact", "worked", "covering"):
        records = run_check(Job("numpy-im2col", check, "quick", database=None, dtypes=("float64",))).records
        assert records and {r.dtype for r in records} == {"float64"}, check
    none = run_check(Job("tests.backends_for_tests:declares_no_dilation", "exact", "quick", database=None,
                         dtypes=("float64",))).records  # it declares float32 only
    assert [r.status for r in none] == [Status.UNSUPPORTED] and "float64" in none[0].message


def test_a_plain_function_declares_what_it_supports_and_declines_the_rest():
    """@declare sets a function's capabilities; raising Unsupported declines one case. Both are
    UNSUPPORTED, never REJECTED-VALID or CRASHED; the backend's library is named with a version."""
    from conformance.cases import Case
    from conformance.execute import run_case
    from reference.spec import Conv3DSpec
    from runtime.records import Status
    from runtime.worker import Worker

    def case(**args) -> Case:
        return Case(Conv3DSpec(input_shape=(1, 5, 5, 5, 2), filters=2, kernel_size=2, **args), data="exact")

    with Worker("tests.backends_for_tests:declares_no_dilation") as worker:
        assert worker.capabilities.dtypes == ("float32",) and worker.versions == {"tests": "unknown"}
        plain, dilated, first = (run_case(worker, case()), run_case(worker, case(dilation_rate=2)),
                                 run_case(worker, case(data_format="channels_first")))
        backward = run_case(worker, dataclasses.replace(case(), direction="backward"))
    assert plain.status == Status.PASS
    assert dilated.status == Status.UNSUPPORTED and dilated.message == "declined: dilation is not implemented"
    assert first.status == Status.UNSUPPORTED and "channels_first" in first.message
    assert backward.status == Status.UNSUPPORTED
    with Worker("numpy-im2col") as worker:
        assert worker.versions == {"numpy": np.__version__}
