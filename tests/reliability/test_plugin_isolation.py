"""A method plugin that raises inside ``prepare`` or ``on_step`` is named in a PluginError; built-ins keep working."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

from coldstart_peft import Method, MethodConfig, PluginError, TrainConfig, apply_method, build_scorer, create_host, hookimpl, train

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@dataclasses.dataclass
class _Config(MethodConfig):
    fail_in: str = dataclasses.field(default="prepare", metadata={"help": "where to fail: prepare or on_step"})


class Flaky(Method):
    """A method that breaks where it is told to (test plugin)."""

    name = "flaky"
    config_class = _Config

    def prepare(self, model, config, *, total_steps=None):
        if config.fail_in == "prepare":
            raise KeyError("no such layer 'qkv'")
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model

    def on_step(self, model, step):
        if self.config.fail_in == "on_step" and step == 2:
            raise ZeroDivisionError("budget schedule divided by zero")


@hookimpl
def register_methods(register):
    register(Flaky)


@pytest.fixture
def host():
    # A fresh host per test: the test plugin never leaks into the process-wide default host.
    return create_host(load_entrypoints=False, plugins=[("flaky-plugin", types.SimpleNamespace(register_methods=register_methods))])


def _scorer(tiny_base, host):
    torch.manual_seed(0)
    return build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=host)


def test_prepare_failure_names_the_plugin(tiny_base, host):
    scorer = _scorer(tiny_base, host)
    with pytest.raises(PluginError, match=r"method 'flaky' \(.*test_plugin_isolation\) failed in prepare: KeyError"):
        apply_method(scorer, host.method("flaky")())


def test_on_step_failure_names_the_plugin_and_the_step(tiny_base, host, toy_task):
    scorer = _scorer(tiny_base, host)
    method = host.method("flaky")({"fail_in": "on_step"})
    apply_method(scorer, method)
    config = TrainConfig(batch_size=8, max_steps=4, lr=1e-3, progress=False, precision="fp32")
    with pytest.raises(PluginError, match="'flaky'.*on_step at step 2: ZeroDivisionError"):
        train(scorer, method, toy_task[0][:32], None, config)


def test_builtin_methods_still_work_beside_a_broken_plugin(tiny_base, host, toy_task):
    with pytest.raises(PluginError):
        apply_method(_scorer(tiny_base, host), host.method("flaky")())
    scorer = _scorer(tiny_base, host)
    method = host.method("lora")({"r": 2})
    apply_method(scorer, method)
    result = train(scorer, method, toy_task[0][:16], None, TrainConfig(batch_size=8, lr=1e-3, progress=False, precision="fp32"))
    assert result.steps == 2


def test_a_plugins_own_named_error_passes_through_unwrapped(tiny_base, host):
    from coldstart_peft import ConfigError

    with pytest.raises(ConfigError, match="total_steps"):  # AdaLoRA's own message, not a PluginError
        apply_method(_scorer(tiny_base, host), host.method("adalora")())
