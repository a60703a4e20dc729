"""Tables of records: saved as CSV, read back for reports, printed as Markdown."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

import pandas as pd

from runtime.files import atomic_replace
from runtime.records import Record

#: The columns every record table has, even an empty one.
RECORD_COLUMNS = tuple(f.name for f in fields(Record) if f.name not in ("worst", "timing"))


def frame(records: Iterable[Record]) -> pd.DataFrame:
    df = pd.DataFrame([r.to_row() for r in records])
    return df.reindex(columns=list(dict.fromkeys([*RECORD_COLUMNS, *df.columns])))


def save_csv(df: pd.DataFrame, path: Path) -> None:
    """The table as CSV (gzip when the name ends in .gz), written beside and renamed into place."""
    compression = {"method": "gzip", "mtime": 0} if Path(path).suffix == ".gz" else None
    atomic_replace(path, lambda tmp: df.to_csv(tmp, index=False, compression=compression))


#: The text columns of a record table (empty cells are "", not NaN).
TEXT_COLUMNS = tuple(f.name for f in fields(Record) if f.type == "str")


def read_csv(path: Path) -> pd.DataFrame:
    """A saved table of records, its text columns as text ("" where empty)."""
    header = pd.read_csv(path, nrows=0).columns
    return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS if c in header}, keep_default_na=False,
                       na_values={c: [""] for c in header if c not in TEXT_COLUMNS})


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of `df`, index first."""
    def fmt(value) -> str:
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    header = [str(df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([fmt(i)] + [fmt(v) for v in row]) + " |"
              for i, row in zip(df.index, df.itertuples(index=False))]
    return "\n".join(lines)
