"""Load a benchmark script as a module, by path: benchmarks/ is not a package and must not go on sys.path."""

from __future__ import annotations

import importlib.util
import subprocess
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


def run_probe(script: str, *options: str) -> subprocess.CompletedProcess:
    """Run ``benchmarks/probes/<script>`` on the demo data in its own process, checking it exited 0.

    ``options`` follow ``--dataset demo``; the process gets ten minutes.
    """
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "probes" / script), "--dataset", "demo", *options],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
