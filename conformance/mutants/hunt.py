"""Hunting mutants (python -m conformance.mutants): the default profile against every mutant.

Each mutant's checks run in the order of conformance.engine.CHECKS until one yields an expected
status. cases_to_catch
counts the cases of the catching check up to the first caught one (before shrinking);
cases_run counts every case run against the mutant, earlier checks included.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import statistics
import time
from pathlib import Path

import pandas as pd

from conformance.engine import BACKWARD_CHECKS, CHECKS, Job, run_check
from conformance.mutants.grad_zoo import GRAD_ZOO
from conformance.mutants.layer_zoo import LAYER_ZOO
from conformance.mutants.zoo import LOW_PRECISION_ZOO, ZOO
from conformance.profiles import DEFAULT_PROFILE, PROFILES
from runtime.files import atomic_write
from runtime.tables import markdown_table

ALL_MUTANTS = (*ZOO, *GRAD_ZOO, *LAYER_ZOO)
ZOOS = {"all": ALL_MUTANTS, "forward": ZOO, "backward": GRAD_ZOO, "layer": LAYER_ZOO,
        "low-precision": LOW_PRECISION_ZOO}


def hunt(mutant: str, profile: str, seed: int) -> dict:
    """Run checks against one mutant until it is caught; returns its kill-table row."""
    cls = next(m for m in ALL_MUTANTS if m.__name__ == mutant)
    name = f"{cls.__module__}:{cls.__name__}"
    started, cases_run = time.perf_counter(), 0
    checks = getattr(cls, "checks", None) or (CHECKS if cls.direction == "forward" else BACKWARD_CHECKS)
    direction = "layer" if checks == ("layer",) else cls.direction  # the kill table's column
    for check in checks:
        records = run_check(Job(name, check, profile, seed, database=None, max_failures=1,
                                direction=cls.direction)).records
        for index, record in enumerate(records, start=1):
            if record.status in cls.expected:
                return dict(mutant=mutant, direction=direction, bug_class=cls.bug_class,
                            caught=True, status=str(record.status),
                            check=check, cases_to_catch=index, cases_run=cases_run + index,
                            seconds_to_catch=round(time.perf_counter() - started, 1), repro=record.repro)
        cases_run += len(records)
    return dict(mutant=mutant, direction=direction, bug_class=cls.bug_class, caught=False,
                status="", check="",
                cases_to_catch=None, cases_run=cases_run,
                seconds_to_catch=round(time.perf_counter() - started, 1), repro="")


def run_zoo(profile: str, seed: int, jobs: int, zoo=ALL_MUTANTS) -> pd.DataFrame:
    """The kill table of `zoo` (default: the forward, backward and layer mutants)."""
    names = [m.__name__ for m in zoo]
    with cf.ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        rows = list(pool.map(hunt, names, [profile] * len(names), [seed] * len(names)))
    return pd.DataFrame(rows)


def kill_table(df: pd.DataFrame, profile: str, seed: int, seconds: float) -> str:
    caught = df["caught"].sum()
    lines = [f"# Mutant kill table (profile {profile}, seed {seed})", "",
             f"Caught {caught} of {len(df)} ({100 * caught / len(df):.0f}%) in {seconds:.0f} s; "
             f"median cases to catch {statistics.median(df['cases_to_catch'].dropna()):g}.", "",
             markdown_table(df.set_index("mutant")[[
                 "direction", "bug_class", "caught", "status", "check", "cases_to_catch", "cases_run",
                 "seconds_to_catch"]]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.mutants", description=__doc__)
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE)
    p.add_argument("--seed", type=int, action="append", help="repeatable; default 0")
    p.add_argument("-j", "--jobs", type=int, default=2)
    p.add_argument("--zoo", choices=sorted(ZOOS), default="all",
                   help="which mutants (default all); a part is reported as mutants-<zoo>.md / .csv")
    p.add_argument("--report", type=Path, help="directory for mutants.md / mutants.csv")
    args = p.parse_args(argv)
    all_caught = True
    frames = []
    for seed in args.seed or [0]:
        started = time.perf_counter()
        df = run_zoo(args.profile, seed, args.jobs, zoo=ZOOS[args.zoo]).assign(seed=seed)
        table = kill_table(df, args.profile, seed, time.perf_counter() - started)
        print(table)
        frames.append((table, df))
        all_caught &= bool(df["caught"].all())
    if args.report:
        stem = "mutants" if args.zoo == "all" else f"mutants-{args.zoo}"
        atomic_write(args.report / f"{stem}.md", "\n".join(t for t, _ in frames))
        atomic_write(args.report / f"{stem}.csv", pd.concat([d for _, d in frames]).to_csv(index=False))
    return 0 if all_caught else 1


