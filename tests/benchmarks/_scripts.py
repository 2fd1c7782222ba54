"""Load a benchmark script as a module, by path: benchmarks/ is not a package and must not go on sys.path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(script: str, name: str | None = None, register: bool = False) -> ModuleType:
    """The module of ``benchmarks/<script>``.

    Args:
        script: the file name, e.g. ``"compare_methods.py"``.
        name: the module's name; the file's stem by default.
        register: put it in ``sys.modules`` before running it (a dataclass in it looks its module up there).
    """
    name = name or Path(script).stem
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / script)
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
