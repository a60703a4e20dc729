"""Bench: workload loading, FLOP accounting, timing statistics, memory fitting, plots, gate."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from backends import get_backend
from backends.numba_direct import NumbaDirect
from backends.numpy_im2col import NumpyIm2col
from bench.phases import profile
from bench.quiet import cpu_ticks, wait_until_quiet
from bench.report import baseline_times, compare, load_results, write_report
from bench.run import fit_to_budget, memory_estimate
from bench.verify import grad_truth_for, numpy_float64_trusted, truth_for, verify
from bench.workloads import Workload, all_csv_layers, load, seed_example
from reference import Conv3DSpec
from runtime.data import make_arrays, make_cotangent
from runtime.records import Record, Status, Timing
from runtime.tables import frame, save_csv
from runtime.timing import summarize, time_call, wide_gemm_peak
from runtime.worker import Worker
from runtime.workloads import workload_rows, workload_spec


def test_every_csv_row_parses_and_expressible_ones_map_to_valid_specs():
    rows = workload_rows()
    layers, skipped = all_csv_layers()
    assert len(layers) + len(skipped) == len(rows) == 803
    assert all("not Keras valid/same" in s for s in skipped)
    for row in rows:
        spec = workload_spec(row)
        if spec is None:
            assert row["keras_padding"] not in ("valid", "same")
            continue
        assert spec.output_spatial == (int(row["od"]), int(row["oh"]), int(row["ow"])), row["line"]
        assert spec.flops == int(row["dense_ops"]), row["line"]


def test_named_sets():
    quick, _ = load("quick")
    default, _ = load("default")
    assert len(quick) == 4 and quick[0].name.startswith("seed")
    groups = {w.group for w in default}
    assert {"seed", "3d_unet", "3d_i3d", "3d_resnext101", "x3d_dw", "movinet_dw", "sweep"} <= groups
    with pytest.raises(ValueError, match="unknown workload set"):
        load("nope")


def test_seed_example_flops():
    assert seed_example().spec.flops == 2 * 4 * 8 * 8 * 8 * 32 * 27 * 128


def test_summarize():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["median_s"] == 3.0 and stats["min_s"] == 1.0 and stats["repeats"] == 5
    assert stats["iqr_s"] == pytest.approx(2.0)


def test_time_call_meets_minimums_and_returns_output():
    spec = seed_example().spec
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    result = time_call(get_backend("numpy-im2col"), x[:1], w, b, spec.conv_kwargs(),
                       min_repeats=3, min_seconds=0.05)
    assert result["repeats"] >= 3 and result["first_call_s"] >= result["prepare_s"] > 0
    assert result["output"].shape == (1, 8, 8, 8, 32) and result["traced_peak_bytes"] > 0


def test_memory_budget_reduces_batch_then_skips():
    workload = seed_example()
    need = memory_estimate(workload.spec, 4)
    fitted, _ = fit_to_budget(workload, need - 1, 4)
    assert fitted.spec.batch == 2 and "batch reduced from 4 to 2" in fitted.note
    skipped, message = fit_to_budget(workload, 1, 4)
    assert skipped is None and "skipped" in message


def test_gate_rejects_a_wrong_output_for_large_layers():
    spec = load("default")[0][1].spec  # U-Net conv_7: too large for the reference
    assert numpy_float64_trusted(spec)
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    truth = truth_for(spec, x, w, b)
    assert truth.source == "numpy-im2col float64"
    good = get_backend("numpy-im2col").conv3d(x, w, b, **spec.conv_kwargs())
    assert verify(truth, good, x, w, "float32", "float32", False).status == "PASS"
    bad = good.copy()
    bad[0, 3, 3, 3, 7] += 0.5 * np.abs(good).max()  # worst-case bounds are wide at K = 6912
    assert verify(truth, bad, x, w, "float32", "float32", False).status == "FAIL"


def _synthetic(direction: str = "forward") -> pd.DataFrame:
    records = []
    for backend, speed in (("numba-direct", 1.0), ("numpy-im2col", 0.5), ("torch", 2.0), ("jax", 1.5)):
        for n in (8, 12, 16):
            spec = Conv3DSpec(filters=64, kernel_size=3, input_shape=(1, n, n, n, 64))
            median = spec.flops / (speed * 1e10)
            timing = Timing(repeats=5, min_s=median, median_s=median, mean_s=median, iqr_s=0.0,
                            prepare_s=0.0, first_call_s=0.1 * speed, traced_peak_bytes=2**20,
                            gflops=speed * 10, fraction_of_peak=speed / 10,
                            output_s=median * (0.4 if backend == "jax" else 0.01))
            records.append(Record(backend=backend, check="bench", case=f"sweep spatial {n}",
                                  status=Status.PASS, dtype="float32", descriptor=spec.descriptor,
                                  group="sweep", sweep="spatial", sweep_value=n, threads=2, timing=timing,
                                  direction=direction))
    return frame(records)


def _saved(tmp_path, df: pd.DataFrame, meta: dict):
    save_csv(df, tmp_path / "results.csv")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def test_report_and_plots_from_a_table(tmp_path):
    df = _synthetic()
    torch_times = df[df.backend == "torch"].set_index("case")["median_s"]
    assert baseline_times(load_results(_saved(tmp_path, df, {}) / "results.csv"))["sweep spatial 8"] == \
        pytest.approx(torch_times["sweep spatial 8"])
    meta = dict(peak_gflops=100.0, wide_peak_gflops=200.0, threads=2, command="test",
                environment=dict(openblas_coretype="Haswell"))
    text = write_report(_saved(tmp_path, df, meta)).read_text()
    assert "pins NumPy's OpenBLAS to Haswell" in text and "**200.0 GFLOP/s**" in text
    assert "mean fraction of GEMM peak 0.10, least 0.10." in text
    assert "Of the AVX-512 GEMM peak: 0.05." in text
    assert "At or below the best other backend's time on 0 of" in text
    assert "GFLOP/s" in text and "torch" in text
    assert "## numba-direct against the best other backend" in text
    assert "numba-direct time / best other backend's time: **2.00**" in text  # torch is twice as fast
    assert "| torch |" in text  # named as the best other
    assert "numpy-im2col / best other" in text  # our other backend, beside it
    assert "- jax on sweep spatial 8 (forward): 40%" in text  # its output conversion is warned about
    assert "- torch on" not in text.split("## Output conversion")[1].split("##")[0]
    for stem in ("gflops", "peak_fraction", "scaling", "speedup", "first_call"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 1000 and (tmp_path / f"{stem}.svg").exists()


def test_backward_rows_get_their_own_section_against_torch(tmp_path):
    df = pd.concat([_synthetic(), _synthetic("backward")])
    meta = dict(peak_gflops=100.0, threads=2, command="test")
    text = write_report(_saved(tmp_path, df, meta)).read_text()
    forward, backward = text.split("## Backward (dx, dkernel, dbias)")
    assert "numba-direct time / best other backend's time: **2.00**" in forward  # forward rows only
    assert "- numba-direct / torch: geometric mean **2.00**" in backward
    assert "- numpy-im2col / torch: geometric mean **4.00**" in backward
    assert "within 3x on 0 of 3 workloads" in backward


def test_backward_gate_on_a_large_layer():
    """The float64 truth's gradients (trusted on a reduced copy) pass a correct float32 backward
    and reject one wrong element."""
    spec = load("default")[0][3].spec  # I3D 1x1x1: too large for the backward reference
    x, w, b = make_arrays(spec, "float32", "normal", 0)
    dy = make_cotangent(spec, spec.output_shape, "float32", "normal", 0)
    truth = grad_truth_for(spec, x, w, b, dy)
    assert truth.source == "numpy-im2col float64"
    good = get_backend("numpy-im2col").conv3d_grad(x, w, b, dy, **spec.conv_kwargs())
    assert verify(truth, good, x, w, "float32", "float32", False).status == "PASS"
    bad = tuple(g.copy() for g in good)
    bad[1][0, 0, 0, 5, 7] += 0.5 * np.abs(good[1]).max()
    verdict = verify(truth, bad, x, w, "float32", "float32", False)
    assert verdict.status == "FAIL" and "dkernel: 1 of" in verdict.message


def test_a_wrong_output_is_not_timed(tmp_path):
    df = _synthetic()
    wrong = (df.backend == "torch") & (df.case == "sweep spatial 8")
    df.loc[wrong, "status"] = str(Status.FAIL)
    meta = dict(peak_gflops=100.0, threads=2, command="test")
    text = write_report(_saved(tmp_path, df, meta)).read_text()
    assert "## Not timed" in text and "| sweep spatial 8 | forward | torch | FAIL |" in text
    assert baseline_times(load_results(tmp_path / "results.csv"))["sweep spatial 8"] == \
        pytest.approx(df[(df.backend == "jax") & (df.case == "sweep spatial 8")]["median_s"].iloc[0])


def test_compare_mode(tmp_path):
    before, after = _synthetic(), _synthetic()
    after["median_s"] = after["median_s"] / 2
    before.to_csv(tmp_path / "a.csv", index=False)
    after.to_csv(tmp_path / "b.csv", index=False)
    text = compare(tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "cmp").read_text()
    assert "Geometric mean speed-up: 2.00" in text
    assert np.allclose(pd.read_csv(tmp_path / "cmp" / "compare.csv")["speedup"], 2.0)


def test_gpu_backends_report_unavailable_here_and_import_cleanly():
    from backends.registry import get_backend

    for name in ("torch-cuda", "torch-cuda-tf32", "cupy-im2col"):
        backend = get_backend(name)
        assert backend.capabilities.devices == ("cuda",)
        availability = backend.availability()
        if not availability.ok:
            assert availability.reason and str(availability).startswith("unavailable: ")
    assert get_backend("torch-cuda-tf32").capabilities.precision("float32") == "tf32"


def test_phase_profile_accounts_for_each_path():
    spec = Conv3DSpec(filters=16, kernel_size=3, padding="same", input_shape=(1, 6, 6, 6, 8))
    workload = Workload("tiny", spec, "test")
    gemm = profile(workload, NumpyIm2col(), "float32", repeats=2)
    direct = profile(workload, NumbaDirect(), "float32", repeats=2)
    assert {"pad", "pack", "gemm", "bias", "epilogue"} <= set(gemm) and "kernel" not in gemm
    # the direct kernels add the bias in registers, before their stores
    assert {"pad", "kernel", "epilogue"} <= set(direct) and not {"gemm", "bias"} & set(direct)
    for ms in (gemm, direct):
        phases = sum(v for k, v in ms.items() if k not in ("total", "other"))
        assert 0 < phases <= ms["total"] * 1.0001 and ms["other"] >= 0


def test_a_worker_has_one_name_the_one_it_was_loaded_by():
    with Worker("conformance.mutants.zoo:Mutant") as worker:
        assert worker.name == "conformance.mutants.zoo:Mutant" and worker.availability.ok
        assert not hasattr(worker, "label")


def test_wide_gemm_peak_only_where_the_environment_pins_openblas(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    assert wide_gemm_peak(1) is None
    monkeypatch.setenv("OPENBLAS_CORETYPE", "SkylakeX")
    assert wide_gemm_peak(1) is None


@pytest.mark.skipif(cpu_ticks(os.getpid()) is None, reason="needs /proc (Linux)")
def test_wait_until_quiet_waits_out_a_spinning_process():
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\n"
                             "while time.time() - t < 0.4: pass\ntime.sleep(60)"])
    try:
        time.sleep(0.05)
        assert 0.2 < wait_until_quiet([busy.pid], timeout=5) < 5  # until its 0.4 s of spinning end
        assert wait_until_quiet([busy.pid], timeout=5) < 0.2  # asleep now: one interval
    finally:
        busy.kill()


class _TimedWorker:
    """A stand-in backend worker: numpy-im2col's output and capabilities, a fixed time per run, and
    a log of the bench calls it received."""

    pid = None

    def __init__(self, name: str, seconds: float, calls: list, wrong_round: int = -1,
                 crash_round: int = -1) -> None:
        self.name, self.seconds, self.calls, self.wrong_round = name, seconds, calls, wrong_round
        self.crash_round = crash_round
        self.capabilities = NumpyIm2col.capabilities

    def bench(self, x, kernel, bias, args, min_repeats, min_seconds, trace_memory, dy=None):
        from runtime.worker import Outcome

        turn = sum(1 for name, *_ in self.calls if name == self.name)
        self.calls.append((self.name, min_repeats, min_seconds, trace_memory))
        if turn == self.crash_round:
            return Outcome("crashed", message="backend process died (exit code -9)")
        output = NumpyIm2col().conv3d(x, kernel, bias, **args) * (2 if turn == self.wrong_round else 1)
        times = [self.seconds] * min_repeats
        return Outcome("ok", outputs=[dict(summarize(times), times=times, prepare_s=0.1, first_call_s=0.2,
                                           output_s=self.seconds / 100,
                                           traced_peak_bytes=1 if trace_memory else None, output=output)])


def test_backends_take_turns_and_every_round_is_verified(monkeypatch):
    from bench.run import Bench, Settings

    calls: list = []
    workers = {"a": _TimedWorker("a", 0.001, calls), "b": _TimedWorker("b", 0.002, calls, wrong_round=2),
               "c": _TimedWorker("c", 0.001, calls, crash_round=1)}
    settings = Settings(threads=1, min_repeats=5, min_seconds=0.3, rounds=3)
    bench = Bench(["a", "b", "c"], settings, peak_gflops=100.0)
    monkeypatch.setattr(bench, "_worker", lambda name: workers[name])
    monkeypatch.setattr("bench.run.wait_until_quiet", lambda pids: 0.0)
    spec = Conv3DSpec(filters=4, kernel_size=3, input_shape=(1, 6, 6, 6, 3))
    records: list[Record] = []
    bench.run([Workload("tiny", spec, "test")], records.append)
    assert [c[0] for c in calls] == ["a", "b", "c", "a", "b", "c", "a", "b"], "c is not timed after its crash"
    assert all(c[1] == 2 and c[2] == pytest.approx(0.1) for c in calls)
    assert [c[3] for c in calls] == [True] * 3 + [False] * 5  # memory traced once
    a, b, c = records
    assert c.status == Status.CRASHED and "exit code -9" in c.message
    assert a.status == Status.PASS and a.timing.repeats == 6 and a.timing.median_s == pytest.approx(0.001)
    assert a.timing.traced_peak_bytes == 1
    assert b.status == Status.FAIL and b.timing.gflops is None, "a wrong output in the last round counts"


def test_the_report_names_the_machine_and_numba_target(tmp_path):
    from runtime.environment import environment

    env = environment()
    meta = dict(peak_gflops=100.0, threads=2, command="test", environment=env)
    text = write_report(_saved(tmp_path, _synthetic(), meta)).read_text()
    assert f"Machine: {env['cpu']}, {env['cores']} cores" in text
    target = env["numba_target"]
    assert f"LLVM target {target['cpu_name']} with {target['vector_bits']}-bit vectors" in text
    assert env["numba_threading_layer"] in ("tbb", "omp", "workqueue") and env["cpu_id"]
    flags = env["cpu_flags"]
    assert target["vector_bits"] == (512 if "avx512f" in flags else 256 if "avx2" in flags else 128)


def test_a_timed_call_includes_the_output_conversion():
    """A backend that computes nothing and spends 20 ms converting its output is timed at 20 ms a
    call, all of it conversion (what a user waits for, not what run() alone takes)."""
    from backends.base import Prepared
    from runtime.timing import time_call

    class SlowOutput:
        def prepare(self, x, kernel, bias, **args):
            return Prepared(run=lambda: x, to_numpy=lambda out: time.sleep(0.02) or np.asarray(out))

    x = np.zeros((1, 2, 2, 2, 1), np.float32)
    result = time_call(SlowOutput(), x, x, None, {}, min_repeats=3, min_seconds=0.0, trace_memory=False)
    assert result["median_s"] >= 0.02 and result["output_s"] >= 0.02
    assert result["output_s"] <= result["median_s"]


def test_a_second_dtype_is_reported_against_the_first(tmp_path):
    """--dtype float32,bfloat16: the tables are float32's; bfloat16 times divided by float32's,
    per layer and backend, with a geometric mean; a bfloat16 failure is listed as not timed."""
    low = _synthetic().assign(dtype="bfloat16")
    low["median_s"] = low["median_s"] * np.where(low["backend"] == "torch", 0.5, 2.0)
    low.loc[(low.backend == "jax") & (low.case == "sweep spatial 8"), "status"] = str(Status.FAIL)
    meta = dict(peak_gflops=100.0, threads=2, command="test", dtypes=["float32", "bfloat16"])
    text = write_report(_saved(tmp_path, pd.concat([_synthetic(), low]), meta)).read_text()
    assert "numba-direct time / best other backend's time: **2.00**" in text  # float32 rows only
    section = text.split("## Other dtypes against float32")[1]
    table = section.split("### bfloat16 / float32, forward")[1].split("##")[0]
    mean = next(line for line in table.splitlines() if line.startswith("| geometric mean"))
    columns = next(line for line in table.splitlines() if line.startswith("| workload"))
    assert dict(zip(columns.split("|"), mean.split("|")))[" torch "] == " 0.5 "
    assert "| sweep spatial 8 | forward | bfloat16 | jax | FAIL |" in text
    jax_column = columns.split("|").index(" jax ")
    row = next(line for line in table.splitlines() if line.startswith("| sweep spatial 8 "))
    assert row.split("|")[jax_column].strip() == "nan"  # no ratio for jax's failed row
