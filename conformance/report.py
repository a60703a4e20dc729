"""The conformance report: a tidy CSV (one row per backend and case, gzip), JSON (meta, counts
and every row that did not pass), a Markdown/HTML summary, and an error/bound plot.

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written report. `python -m conformance.report DIR` redraws from DIR's files.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd

from conformance.judge import FAILING, STATUSES
from conformance.known_deviations import DEVIATIONS

FEATURES = ("padding", "stride", "dilation", "groups", "data_format", "dtype", "activation_kind")
AXIS_ACTIVATIONS = ("softmax", "log_softmax", "glu", "sparsemax")
EXACT_OPS = ("linear", "relu", "relu6", "hard_tanh", "leaky_relu")


def atomic_write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `df`, index first."""
    def fmt(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    header = [str(df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([fmt(i)] + [fmt(v) for v in row]) + " |"
              for i, row in zip(df.index, df.itertuples(index=False))]
    return "\n".join(lines)


def environment() -> dict:
    versions = {}
    for package in ("numpy", "numba", "hypothesis", "torch", "tensorflow", "keras", "jax", "cupy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    from threadpoolctl import threadpool_info

    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')} kernels, "
            f"{i['num_threads']} threads)" for i in threadpool_info()]
    return dict(python=sys.version.split()[0], platform=platform.platform(), cpu=_cpu_model(),
                cores=os.cpu_count(), blas=blas, gpu=_gpu(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE", "(auto)"), **versions)


def _gpu() -> str:
    """GPU model and driver from nvidia-smi, or 'none'."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return "none"
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip() or "none"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def _activation_kind(name: object) -> str:
    if not isinstance(name, str) or name in EXACT_OPS:
        return "piecewise-linear"
    return "axis (softmax family)" if name in AXIS_ACTIVATIONS else "transcendental"


def feature_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """backend x feature value -> 'pass/fail/unsupported' counts, plus special/invalid/determinism."""
    cells: dict[tuple, dict] = {}
    valid = df[df["check"] != "invalid"].copy()
    valid["activation_kind"] = valid.get("activation", pd.Series(dtype=object)).map(_activation_kind)
    groups = [(f"{feature}={value}", part) for feature in FEATURES if feature in valid
              for value, part in valid.groupby(feature, dropna=True)]
    groups += [("special values", valid[valid["data"].isin(["special", "large", "subnormal"])]),
               ("invalid configs", df[df["check"] == "invalid"]),
               ("properties", df[df["check"] == "property"])]
    for label, part in groups:
        for backend, rows in part.groupby("backend"):
            status = rows["status"]
            ok = status.isin(["PASS", "MISTRUSTED"]).sum()
            bad = status.isin(FAILING).sum()
            known = (status == "KNOWN-FAIL").sum()
            cell = f"{ok}/{bad}/{(status == 'UNSUPPORTED').sum()}" + (f" ({known} known)" if known else "")
            cells.setdefault(label, {})[backend] = cell
    for backend, rows in df.groupby("backend"):
        cells.setdefault("determinism (nondeterministic cases)", {})[backend] = str(
            (rows["status"] == "NONDETERMINISTIC").sum())
    return pd.DataFrame(cells).T.fillna("")


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    counts = df.pivot_table(index="backend", columns="status", values="case", aggfunc="count",
                            fill_value=0)
    counts = counts.reindex(columns=[s for s in STATUSES if s in counts.columns])
    counts["cases"] = counts.sum(axis=1)
    if "max_ratio" in df:
        finite = df[df["status"].isin(["PASS", "MISTRUSTED"])]
        counts["worst error/bound (passing)"] = finite.groupby("backend")["max_ratio"].max()
    if "check_seconds" in df:
        per_check = df.groupby(["backend", "check"])["check_seconds"].first()
        counts["seconds"] = per_check.groupby("backend").sum().round(1)
    return counts


def plot_ratios(df: pd.DataFrame, out: Path) -> list[str]:
    """Distribution of the worst error/bound per case, per backend (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = df[df["status"].isin(["PASS", "MISTRUSTED", "FAIL"]) & (df.get("data") != "exact")]
    data = data[data["max_ratio"].notna() & (data["max_ratio"] > 0) & np.isfinite(data["max_ratio"])]
    if data.empty:
        return []
    backends = sorted(data["backend"].unique())
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(backends)), 4))
    ax.boxplot([np.log10(data[data["backend"] == b]["max_ratio"]) for b in backends], whis=(0, 100))
    ax.set_xticks(range(1, len(backends) + 1), backends, rotation=30, ha="right")
    ax.axhline(0, color="red", linestyle="--", label="bound (error/bound = 1)")
    ax.set_ylabel("log10(worst error / bound) per case")
    ax.set_title("How close each backend comes to the VERIFICATION.md bound")
    ax.legend(loc="lower right")
    fig.tight_layout()
    names = []
    for ext in ("png", "svg"):
        tmp = out / f"error_bound.tmp.{ext}"
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, out / f"error_bound.{ext}")
        names.append(f"error_bound.{ext}")
    plt.close(fig)
    return names


def _markdown(df: pd.DataFrame, meta: dict, images: list[str]) -> str:
    lines = ["# Conformance report", "",
             f"Profile `{meta.get('profile')}`, seed {meta.get('seed')}, "
             f"{len(df)} cases, {meta.get('seconds', 0):.0f} s wall time.", "",
             "## Status per backend", "", markdown_table(summary_table(df)), "",
             "## Backend x feature (pass / fail / unsupported)", "",
             markdown_table(feature_matrix(df)), ""]
    if images:
        lines += ["## Error / bound distribution", "", f"![error/bound]({images[0]})", ""]
    failing = df[df["status"].isin(FAILING)]
    lines += ["## Failures", ""]
    if failing.empty:
        lines += ["None.", ""]
    for _, row in failing.iterrows():
        shrunk = " (shrunk)" if row.get("shrunk") is True else ""
        first_line = str(row["message"]).splitlines()[0][:300] if row["message"] else ""
        lines += [f"- **{row['backend']}** {row['status']}{shrunk}: {first_line}",
                  f"  `{row['repro']}`"]
    known = df[df["status"] == "KNOWN-FAIL"]
    if len(known):
        lines += ["", "## Known deviations (conformance/known_deviations.py): real framework "
                      "discrepancies, reported, not gating", ""]
        for deviation in DEVIATIONS:
            matching = known[known["message"].str.startswith(f"known deviation: {deviation.reason}")]
            for backend, rows in matching.groupby("backend"):
                lines += [f"- **{backend}** ({len(rows)} cases): {deviation.reason}",
                          f"  `{rows.iloc[0]['repro']}`"]
    unsupported = df[df["status"] == "UNSUPPORTED"].groupby(["backend", "message"]).size()
    if len(unsupported):
        lines += ["", "## Unsupported (declared by the backend)", ""]
        lines += [f"- {b}: {m} ({n} cases)" for (b, m), n in unsupported.items()]
    lines += ["", "## Environment", "", "```", json.dumps(meta.get("environment", {}), indent=1),
              "```", ""]
    return "\n".join(lines)


def write_report(rows: list[dict], out: Path, meta: dict) -> Path:
    """Write results.csv.gz (every row), results.json (meta, counts and the rows that did not
    pass), summary.md/html and the plot under `out`; returns summary.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    meta = dict(meta, environment=meta.get("environment") or environment())
    tmp = out / "results.csv.gz.tmp"
    df.to_csv(tmp, index=False, compression="gzip")
    os.replace(tmp, out / "results.csv.gz")
    notable = df[~df["status"].isin(["PASS", "MISTRUSTED"])]
    counts = summary_table(df).reset_index().to_dict(orient="records")
    atomic_write(out / "results.json", json.dumps(dict(
        meta=meta, counts=counts, not_passed=json.loads(notable.to_json(orient="records"))),
        indent=1, default=str))
    images = plot_ratios(df, out)
    atomic_write(out / "summary.md", _markdown(df, meta, images))
    atomic_write(out / "summary.html", _html(df, meta, images))
    return out / "summary.md"


def _html(df: pd.DataFrame, meta: dict, images: list[str]) -> str:
    parts = ["<html><head><meta charset='utf-8'><title>Conformance report</title></head><body>",
             "<h1>Conformance report</h1>",
             f"<p>Profile {meta.get('profile')}, seed {meta.get('seed')}, {len(df)} cases.</p>",
             "<h2>Status per backend</h2>", summary_table(df).to_html(),
             "<h2>Backend x feature (pass / fail / unsupported)</h2>", feature_matrix(df).to_html()]
    if images:
        parts.append(f"<h2>Error / bound</h2><img src='{images[-1]}'>")
    failing = df[df["status"].isin(FAILING)]
    parts.append("<h2>Failures</h2>" + (failing[["backend", "status", "message", "repro"]].to_html()
                                        if len(failing) else "<p>None.</p>"))
    return "\n".join(parts + ["</body></html>"])


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or ["reports/conformance"])[0])
    meta = json.loads((out / "results.json").read_text())["meta"]
    rows = pd.read_csv(out / "results.csv.gz").to_dict(orient="records")
    print(write_report(rows, out, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
