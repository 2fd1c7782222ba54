"""Packaging: every package folder ships, and built-in plugins never install as a bare ``plugins``."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "coldstart_peft").rglob("__init__.py")
    }
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"
    assert "coldstart_peft_plugins" in listed and "plugins" not in listed


def test_builtin_plugins_are_entry_points_of_the_namespaced_package():
    declared = PYPROJECT["project"]["entry-points"]["coldstart_peft"]
    assert all(target.startswith("coldstart_peft_plugins.") for target in declared.values())
    installed = {ep.name: ep.value for ep in entry_points(group="coldstart_peft") if ep.dist.name == "coldstart-peft"}
    assert installed == declared, "reinstall the project (pip install -e .) after changing entry points"
    modules = {p.stem for p in (ROOT / "plugins").glob("*.py") if not p.stem.startswith("_")}
    assert {v.split(".")[-1] for v in declared.values()} == modules - {"__init__"}
