"""Which backends a run names, expanded and checked without importing a backend in the driver.

Naming a module (`module:attr`) runs its code, like any plugin: it is imported once in a throwaway
worker process, so a module that exits, aborts or hangs while importing is reported, not obeyed.
"""

from __future__ import annotations

import functools
import importlib.util
import shlex
import sys
from pathlib import Path

from backends.registry import registered_names
from runtime.worker import LoadError, Worker, availability_of


def resolve_backends(names: list[str], timeout_s: float = 300.0) -> list[str]:
    """Expand 'all' (every available registered backend, each named on stderr) and check the rest:
    registered names as they are, `module:attr` by loading it in a throwaway worker within
    `timeout_s`. ValueError names what is wrong. Duplicates are dropped, the order kept."""
    known = registered_names()
    resolved: list[str] = []
    for name in names:
        if name == "all":
            try:
                found = availability_of(known, timeout_s)
            except LoadError as exc:
                raise ValueError(str(exc)) from exc
            for known_name, reason in found.items():
                print(f"  {known_name}: {reason}", file=sys.stderr)
            resolved += [n for n, reason in found.items() if reason == "available"]
        elif name in known:
            resolved.append(name)
        elif ":" in name:
            try:
                Worker(name, timeout_s=timeout_s, load_timeout_s=timeout_s).close()
            except LoadError as exc:
                raise ValueError(f"backend {name!r} cannot be loaded: {exc}") from exc
            resolved.append(name)
        else:
            raise ValueError(f"unknown backend {name!r}; known: {', '.join(known)}, "
                             "or give 'module:attr' for your own")
    return list(dict.fromkeys(resolved))


REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def pythonpath_prefix(name: str) -> str:
    """"PYTHONPATH=DIR " when backend `name` is a `module:attr` whose top-level module lies outside
    the repository root and outside any site-packages, so that a repro line run from the root
    finds it; "" otherwise. Finding a top-level module does not run it."""
    if ":" not in name:
        return ""
    try:
        spec = importlib.util.find_spec(name.split(":", 1)[0].split(".", 1)[0])
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return ""
    origin = Path(spec.origin).resolve()
    folder = origin.parent.parent if spec.submodule_search_locations else origin.parent
    if folder == REPO_ROOT or {"site-packages", "dist-packages"} & set(folder.parts):
        return ""
    return f"PYTHONPATH={shlex.quote(str(folder))} "
