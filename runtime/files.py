"""Writing results so that neither an interruption nor a second run can spoil them.

Every file is written to a fresh temporary name in its own directory (created exclusively, so a
link planted there is never followed) and renamed into place. A run holds its report directory's
lock for its whole length, so two runs on one directory cannot interleave their files.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_replace(path: Path, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a new, exclusively created file beside `path`, then rename it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    raw = data.encode() if isinstance(data, str) else data
    atomic_replace(path, lambda tmp: Path(tmp).write_bytes(raw))


def save_figure(fig, out: Path, stem: str, **savefig) -> list[str]:
    """`fig` as out/stem.png and out/stem.svg (each renamed into place); their file names."""
    names = []
    for ext in ("png", "svg"):
        atomic_replace(Path(out) / f"{stem}.{ext}",
                       lambda tmp, ext=ext: fig.savefig(tmp, dpi=110, format=ext, **savefig))
        names.append(f"{stem}.{ext}")
    return names


class ReportDirError(RuntimeError):
    """The report directory cannot be used: not a directory, not writable, or in use."""


class ReportDir:
    """A report directory, created and probed for writing up front, locked while a run uses it.

    `with ReportDir(path):` raises ReportDirError at once (before any work) when the path is a
    file, is not writable, or another run holds its lock.
    """

    LOCK = ".lock"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def __enter__(self) -> ReportDir:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path / ".write-probe", b"")
            (self.path / ".write-probe").unlink()
            fd = os.open(self.path / self.LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise ReportDirError(f"cannot write reports into {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ReportDirError(f"report directory {self.path} is in use by another run "
                                 f"(pid {holder}); choose another --report directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
