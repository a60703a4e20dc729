"""Writing results so that an interrupted run never leaves a half-written file: every file is
written to a temporary name beside it and renamed into place."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def save_figure(fig, out: Path, stem: str, **savefig) -> list[str]:
    """`fig` as out/stem.png and out/stem.svg (each renamed into place); their file names."""
    names = []
    for ext in ("png", "svg"):
        tmp = out / f"{stem}.tmp.{ext}"
        fig.savefig(tmp, dpi=110, **savefig)
        os.replace(tmp, out / f"{stem}.{ext}")
        names.append(f"{stem}.{ext}")
    return names
