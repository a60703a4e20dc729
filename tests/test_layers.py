"""Imports point one way: reference -> backends -> runtime -> conformance -> bench.

Every module of the five packages is read with `ast`; its imports, and every string that names a
module (importlib.import_module arguments, "module:attr" targets, importlib.resources packages,
code handed to a subprocess), must name a package at its own layer or below.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("reference", "backends", "runtime", "conformance", "bench")
_PACKAGES = "|".join(LAYERS)
_IMPORT_IN_CODE = re.compile(rf"\b(?:from|import)\s+((?:{_PACKAGES})(?:\.\w+)*)\b")  # code in a string
_TARGET = re.compile(rf"((?:{_PACKAGES})(?:\.\w+)+)(?::[\w.]+)?")  # "pkg.module" or "pkg.module:attr"


def imported_packages(source: str) -> set[str]:
    """The top-level project packages a module's source imports or names in a string."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found |= set(_IMPORT_IN_CODE.findall(node.value))
            target = _TARGET.fullmatch(node.value.strip())
            if target:
                found.add(target.group(1))
    return {name.split(".")[0] for name in found} & set(LAYERS)


def _modules() -> list[Path]:
    return sorted(p for layer in LAYERS for p in (ROOT / layer).rglob("*.py") if "test_" not in p.name)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_upward(path: Path):
    layer = LAYERS.index(path.relative_to(ROOT).parts[0])
    upward = sorted(p for p in imported_packages(path.read_text()) if LAYERS.index(p) > layer)
    assert not upward, f"{path.relative_to(ROOT)} ({LAYERS[layer]}) imports {upward}, above it"


def test_the_walker_sees_every_kind_of_import():
    source = '''
import bench.run
from conformance import engine
importlib.import_module("runtime.worker")
TARGET = "backends.numpy_im2col:NumpyIm2col"
code = "from bench.timing import gemm_peak; print(1)"
resources.files("runtime.shapes")
message = "python -m conformance --backend x"
'''
    assert imported_packages(source) == {"bench", "conformance", "runtime", "backends"}
