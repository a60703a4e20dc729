"""The Ray executor on a real local cluster (a head and a second node on 127.0.0.1, each with
ports of its own): the second node is killed while it runs a check, and the report still holds
exactly the cases of a local run of the same seeds; sweeps split into shards with repro lines."""

import json
import threading
import time

import pytest

from conformance.__main__ import _jobs, main, parse_args
from conformance.profiles import PROFILES
from runtime.tables import read_csv

ray = pytest.importorskip("ray", reason="the Ray executor needs ray (make install brings it)")

BACKEND = "tests.backends_for_tests:marks_its_node"
ARGS = ["--backend", BACKEND, "--profile", "quick", "--checks", "invalid", "--direction", "forward",
        "--no-db", "--seeds", "0-2"]  # invalid calls: cheap cases, so the test is mostly Ray


def _cases(report) -> list[tuple]:
    rows = read_csv(report / "results.csv.gz")
    return sorted(zip(rows["backend"], rows["check"], rows["case"], rows["direction"], rows["dtype"],
                      rows["run_seed"]))


def test_a_killed_node_loses_no_case_and_counts_none_twice(tmp_path, monkeypatch):
    from ray.cluster_utils import Cluster

    mark = tmp_path / "second-node-ran"
    monkeypatch.setenv("CONV3D_TEST_MARK", str(mark))
    assert main([*ARGS, "-j", "2", "--report", str(tmp_path / "local")]) == 0
    assert not mark.exists()  # CONV3D_TEST_NODE is set on the second node's raylet only

    cluster = Cluster(initialize_head=True,
                      head_node_args=dict(num_cpus=1, object_store_memory=80 * 2**20))
    second = cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20,
                              env_vars={"CONV3D_TEST_NODE": "second"})
    cluster.wait_for_nodes()
    killed = threading.Event()

    def kill_when_it_works() -> None:
        deadline = time.time() + 120
        while not mark.exists() and time.time() < deadline:
            time.sleep(0.05)
        if mark.exists():
            cluster.remove_node(second, allow_graceful=False)
            killed.set()

    killer = threading.Thread(target=kill_when_it_works, daemon=True)
    killer.start()
    try:
        code = main([*ARGS, "--executor", "ray", "--address", cluster.address,
                     "--report", str(tmp_path / "ray")])
    finally:
        killer.join(timeout=5)
        ray.shutdown()
        cluster.shutdown()
    assert killed.is_set(), "the second node never ran a case: nothing was killed mid-run"
    assert code == 0
    local, remote = _cases(tmp_path / "local"), _cases(tmp_path / "ray")
    # the same multiset of cases (hypothesis may draw one case twice, in either run alike): the
    # killed node's check, rerun on the head, is in it once
    assert remote == local and len(local) == 3 * PROFILES["quick"].examples["invalid"]
    meta = json.loads((tmp_path / "ray" / "results.json").read_text())["meta"]
    assert meta["executor"] == "ray" and meta["checks_finished"] == meta["checks_total"] == 3


def test_seeds_split_into_shards_each_with_its_own_repro_line():
    args = parse_args(["--backend", "numba-direct", "--seeds", "3-5,9", "--dtypes", "float32,float64",
                       "--checks", "exact,worked", "--direction", "forward", "--no-db"])
    assert args.seeds == (3, 4, 5, 9)
    jobs = _jobs(args, ["numba-direct"])
    exact = [j for j in jobs if j.check == "exact"]
    assert sorted((j.seed, j.dtypes) for j in exact) == [
        (s, (d,)) for s in (3, 4, 5, 9) for d in ("float32", "float64")]
    assert [(j.seed, j.dtypes) for j in jobs if j.check == "worked"] == [
        (3, ("float32",)), (3, ("float64",))]  # a fixed check does not change with the seed
    repro = exact[-1].repro()
    assert repro == ("python -m conformance --backend numba-direct --checks exact --direction forward "
                     "--profile ci --seed 9 --dtypes float64 --no-db")
    again = parse_args(repro.split()[3:])
    assert _jobs(again, ["numba-direct"]) == [exact[-1]]


@pytest.mark.parametrize("text", ["", "5-x", "-3"])
def test_bad_seed_ranges_are_usage_errors(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--backend", "numba-direct", "--seeds", text])
    assert exit_.value.code == 2 and "--seeds" in capsys.readouterr().err


def test_address_without_the_ray_executor_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--backend", "numba-direct", "--address", "127.0.0.1:6379"])
    assert "--executor ray" in capsys.readouterr().err
