"""Bench tables and plots, drawn from the saved results (never from live timing).

`python -m bench.report DIR` redraws DIR's plots and summary from DIR/results.csv.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench.run import OUTPUT_SHARE
from reference.spec import Conv3DSpec
from runtime.files import atomic_write, save_figure
from runtime.records import VERIFIED_VALUES, Status
from runtime.tables import markdown_table, read_csv

FRAMEWORKS = ("torch", "tensorflow", "jax")
STYLE = ("<style>body { font-family: sans-serif; margin: 1.5em; } table { border-collapse: collapse; "
         "font-size: 0.85em; } th, td { border: 1px solid #ccc; padding: 2px 6px; }</style>")
OURS = "numba-direct"  # the backend the "against the best other backend" section is about
ALSO_OURS = ("numpy-im2col",)  # shown beside it in that section


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[str]:
    names = save_figure(fig, out, stem, bbox_inches="tight")
    _plt().close(fig)
    return names


def load_results(path: Path) -> pd.DataFrame:
    """A saved bench table, its case column named `workload`, with each layer's dense FLOPs (and
    a direction: "forward" in tables saved before there was one)."""
    df = read_csv(path).rename(columns={"case": "workload"})
    direction = df["direction"].fillna("forward") if "direction" in df else "forward"
    return df.assign(flops=df["descriptor"].map(lambda d: Conv3DSpec.from_descriptor(d).flops),
                     direction=direction)


def backward_ms(df: pd.DataFrame) -> pd.DataFrame:
    """workload x backend: verified backward median milliseconds."""
    ok = verified(df[df["direction"] == "backward"])
    if ok.empty:
        return pd.DataFrame()
    return (ok.pivot_table(index="workload", columns="backend", values="median_s") * 1e3).round(2)


def backward_section(df: pd.DataFrame) -> list[str]:
    """Backward (dx, dkernel, dbias) medians per workload and backend, and each of ours against
    torch's CPU backward (the issue's yardstick: within 3x)."""
    ms = backward_ms(df)
    if ms.empty:
        return []
    lines = ["## Backward (dx, dkernel, dbias): median ms per call", "",
             "The sections above are forward; a backward call does twice the forward's dense FLOPs "
             "(dx and dkernel).", "", markdown_table(ms), ""]
    ratios = pd.DataFrame({f"{b} / torch": (ms[b] / ms["torch"]).round(2)
                           for b in (OURS, *ALSO_OURS) if b in ms and "torch" in ms})
    if ratios.empty:
        return lines
    lines += ["### Our backends' backward time / torch's", ""]
    for column in ratios:
        r = ratios[column].dropna()
        lines.append(f"- {column}: geometric mean **{float(np.exp(np.log(r).mean())):.2f}**, worst "
                     f"{r.max():.2f} ({r.idxmax()}); within 3x on {int((r <= 3).sum())} of {len(r)} "
                     "workloads.")
    return lines + ["", markdown_table(ratios), ""]


def verified(df: pd.DataFrame) -> pd.DataFrame:
    """The rows whose output was verified: the only timings that count."""
    return df[df["status"].isin(VERIFIED_VALUES)]


def baseline_times(df: pd.DataFrame, baseline: str = "best-framework") -> pd.Series:
    """Per workload, the baseline's median time: a named backend, or the fastest raw framework
    (torch, tensorflow, jax) that was verified, else the fastest verified backend."""
    ok = verified(df)
    if baseline != "best-framework":
        return ok[ok["backend"] == baseline].set_index("workload")["median_s"]
    frameworks = ok[ok["backend"].isin(FRAMEWORKS)]
    best = (frameworks if len(frameworks) else ok).groupby("workload")["median_s"].min()
    return best


def _bars(df: pd.DataFrame, column: str, label: str, out: Path, stem: str) -> list[str]:
    table = verified(df).pivot_table(index="workload", columns="backend", values=column)
    if table.empty:
        return []
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(table) * max(1, len(table.columns) / 3) + 1.5))
    table.plot.barh(ax=ax, width=0.8)
    ax.set_xlabel(label)
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, out, stem)


def plot_scaling(df: pd.DataFrame, out: Path) -> list[str]:
    sweeps = verified(df)[verified(df)["sweep"].fillna("") != ""]
    if sweeps.empty:
        return []
    plt = _plt()
    axes_names = sorted(sweeps["sweep"].unique())
    fig, axes = plt.subplots(1, len(axes_names), figsize=(5 * len(axes_names), 4), squeeze=False)
    for ax, sweep in zip(axes[0], axes_names):
        part = sweeps[sweeps["sweep"] == sweep]
        for backend, rows in part.groupby("backend"):
            rows = rows.sort_values("flops")
            slope = (np.polyfit(np.log(rows["flops"]), np.log(rows["median_s"]), 1)[0]
                     if len(rows) > 1 else np.nan)
            ax.loglog(rows["flops"], rows["median_s"], marker="o", label=f"{backend} (exponent {slope:.2f})")
        ax.set_title(f"sweep: {sweep}")
        ax.set_xlabel("dense FLOPs")
        ax.set_ylabel("median seconds")
        ax.legend(fontsize=7)
    return _save(fig, out, "scaling")


def plot_speedup(df: pd.DataFrame, out: Path, baseline: str) -> list[str]:
    base = baseline_times(df, baseline)
    ok = verified(df)
    speed = ok.assign(speedup=ok["workload"].map(base) / ok["median_s"])
    return _bars(speed, "speedup", f"speed-up over {baseline} (higher is faster)", out, "speedup")


def plot_first_call(df: pd.DataFrame, out: Path) -> list[str]:
    ok = verified(df)
    if ok.empty:
        return []
    plt = _plt()
    first = ok.groupby("backend")["first_call_s"].median().sort_values()
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(first) + 1.5))
    first.plot.barh(ax=ax)
    ax.set_xscale("log")
    ax.set_xlabel("median first-call latency over workloads (prepare + first run, s)")
    return _save(fig, out, "first_call")


def versus_others(df: pd.DataFrame, ours: str = OURS) -> tuple[pd.DataFrame, list[str]]:
    """Per workload: our time over the best other backend's (every backend in the run but ours:
    frameworks, Keras layers, third-party and user backends), which one that was, the same ratio
    for our other backends, our fraction of the GEMM peak, traced extra memory; plus the summary
    lines (geometric mean, worst layer)."""
    ok = verified(df)
    mine = ok[ok["backend"] == ours].set_index("workload")
    others = ok[~ok["backend"].isin((OURS, *ALSO_OURS))]
    best = others.groupby("workload")["median_s"].min()
    common = mine.index.intersection(best.index)
    if common.empty:
        return pd.DataFrame(), []
    best_by = others.loc[others.groupby("workload")["median_s"].idxmin()].set_index("workload")["backend"]
    descriptors = mine.loc[common, "descriptor"]
    compute_bound = descriptors.map(_compute_bound)
    table = pd.DataFrame({
        "time / best other": (mine.loc[common, "median_s"] / best[common]).round(2),
        "best other": best_by[common],
        **{f"{other} / best other": _ratio(ok, other, best, common) for other in ALSO_OURS
           if other != ours and (ok["backend"] == other).any()},
        "fraction of peak": mine.loc[common, "fraction_of_peak"].round(2),
        "compute-bound": compute_bound,
        "extra MiB (traced)": (mine.loc[common, "traced_peak_bytes"] / 2**20).round(1),
    })
    ratios = table["time / best other"]
    lines = [f"Geometric mean of {ours} time / best other backend's time: "
             f"**{float(np.exp(np.log(ratios).mean())):.2f}** over {len(ratios)} workloads; "
             f"worst {ratios.max():.2f} ({ratios.idxmax()}).",
             f"Compute-bound layers (C/groups >= 64, kd*kh*kw >= 27): mean fraction of GEMM peak "
             f"{table.loc[compute_bound, 'fraction of peak'].mean():.2f}, least "
             f"{table.loc[compute_bound, 'fraction of peak'].min():.2f}.",
             f"At or below the best other backend's time on {int((ratios <= 1).sum())} of {len(ratios)} "
             "workloads."]
    return table, lines


def conversion_lines(df: pd.DataFrame) -> list[str]:
    """The calls whose output conversion to NumPy (timed inside each call) took OUTPUT_SHARE of
    the time or more: a layout change or copy that a timing of the compute alone would hide."""
    ok = verified(df)
    if "output_s" not in ok or ok["output_s"].isna().all():
        return []
    share = ok["output_s"] / ok["median_s"]
    heavy = ok.assign(share=share)[share >= OUTPUT_SHARE].sort_values("share", ascending=False)
    if heavy.empty:
        return []
    lines = ["## Output conversion", "", f"Calls whose conversion of the output to NumPy took "
             f"{OUTPUT_SHARE:.0%} of the call or more (it is part of every timed call):", ""]
    lines += [f"- {r.backend} on {r.workload} ({r.direction}): {r.share:.0%} "
              f"({r.output_s * 1e3:.3g} of {r.median_s * 1e3:.3g} ms)" for r in heavy.itertuples()]
    return lines + [""]


def _ratio(ok: pd.DataFrame, backend: str, best: pd.Series, common: pd.Index) -> pd.Series:
    times = ok[ok["backend"] == backend].set_index("workload")["median_s"]
    return (times.reindex(common) / best[common]).round(2)


def _compute_bound(descriptor: str) -> bool:
    spec = Conv3DSpec.from_descriptor(descriptor)
    return spec.in_channels // spec.groups >= 64 and spec.taps // (spec.in_channels // spec.groups) >= 27


def winners(df: pd.DataFrame) -> pd.DataFrame:
    ok = verified(df)
    if ok.empty:
        return pd.DataFrame()
    best = ok.loc[ok.groupby("workload")["median_s"].idxmin()].set_index("workload")
    return best[["backend", "gflops", "fraction_of_peak"]].rename(columns={"backend": "fastest"})


def _timing_line(meta: dict) -> str:
    if "min_seconds" not in meta:
        return "Times are medians."
    rounds = (f", in {meta['rounds']} rounds with the backends taking turns (a change in the machine's "
              "load falls on all of them alike)") if meta.get("rounds", 1) > 1 else ""
    return (f"Times are medians of at least {meta['min_repeats']} runs and {meta['min_seconds']:g} s of "
            f"runs{rounds}, each timing started once every worker process was idle.")


def _machine_lines(meta: dict) -> list[str]:
    """The CPU and what numba compiled for: speed figures hold per machine, not for all."""
    env = meta.get("environment", {})
    if "cpu" not in env:
        return []
    line = (f"Machine: {env['cpu']}, {env.get('cores', '?')} cores ({env.get('cpu_id', '')}; "
            f"{', '.join(f for f in env.get('cpu_flags', []) if f in ('avx2', 'avx512f', 'amx_tile'))}).")
    target = env.get("numba_target")
    if target:
        line += (f" numba compiled for LLVM target {target['cpu_name']} with {target['vector_bits']}-bit "
                 f"vectors ({target['registers']} registers; {target['origin']}), threading layer "
                 f"{env.get('numba_threading_layer', '?')}.")
    return [line, ""]


def _wide_peak_lines(meta: dict) -> list[str]:
    wide = meta.get("wide_peak_gflops")
    if not wide:
        return []
    pinned = meta.get("environment", {}).get("openblas_coretype")
    return [f"This machine's environment pins NumPy's OpenBLAS to {pinned} kernels (AVX2); with its "
            f"AVX-512 kernels (OPENBLAS_CORETYPE=SkylakeX, measured in a subprocess) the same GEMM runs "
            f"at **{wide:.1f} GFLOP/s**, the yardstick for kernels that use AVX-512. Fractions of peak "
            f"below are of the first figure: divide them by {wide / meta['peak_gflops']:.2f} for the second.",
            ""]


def dtype_section(df: pd.DataFrame, dtypes: list[str]) -> list[str]:
    """Each further dtype against the first, per direction: verified median time in it divided by
    the median time in the first (same run, same layer, same backend), and the geometric mean."""
    ok, first = verified(df), dtypes[0]
    lines = [f"## Other dtypes against {first}", "",
             f"Median time per call in each dtype divided by the median time in {first}, "
             "the same layer and backend in the same run (below 1: faster). Rows with either "
             "time missing (unsupported, failed) are left out.", ""]
    for dtype in dtypes[1:]:
        for direction in ("forward", "backward"):
            times = [ok[(ok["dtype"] == d) & (ok["direction"] == direction)].pivot_table(
                index="workload", columns="backend", values="median_s") for d in (dtype, first)]
            ratio = (times[0] / times[1]).dropna(how="all").dropna(axis=1, how="all")
            if ratio.empty:
                continue
            ratio.loc["geometric mean"] = np.exp(np.log(ratio).mean())
            lines += [f"### {dtype} / {first}, {direction}", "", markdown_table(ratio.round(2)), ""]
    return lines


def write_report(out: Path, baseline: str = "best-framework") -> Path:
    """summary.md/html and the plots, drawn from out/results.csv and out/meta.json: the tables
    and plots of the first dtype, then the other dtypes' times against it."""
    out = Path(out)
    everything, meta = load_results(out / "results.csv"), json.loads((out / "meta.json").read_text())
    dtypes = meta.get("dtypes") or [meta.get("dtype", "float32")]
    compared = everything
    if "dtype" in everything and len(dtypes) > 1:
        everything = everything[everything["dtype"] == dtypes[0]]
    df = everything[everything["direction"] == "forward"]
    peak_label = f"fraction of measured GEMM peak ({meta['peak_gflops']:.0f} GFLOP/s)"
    images = (_bars(df, "gflops", "GFLOP/s (dense count, median)", out, "gflops")
              + _bars(df, "fraction_of_peak", peak_label, out, "peak_fraction")
              + plot_scaling(df, out) + plot_speedup(df, out, baseline) + plot_first_call(df, out))
    gflops = verified(df).pivot_table(index="workload", columns="backend", values="gflops").round(1)
    fraction = verified(df).pivot_table(index="workload", columns="backend",
                                        values="fraction_of_peak").round(2)
    lines = ["# Benchmark report", "",
             *([f"Tables and plots: {dtypes[0]}; {', '.join(dtypes[1:])} against it at the end.", ""]
               if len(dtypes) > 1 else []),
             *([f"**INCOMPLETE: {meta['interrupted']}.**", ""] if meta.get("interrupted") else []),
             f"`{meta.get('command', '')}`", "",
             f"Machine GEMM peak (float32, NumPy BLAS, {meta['threads']} threads): "
             f"**{meta['peak_gflops']:.1f} GFLOP/s**. {_timing_line(meta)} Every timed output was "
             "verified on the same run (VERIFICATION.md bound).", "", *_machine_lines(meta),
             *_wide_peak_lines(meta),
             "## GFLOP/s", "", markdown_table(gflops), "",
             "## Fraction of GEMM peak", "", markdown_table(fraction), "",
             "## Fastest per workload", "", markdown_table(winners(df)), ""]
    versus, versus_lines = versus_others(df)
    if len(versus) and meta.get("wide_peak_gflops"):
        mean_fraction = versus.loc[versus["compute-bound"], "fraction of peak"].mean()
        scale = meta["peak_gflops"] / meta["wide_peak_gflops"]
        versus_lines.append(f"Of the AVX-512 GEMM peak: {mean_fraction * scale:.2f}.")
    if len(versus):
        lines += [f"## {OURS} against the best other backend", "", *versus_lines, "",
                  markdown_table(versus), ""]
    lines += conversion_lines(everything)
    lines += [f"![{name}]({name})" for name in images if name.endswith(".png")]
    lines += ["", *backward_section(everything)]
    if len(dtypes) > 1:
        lines += ["", *dtype_section(compared, dtypes)]
    problems = compared[~compared["status"].isin(VERIFIED_VALUES)][
        ["workload", "direction", *(["dtype"] if len(dtypes) > 1 else []), "backend", "status", "message"]]
    if len(problems):
        lines += ["", "## Not timed", "", markdown_table(problems.set_index("workload"))]
    notes = df[df["note"].fillna("") != ""][["workload", "note"]].drop_duplicates()
    if len(notes):
        lines += ["", "## Workload notes", "", markdown_table(notes.set_index("workload"))]
    lines += ["", "## Environment", "", "```", json.dumps(meta.get("environment", {}), indent=1), "```", ""]
    atomic_write(out / "summary.md", "\n".join(lines))
    backward = backward_ms(everything)
    html = ["<html><head><meta charset='utf-8'><title>Benchmark report</title>", STYLE, "</head><body>",
            "<h1>Benchmark report</h1>",
            f"<p>GEMM peak {meta['peak_gflops']:.1f} GFLOP/s; details in <a href='summary.md'>summary.md"
            "</a>, every row in <a href='results.csv'>results.csv</a>.</p>",
            *(["<h2>Not timed</h2>", problems.to_html(index=False)] if len(problems) else []),
            "<h2>GFLOP/s (forward)</h2>", gflops.to_html(), "<h2>Fraction of peak (forward)</h2>",
            fraction.to_html(), "<h2>Fastest per workload (forward)</h2>", winners(df).to_html(),
            *(["<h2>Backward: median ms per call</h2>", backward.to_html()] if len(backward) else [])]
    html += [f"<h2>{name.removesuffix('.svg')}</h2><img src='{name}' alt='{name}'>" for name in images
             if name.endswith(".svg")]
    atomic_write(out / "summary.html", "\n".join(html + ["</body></html>"]))
    return out / "summary.md"


def compare(before: Path, after: Path, out: Path) -> Path:
    """Ratios after/before of matching rows (workload, direction, backend, dtype, threads), with a
    plot."""
    keys = ["workload", "direction", "backend", "dtype", "threads"]
    a, b = verified(load_results(before)), verified(load_results(after))
    merged = a.merge(b, on=keys, suffixes=("_before", "_after"))
    merged["speedup"] = merged["median_s_before"] / merged["median_s_after"]
    out.mkdir(parents=True, exist_ok=True)
    columns = keys + ["median_s_before", "median_s_after", "speedup"]
    atomic_write(out / "compare.csv", merged[columns].to_csv(index=False))
    merged["workload"] = merged["workload"].where(merged["direction"] == "forward",
                                                  merged["workload"] + " (backward)")
    images = _bars(merged.assign(status=str(Status.PASS)), "speedup",
                   f"speed-up of {after.name} over {before.name}", out, "compare")
    table = merged.pivot_table(index="workload", columns="backend", values="speedup").round(2)
    atomic_write(out / "compare.md", "\n".join([
        f"# {after} vs {before}", "",
        f"Geometric mean speed-up: {np.exp(np.log(merged['speedup']).mean()):.2f}",
        "", markdown_table(table), "", *[f"![compare]({n})" for n in images if n.endswith(".png")], ""]))
    return out / "compare.md"


def main(argv: list[str] | None = None) -> int:
    print(write_report(Path((argv or sys.argv[1:] or ["reports/bench"])[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
