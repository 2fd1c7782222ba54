"""The plugin host: entry points, isolation of broken plugins, registry rules, the allow-list."""

from __future__ import annotations

import inspect
import textwrap
import types
from pathlib import Path

import pytest

from coldstart_peft import hookspecs
from coldstart_peft.errors import DuplicateNameError, InvalidNameError, PluginError, UnknownNameError
from coldstart_peft.host import ALLOW_ENV, create_host

PLUGIN_SOURCE = '''
import dataclasses
from coldstart_peft import Method, MethodConfig, hookimpl

class ToyMethod(Method):
    """Toy method from an installed distribution."""
    name = "toy-method"
    def prepare(self, model, config, *, total_steps=None):
        return model

@hookimpl
def register_methods(register):
    register(ToyMethod)
'''


def install_fake_distribution(root: Path, module: str, source: str, entry_name: str | None = None) -> None:
    """Write ``module.py`` and a dist-info with one ``coldstart_peft`` entry point into ``root``."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = root / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(f"[coldstart_peft]\n{entry_name or module} = {module}\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A temporary site folder on sys.path; its modules are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    yield tmp_path
    import sys

    for name in [m for m in sys.modules if m.startswith("csp_test_")]:
        del sys.modules[name]


def test_builtins_load_without_entrypoints():
    host = create_host(load_entrypoints=False)
    assert {"full", "lora"} <= set(host.methods.names())
    assert "cross-encoder" in host.scorers.names()
    assert host.sources["lora"] == "built-in"
    assert host.methods.entry("lora").plugin == "lora"


def test_third_party_entry_point_is_loaded(fake_site):
    install_fake_distribution(fake_site, "csp_test_good", PLUGIN_SOURCE)
    host = create_host()
    assert "toy-method" in host.methods.names()
    assert host.sources["csp_test_good"] == "csp_test_good==0.1"
    assert "toy-method" not in create_host(load_entrypoints=False).methods.names()


def test_allow_list_env_var(fake_site, monkeypatch):
    install_fake_distribution(fake_site, "csp_test_allowed", PLUGIN_SOURCE)
    monkeypatch.setenv(ALLOW_ENV, "")
    host = create_host()
    assert "toy-method" not in host.methods.names()
    assert "lora" in host.methods.names(), "built-ins always load"
    monkeypatch.setenv(ALLOW_ENV, "csp_test_allowed")
    assert "toy-method" in create_host().methods.names()
    monkeypatch.setenv(ALLOW_ENV, "something_else")
    assert "toy-method" not in create_host().methods.names()


def test_plugin_failing_at_import_is_reported_not_fatal(fake_site):
    install_fake_distribution(fake_site, "csp_test_broken", "raise ImportError('needs libfoo')\n")
    with pytest.warns(RuntimeWarning, match="csp_test_broken"):
        host = create_host()
    assert [(f.plugin, f.stage) for f in host.failures] == [("csp_test_broken", "import")]
    assert "libfoo" in host.failures[0].error
    assert {"full", "lora"} <= set(host.methods.names())


def test_plugin_failing_at_registration_is_reported_not_fatal(fake_site):
    source = "from coldstart_peft import hookimpl\n@hookimpl\ndef register_methods(register):\n    raise RuntimeError('boom')\n"
    install_fake_distribution(fake_site, "csp_test_regfail", source)
    with pytest.warns(RuntimeWarning, match="register_methods"):
        host = create_host()
    assert [(f.plugin, f.stage) for f in host.failures] == [("csp_test_regfail", "register_methods")]
    assert "lora" in host.methods.names()


def _plugin_registering(cls) -> types.SimpleNamespace:
    @hookspecs.hookimpl
    def register_methods(register):
        register(cls)

    return types.SimpleNamespace(register_methods=register_methods)


def test_duplicate_name_is_an_error():
    from coldstart_peft import Method

    class AnotherLora(Method):
        name = "lora"

    with pytest.raises(DuplicateNameError, match="'lora' is registered twice"):
        create_host(load_entrypoints=False, plugins=[("dup", _plugin_registering(AnotherLora))])


def test_names_must_be_lowercase():
    from coldstart_peft import Method

    class Shouty(Method):
        name = "LoRA2"

    with pytest.raises(InvalidNameError, match="lowercase"):
        create_host(load_entrypoints=False, plugins=[("shouty", _plugin_registering(Shouty))])


def test_unknown_name_lists_known_names():
    host = create_host(load_entrypoints=False)
    with pytest.raises(UnknownNameError) as info:
        host.method("lorra")
    assert "lorra" in str(info.value) and "lora" in str(info.value) and "full" in str(info.value)
    with pytest.raises(UnknownNameError, match="cross-encoder"):
        host.scorer("nope")


def test_misspelled_hook_fails_at_startup():
    @hookspecs.hookimpl
    def register_method(register):  # missing "s": not a hook we define
        pass

    with pytest.raises(PluginError, match="register_method"):
        create_host(load_entrypoints=False, plugins=[("typo", types.SimpleNamespace(register_method=register_method))])


def test_scorer_hook_registers_scorers():
    from coldstart_peft import Scorer

    class NullScorer(Scorer):
        name = "null-scorer"

    @hookspecs.hookimpl
    def register_scorers(register):
        register(NullScorer)

    host = create_host(load_entrypoints=False, plugins=[("null", types.SimpleNamespace(register_scorers=register_scorers))])
    assert host.scorer("null-scorer") is NullScorer


def test_every_hook_is_documented_and_tested():
    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "coldstart_peft_spec")]
    assert specs, "no hook specs found"
    this_file = Path(__file__).read_text()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in specs:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Args:" in doc and "firstresult" in doc, f"hook {name} needs a full docstring"
        assert f"def {name}(" in this_file, f"hook {name} has no test here"
        assert name in readme, f"hook {name} is not documented in the README"
