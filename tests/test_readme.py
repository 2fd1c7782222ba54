"""The README is the front door: its commands and its plugin example must be true of the code."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from coldstart_peft import TrainConfig, apply_method, build_scorer, count_parameters, create_host, load_adapter, save_adapter, train
from test_plugin_host import install_fake_distribution

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    commands = [b.strip() for b in _blocks("bash")]
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()
    assert any("coldstart-peft demo" in c for c in commands)


def test_readme_plugin_works_end_to_end(tmp_path, monkeypatch, tiny_base, toy_task):
    source = next(b for b in _blocks("python") if "@hookimpl" in b)
    entry = re.search(r"^(\w+) = \"(\w+)\"$", next(b for b in _blocks("toml") if "coldstart_peft" in b), re.M)
    assert len(source.splitlines()) < 40 and entry
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("COLDSTART_PEFT_PLUGINS", raising=False)
    install_fake_distribution(tmp_path, entry.group(2), source, entry_name=entry.group(1))
    host = create_host()
    assert "bitfit" in host.methods.names()

    train_groups, _ = toy_task
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 48}, host=host)
    method = host.method("bitfit")()
    apply_method(scorer, method)
    trainable, total = count_parameters(scorer.backbone)
    assert 0 < trainable < total
    train(scorer, method, train_groups[:32], None, TrainConfig(max_steps=3, lr=1e-2, progress=False))
    with torch.no_grad():
        for name, parameter in scorer.backbone.named_parameters():
            if name.endswith(".bias"):
                parameter.add_(0.1)
    scorer.precision = "fp32"
    users, items = ["likes red lipstick"] * 2, ["red cream", "blue soap"]
    saved = save_adapter(scorer, tmp_path / "bitfit-adapter")
    loaded = load_adapter(saved, host=host)
    loaded.precision = "fp32"
    assert loaded.score(users, items).tolist() == scorer.score(users, items).tolist()
