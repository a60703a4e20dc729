"""The conformance report: a tidy CSV (one record per backend and case, gzip), JSON (meta, counts
and every record that did not pass), then, drawn from those saved files only, a Markdown/HTML
summary and an error/bound plot.

Every file is written to a temporary name and renamed into place, so an interrupted run never
leaves a half-written report. `python -m conformance.report DIR` redraws from DIR's files.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from conformance import coverage
from conformance.cases import Case
from conformance.judge import CANDIDATES
from conformance.known_deviations import DEVIATIONS, known_deviation
from conformance.layer_check import ARGUMENTS
from reference.activations import ACTIVATIONS
from reference.formats import sum_bits
from reference.spec import Conv3DSpec
from runtime.environment import environment
from runtime.files import atomic_write, save_figure
from runtime.records import FAILING_VALUES, VERIFIED_VALUES, Record, Status
from runtime.tables import frame, markdown_table, read_csv, save_csv

FEATURES = ("padding", "stride", "dilation", "groups", "data_format", "dtype", "activation_kind")


def _activation_kind(name: str | None) -> str:
    info = ACTIVATIONS.get(name or "linear")
    if info.exact_ops:
        return "exact operations"
    return "axis (softmax family)" if info.axis else "rounded elementwise"


def _features(descriptor: str) -> dict:
    """The feature values of a case, read from its descriptor."""
    spec = Conv3DSpec.from_descriptor(descriptor)
    return dict(
        padding=spec.padding,
        stride="strided" if max(spec.strides) > 1 else "unit",
        dilation="dilated" if max(spec.dilation_rate) > 1 else "none",
        groups=("depthwise" if spec.groups == spec.in_channels and spec.groups > 1
                else "grouped" if spec.groups > 1 else "dense"),
        data_format=spec.data_format, activation_kind=_activation_kind(spec.activation))


def _strided(df: pd.DataFrame) -> pd.Series:
    """Whether each row's inputs were non-contiguous (tables from before the column: no)."""
    column = df["strided"] if "strided" in df else pd.Series(False, index=df.index)
    return column.fillna(False).astype(bool)


def feature_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """backend x feature value -> 'pass/fail/unsupported' counts, plus special/invalid/determinism."""
    cells: dict[tuple, dict] = {}
    valid = df[~df["check"].isin(["invalid", "property"]) & df["descriptor"].fillna("").ne("")]
    valid = pd.concat([valid, pd.DataFrame(list(valid["descriptor"].map(_features)), index=valid.index)],
                      axis=1)
    groups = [(f"{feature}={value}", part) for feature in FEATURES if feature in valid
              for value, part in valid.groupby(feature, dropna=True)]
    strided = _strided(valid)
    groups += [("special values", valid[valid["data"].isin(["special", "large", "subnormal"])]),
               ("non-contiguous inputs", valid[strided]),
               ("invalid configs", df[df["check"] == "invalid"]),
               ("properties", df[df["check"] == "property"])]
    for label, part in groups:
        for backend, rows in part.groupby("backend"):
            status = rows["status"]
            ok = status.isin(VERIFIED_VALUES).sum()
            bad = status.isin(FAILING_VALUES).sum()
            known = (status == Status.KNOWN_FAIL).sum()
            unsupported = (status == Status.UNSUPPORTED).sum()
            cell = f"{ok}/{bad}/{unsupported}" + (f" ({known} known)" if known else "")
            cells.setdefault(label, {})[backend] = cell
    for backend, rows in df.groupby("backend"):
        cells.setdefault("determinism (nondeterministic cases)", {})[backend] = str(
            (rows["status"] == Status.NONDETERMINISTIC).sum())
    return pd.DataFrame(cells).T.fillna("")


def layer_table(df: pd.DataFrame) -> pd.DataFrame:
    """The layer check: seed argument x backend -> 'verified/failing' rows (+ known), in the order
    of conformance.layer_check.ARGUMENTS. Empty without layer rows."""
    rows = df[(df["check"] == "layer") & df["argument"].fillna("").ne("")] if "argument" in df else df[:0]
    cells: dict[str, dict] = {}
    for (argument, backend), part in rows.groupby(["argument", "backend"]):
        status = part["status"]
        known = (status == Status.KNOWN_FAIL).sum()
        cells.setdefault(backend, {})[argument] = (
            f"{status.isin(VERIFIED_VALUES).sum()}/{status.isin(FAILING_VALUES).sum()}"
            + (f" ({known} known)" if known else ""))
    table = pd.DataFrame(cells).rename_axis("argument")
    return table.reindex([a for a in ARGUMENTS if a in table.index]) if len(table) else table


def effective_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per backend and dtype (forward, realistic data): the declared precision and the effective
    one, the least precise of the per-case estimates (conformance.judge.effective_precision), each
    with the bits its sums keep (reference.formats.sum_bits); `below_declared` counts the cases
    whose errors only fewer bits than declared admit; KNOWN-FAIL rows are left out. Empty without
    estimates."""
    if "effective" not in df:
        return df[:0]
    # a known deviation's error is a named bug, not the precision the backend computes in
    rows = df[(df["direction"] == "forward") & df["effective"].fillna("").ne("")
              & df["status"].ne(str(Status.KNOWN_FAIL))]
    table = []
    for (backend, dtype), part in rows.groupby(["backend", "dtype"]):
        declared = part["precision"].mode().iloc[0]
        bits = [sum_bits(e, dtype) if e != "none" else 0 for e in part["effective"]]
        worst = part["effective"].iloc[bits.index(min(bits))]
        declared_bits = sum_bits(declared, dtype)
        table.append(dict(backend=f"{backend} {dtype}", declared=f"{declared} ({declared_bits} bits)",
                          effective=f"{worst} ({min(bits)} bits)" if worst != "none" else "below bfloat16",
                          cases=len(part), below_declared=sum(b < declared_bits for b in bits)))
    return pd.DataFrame(table).set_index("backend") if table else df[:0]


HOLES_LISTED = 12  # per backend in summary.md, the first in sorted order


def _ran_cases(df: pd.DataFrame) -> pd.DataFrame:
    """Valid cases that ran (not UNSUPPORTED), with their parameter classes and §4b regions."""
    ran = df[~df["check"].isin(["invalid", "property"]) & df["descriptor"].fillna("").ne("")
             & (df["status"] != Status.UNSUPPORTED)]
    specs = [Conv3DSpec.from_descriptor(d) for d in ran["descriptor"]]
    return ran.assign(classes=[coverage.classes(s, t, v)
                               for s, t, v in zip(specs, ran["dtype"], _strided(ran))],
                      regions=[coverage.regions(s) for s in specs],
                      passed=ran["status"].isin(VERIFIED_VALUES))


def coverage_table(ran: pd.DataFrame) -> pd.DataFrame:
    """factor=class x backend -> 'passed/ran'; a class no case of a backend ran shows '0/0'."""
    cells: dict[str, dict[str, str]] = {}
    for backend, rows in ran.groupby("backend"):
        counts: dict[str, list[int]] = {f"{f}={c}": [0, 0] for f, c in _all_classes(ran)}
        for cls, ok in zip(rows["classes"], rows["passed"]):
            for factor, value in cls.items():
                counts[f"{factor}={value}"][0] += bool(ok)
                counts[f"{factor}={value}"][1] += 1
        cells[backend] = {k: f"{p}/{n}" for k, (p, n) in counts.items()}
    return pd.DataFrame(cells)


def _all_classes(ran: pd.DataFrame) -> list[tuple[str, str]]:
    """Every (factor, class) the covering array can reach, and any other that ran."""
    reach = {pair for c in coverage.reachable_combinations() if len(c) == 4 for pair in (c[:2], c[2:])}
    reach |= {(f, v) for cls in ran["classes"] for f, v in cls.items()}
    order = {f: i for i, f in enumerate(coverage.FACTORS)}
    return sorted(reach, key=lambda fc: (order.get(fc[0], 99), fc[1]))


def region_table(ran: pd.DataFrame) -> pd.DataFrame:
    """§4b region x backend -> 'passed/ran'."""
    cells = {}
    for backend, rows in ran.groupby("backend"):
        cells[backend] = {region: "{}/{}".format(
            sum(ok for r, ok in zip(rows["regions"], rows["passed"]) if region in r),
            sum(region in r for r in rows["regions"])) for region in coverage.REGIONS}
    return pd.DataFrame(cells)


def coverage_holes(ran: pd.DataFrame, meta: dict) -> dict[str, list[str]]:
    """backend -> the reachable combinations (pairs, innermost triples) none of its cases held."""
    dtypes = {i["name"]: tuple(i.get("dtypes") or ()) for i in meta.get("backend_info") or []}
    holes = {}
    for backend, rows in ran.groupby("backend"):
        declared = dtypes.get(backend) or tuple(sorted({c["dtype"] for c in rows["classes"]}))
        held = set().union(*(coverage.combinations_of(c) for c in rows["classes"]))
        missing = coverage.reachable_combinations(declared) - held
        holes[backend] = sorted(" & ".join(f"{c[i]}={c[i + 1]}" for i in range(0, len(c), 2))
                                for c in missing)
    return holes


def _row_labels(df: pd.DataFrame) -> pd.Series:
    """The backend, with " (backward)" for gradient rows."""
    backward = df["direction"].eq("backward") if "direction" in df else pd.Series(False, index=df.index)
    return df["backend"].where(~backward, df["backend"] + " (backward)")


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Statuses per backend and direction, the worst passing error/bound and the check seconds."""
    df = df.assign(row=_row_labels(df))
    counts = df.pivot_table(index="row", columns="status", values="case", aggfunc="count",
                            fill_value=0)
    counts.index.name = "backend"
    counts = counts.reindex(columns=[str(s) for s in Status if str(s) in counts.columns])
    counts["cases"] = counts.sum(axis=1)
    if "max_ratio" in df:
        finite = df[df["status"].isin(VERIFIED_VALUES)]
        counts["worst error/bound (passing)"] = finite.groupby("row")["max_ratio"].max()
    if "check_seconds" in df:
        per_check = df.groupby(["row", "check"])["check_seconds"].first()
        counts["seconds"] = per_check.groupby("row").sum().round(1)
    return counts


def plot_ratios(df: pd.DataFrame, out: Path) -> list[str]:
    """Distribution of the worst error/bound per case, per backend (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = df[df["status"].isin([*VERIFIED_VALUES, str(Status.FAIL)]) & (df.get("data") != "exact")]
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
    names = save_figure(fig, out, "error_bound")
    plt.close(fig)
    return names


@dataclass(frozen=True)
class Coverage:
    """The coverage part of a report: classes, §4b regions and holes per backend."""

    classes: pd.DataFrame
    regions: pd.DataFrame
    holes: dict[str, list[str]]

    @classmethod
    def of(cls, df: pd.DataFrame, meta: dict) -> Coverage:
        ran = _ran_cases(df)
        if ran.empty:
            return cls(pd.DataFrame(), pd.DataFrame(), {})
        return cls(coverage_table(ran), region_table(ran), coverage_holes(ran, meta))

    def markdown(self) -> list[str]:
        if self.classes.empty:
            return []
        lines = ["## Coverage: parameter classes (passed / ran)", "",
                 "Classes of conformance/coverage.py; `0/0` is a hole: no case of that class ran.", "",
                 markdown_table(self.classes), "", "## Coverage: regions of VERIFICATION.md §4b "
                 "(passed / ran)", "", markdown_table(self.regions), "",
                 "## Coverage holes (pairs of classes, and innermost-axis triples with the batch, "
                 "that a valid case can hold and no case held)", ""]
        for backend, holes in self.holes.items():
            shown = "; ".join(holes[:HOLES_LISTED]) + (" ..." if len(holes) > HOLES_LISTED else "")
            lines.append(f"- **{backend}**: {len(holes)}" + (f": {shown}" if holes else ""))
        return lines + [""]

    def html(self) -> list[str]:
        if self.classes.empty:
            return []
        holes = "".join(f"<li>{b}: {len(h)}</li>" for b, h in self.holes.items())
        return ["<h2>Coverage: parameter classes (passed / ran)</h2>", self.classes.to_html(),
                "<h2>Coverage: regions of VERIFICATION.md §4b</h2>", self.regions.to_html(),
                f"<h2>Coverage holes</h2><ul>{holes}</ul>"]


def _markdown(df: pd.DataFrame, meta: dict, images: list[str], cover: Coverage) -> str:
    lines = ["# Conformance report", "", *([f"**INCOMPLETE: {meta['interrupted']}.**", ""]
                                          if meta.get("interrupted") else []),
             f"Profile `{meta.get('profile')}`, seed {meta.get('seed')}, "
             f"{len(df)} cases, {meta.get('seconds', 0):.0f} s wall time.", "",
             *([f"{meta['reclassified']} failing cases match entries of known_deviations.py added "
                "after the run, and are shown as KNOWN-FAIL.", ""] if meta.get("reclassified") else []),
             "## Status per backend", "", markdown_table(summary_table(df)), "",
             "## Backend x feature (pass / fail / unsupported)", "",
             markdown_table(feature_matrix(df)), "", *cover.markdown()]
    layer = layer_table(df)
    if len(layer):
        lines += ["## The whole Keras layer: rows per seed argument (verified / failing)", "",
                  markdown_table(layer), ""]
    effective = effective_table(df)
    if len(effective):
        lines += ["## Effective precision (forward, realistic data)", "",
                  "The most precise candidate accumulation (" + ", ".join(CANDIDATES) + ") whose "
                  "bound admits every error a backend made, least precise over its cases, next to "
                  "what it declared; `below_declared` counts cases whose errors only a coarser "
                  "precision than the declared one admits.", "", markdown_table(effective), ""]
    if images:
        lines += ["## Error / bound distribution", "", f"![error/bound]({images[0]})", ""]
    failing = df[df["status"].isin(FAILING_VALUES)]
    lines += ["## Failures", ""]
    if failing.empty:
        lines += ["None.", ""]
    for _, row in failing.iterrows():
        shrunk = " (shrunk)" if bool(row.get("shrunk")) else ""
        first_line = str(row["message"]).splitlines()[0][:300] if row["message"] else ""
        lines += [f"- **{row['backend']}** {row['status']}{shrunk}: {first_line}",
                  f"  `{row['repro']}`"]
    known = df[df["status"] == Status.KNOWN_FAIL]
    if len(known):
        lines += ["", "## Known deviations (conformance/known_deviations.py): real framework "
                      "discrepancies, reported, not gating", ""]
        for deviation in DEVIATIONS:
            matching = known[known["message"].str.startswith(f"known deviation: {deviation.reason}")]
            for backend, rows in matching.groupby("backend"):
                lines += [f"- **{backend}** ({len(rows)} cases): {deviation.reason}",
                          f"  `{rows.iloc[0]['repro']}`"]
    unsupported = df[df["status"] == Status.UNSUPPORTED].groupby(["backend", "message"]).size()
    if len(unsupported):
        lines += ["", "## Unsupported (declared by the backend)", ""]
        lines += [f"- {b}: {m} ({n} cases)" for (b, m), n in unsupported.items()]
    lines += ["", *_backend_lines(meta), "## Environment", "", "```",
              json.dumps(meta.get("environment", {}), indent=1), "```", ""]
    return "\n".join(lines)


def _backend_lines(meta: dict) -> list[str]:
    """What each backend declared: its libraries' versions, availability, dtypes with their compute
    precision, notes."""
    infos = meta.get("backend_info") or []
    if not infos:
        return []
    lines = ["## Backends (as declared)", ""]
    for info in sorted(infos, key=lambda i: i["name"]):
        precision = ", ".join(f"{d} computed as {p}" if d != p else d
                              for d, p in (info.get("precision") or {}).items())
        declared = f"; {precision}" if precision else ""
        versions = ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())
        lines.append(f"- **{info['name']}**" + (f" ({versions})" if versions else "")
                     + f": {info['availability']}{declared}")
        lines += [f"  - {note}" for note in info.get("notes") or ()]
    return lines + [""]


def save_results(records: Iterable[Record], out: Path, meta: dict) -> None:
    """Save a run's tables under `out`: results.csv.gz (every record) and results.json (meta with
    the environment, counts per backend, and every record that did not pass)."""
    out = Path(out)
    df = frame(records)
    meta = dict(meta, environment=meta.get("environment") or environment())
    save_csv(df, out / "results.csv.gz")
    notable = df[~df["status"].isin(VERIFIED_VALUES)]
    counts = summary_table(df).reset_index().to_dict(orient="records") if len(df) else []
    atomic_write(out / "results.json", json.dumps(dict(
        meta=meta, counts=counts, not_passed=json.loads(notable.to_json(orient="records"))),
        indent=1, default=str))


def apply_known_deviations(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Failing rows of valid cases that match an entry of known_deviations.py now (an entry added
    after the run) as KNOWN-FAIL, as the run would have recorded them; and how many changed."""
    failing = df["status"].isin(FAILING_VALUES) & df["descriptor"].fillna("").ne("") & \
        ~df["check"].isin(["invalid", "property"])
    df = df.copy()
    changed = 0
    for i in df.index[failing]:
        row = df.loc[i]
        case = Case(Conv3DSpec.from_descriptor(row["descriptor"]), row["dtype"], row["data"],
                    int(row["seed"]), row["check"], bool(row.get("strided", False)),
                    row.get("direction") or "forward")
        deviation = known_deviation(row["backend"], case)
        if deviation:
            df.loc[i, "message"] = f"known deviation: {deviation.reason} [{row['status']}: {row['message']}]"
            df.loc[i, "status"] = str(Status.KNOWN_FAIL)
            changed += 1
    return df, changed


def write_report(out: Path) -> Path:
    """Draw summary.md/html and the plot from the tables saved under `out`; returns summary.md."""
    out = Path(out)
    df, reclassified = apply_known_deviations(read_csv(out / "results.csv.gz"))
    meta = json.loads((out / "results.json").read_text())["meta"] | dict(reclassified=reclassified)
    images = plot_ratios(df, out) if len(df) else []
    cover = Coverage.of(df, meta)
    if not cover.classes.empty:
        save_csv(cover.classes.rename_axis("class").reset_index(), out / "coverage.csv")
    atomic_write(out / "summary.md", _markdown(df, meta, images, cover))
    atomic_write(out / "summary.html", _html(df, meta, images, cover))
    return out / "summary.md"


STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
td.pass { background: #d9f2d9; } td.fail { background: #f7c6c6; font-weight: bold; }
td.known { background: #fde8b8; } td.unsupported { background: #e8e8e8; color: #666; }
.incomplete { color: #a00; }
</style>"""


def _cell_class(cell: str) -> str:
    """A feature-matrix cell ('ok/bad/unsupported (k known)', or a count of nondeterministic
    cases) as a colour class."""
    counts = [int(v) for v in cell.split(" ")[0].split("/")] if cell else []
    if len(counts) == 1:
        return "fail" if counts[0] else "pass"
    if len(counts) != 3:
        return ""
    ok, bad, unsupported = counts
    return "fail" if bad else "known" if "known" in cell else "pass" if ok else \
        "unsupported" if unsupported else ""


def _matrix_html(matrix: pd.DataFrame) -> str:
    """The backend x feature matrix as a table coloured by status."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in matrix.columns)
    rows = ["<table><tr><th>feature</th>" + head + "</tr>"]
    for label, row in matrix.iterrows():
        cells = "".join(f"<td class='{_cell_class(str(v))}'>{html.escape(str(v))}</td>" for v in row)
        rows.append(f"<tr><th>{html.escape(str(label))}</th>{cells}</tr>")
    return "\n".join(rows + ["</table>"])


def _html(df: pd.DataFrame, meta: dict, images: list[str], cover: Coverage) -> str:
    """summary.html: failures first, then the status table, the coloured backend x feature matrix,
    coverage and every plot inline."""
    failing = df[df["status"].isin(FAILING_VALUES)]
    parts = ["<html><head><meta charset='utf-8'><title>Conformance report</title>", STYLE,
             "</head><body>", "<h1>Conformance report</h1>",
             *([f"<p class='incomplete'><strong>INCOMPLETE: {html.escape(meta['interrupted'])}."
                "</strong></p>"] if meta.get("interrupted") else []),
             f"<p>Profile {meta.get('profile')}, seed {meta.get('seed')}, {len(df)} cases; "
             "details in <a href='summary.md'>summary.md</a>, every case in "
             "<a href='results.csv.gz'>results.csv.gz</a>.</p>",
             "<h2>Failures</h2>" + (failing[["backend", "direction", "status", "message", "repro"]]
                                    .to_html(index=False) if len(failing) else "<p>None.</p>"),
             "<h2>Status per backend</h2>", summary_table(df).to_html(),
             "<h2>Backend x feature (verified / failing / unsupported)</h2>",
             _matrix_html(feature_matrix(df)), *cover.html()]
    layer = layer_table(df)
    if len(layer):
        parts += ["<h2>The whole Keras layer: rows per seed argument (verified / failing)</h2>",
                  _matrix_html(layer)]
    effective = effective_table(df)
    if len(effective):
        parts += ["<h2>Effective precision (forward, realistic data)</h2>", effective.to_html()]
    parts += [f"<h2>Error / bound</h2><img src='{name}' alt='{name}'>" for name in images
              if name.endswith(".svg")]
    return "\n".join(parts + ["</body></html>"])


def main(argv: list[str] | None = None) -> int:
    print(write_report(Path((argv or sys.argv[1:] or ["reports/conformance"])[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
