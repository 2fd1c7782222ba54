"""The README's plugin, taken as written, installs into a fresh environment, lists, trains and passes its contract.

The files are the README's code blocks under "Write a plugin" whose first line names a path
(``# pyproject.toml``). The environment is a new virtualenv that sees this one's packages (so
nothing is downloaded), with the plugin installed into it by pip, never into this one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import site
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Write a plugin"


def readme_plugin_files() -> dict[str, str]:
    """``{relative path: text}`` of every code block in the README's plugin section that starts with ``# path``."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(SECTION)
    section = readme[start : readme.find("\n## ", start + len(SECTION))]
    files = {}
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", section, flags=re.S):
        first = block.splitlines()[0]
        named = re.fullmatch(r"# ([\w./-]+\.(?:py|toml))", first)
        if named:
            files[named.group(1)] = block
    return files


def _environment(folder: Path) -> Path:
    """A new virtualenv whose interpreter also sees this environment's packages; returns its python.

    ``--system-site-packages`` alone would show the base interpreter's packages, not this
    virtualenv's, so a ``.pth`` file adds this one's site folders (``addsitedir`` also runs their
    own ``.pth`` files, the editable install of coldstart-peft among them).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    own_site = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    Path(own_site, "zz_parent_environment.pth").write_text("\n".join(lines) + "\n")
    return python


def _run(python: Path, *args: str, cwd: Path, timeout: int = 600) -> str:
    proc = subprocess.run([str(python), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_readme_names_the_plugin_files_within_forty_lines():
    files = readme_plugin_files()
    assert {"coldstart_bitfit.py", "pyproject.toml", "tests/test_bitfit.py"} <= set(files)
    assert len(files["pyproject.toml"].splitlines()) + len(files["tests/test_bitfit.py"].splitlines()) < 40


@pytest.mark.slow
def test_the_readme_plugin_installs_lists_trains_and_passes_its_contract(tmp_path):
    plugin = tmp_path / "coldstart-bitfit"
    for relative, text in readme_plugin_files().items():
        (plugin / relative).parent.mkdir(parents=True, exist_ok=True)
        (plugin / relative).write_text(text)
    python = _environment(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(plugin), cwd=tmp_path)
    # Installed there, not here (asked in a fresh interpreter: the README test runs the same module in this one).
    here = subprocess.run([sys.executable, "-c", "import coldstart_bitfit"], capture_output=True, text=True, cwd=tmp_path)
    assert here.returncode != 0 and "No module named 'coldstart_bitfit'" in here.stderr, here.stderr

    listed = _run(python, "-m", "coldstart_peft.cli", "plugins", cwd=tmp_path)
    assert re.search(r"^bitfit\s+method\s+bitfit \(coldstart[-_]bitfit==0\.1\.0\)", listed, flags=re.M), listed

    out = tmp_path / "adapter"
    _run(python, "-m", "coldstart_peft.cli", "train", "--dataset", "demo", "--method", "bitfit", "--max-steps", "2",
         "--batch-size", "4", "--max-groups", "16", "--valid-users", "8", "--calibration-users", "0",
         "--max-test-users", "8", "--no-progress", "--out", str(out), cwd=tmp_path)  # fmt: skip
    manifest = json.loads((out / "coldstart.json").read_text())
    assert manifest["method"] == "bitfit" and (out / "bitfit.safetensors").is_file()

    _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=plugin)
