"""Untrusted adapter folders: paths cannot leave the folder, pickles and damaged weights are refused."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from coldstart_peft import (
    CorruptAdapterError,
    UnsafeFileError,
    UnsafePathError,
    apply_method,
    build_scorer,
    create_host,
    load_adapter,
    save_adapter,
)
from coldstart_peft.artifact import HEAD, MANIFEST, check_adapter_folder, safe_path

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
HOST = create_host(load_entrypoints=False)


@pytest.fixture
def adapter(tmp_path, tiny_base):
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 32}, host=HOST)
    apply_method(scorer, HOST.method("lora")({"r": 2}))
    return save_adapter(scorer, tmp_path / "adapter")


@pytest.mark.parametrize("relative", ["../outside.safetensors", "a/../../outside", "/etc/passwd", "sub/../../x"])
def test_safe_path_refuses_paths_that_climb_out(tmp_path, relative):
    with pytest.raises(UnsafePathError, match="absolute or climbs out"):
        safe_path(tmp_path, relative)


def test_safe_path_refuses_a_symlink_pointing_outside(tmp_path):
    root, secret = tmp_path / "root", tmp_path / "secret.txt"
    root.mkdir()
    secret.write_text("key")
    (root / "weights.safetensors").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="outside the folder"):
        safe_path(root, "weights.safetensors")
    with pytest.raises(UnsafePathError):
        check_adapter_folder(root)


def test_safe_path_accepts_files_and_links_inside(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.safetensors").write_bytes(b"")
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "sub" / "a.safetensors")
    assert safe_path(tmp_path, "sub/a.safetensors") == tmp_path / "sub" / "a.safetensors"
    check_adapter_folder(tmp_path)


def test_load_refuses_an_adapter_whose_weights_are_a_link_out(adapter, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    (adapter / HEAD).rename(outside)
    (adapter / HEAD).symlink_to(outside)
    with pytest.raises(UnsafePathError):
        load_adapter(adapter, host=HOST)


def test_load_refuses_a_pickle_file(adapter):
    torch.save({"w": torch.ones(1)}, adapter / "extra_weights.bin")
    with pytest.raises(UnsafeFileError, match="pickle"):
        load_adapter(adapter, host=HOST)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_load_refuses_non_finite_weights(adapter, value):
    path = adapter / "adapter_model.safetensors"
    tensors = load_file(str(path))
    name = next(iter(tensors))
    tensors[name][0] = value
    save_file(tensors, str(path))
    with pytest.raises(CorruptAdapterError, match="NaN or Inf"):
        load_adapter(adapter, host=HOST)


def test_load_refuses_a_head_of_the_wrong_shape(adapter):
    tensors = load_file(str(adapter / HEAD))
    name = next(k for k, v in tensors.items() if v.dim() >= 1 and k not in ("prior_keys", "prior_values"))
    tensors[name] = torch.zeros(*[s + 1 for s in tensors[name].shape])
    save_file(tensors, str(adapter / HEAD))
    with pytest.raises(CorruptAdapterError, match="could not apply"):
        load_adapter(adapter, host=HOST)


def test_load_refuses_method_weights_of_the_wrong_shape(adapter):
    path = adapter / "adapter_model.safetensors"
    tensors = {k: torch.zeros(v.shape[0] + 3, *v.shape[1:]) for k, v in load_file(str(path)).items()}
    save_file(tensors, str(path))
    with pytest.raises(CorruptAdapterError):
        load_adapter(adapter, host=HOST)


def test_load_refuses_a_truncated_weights_file(adapter):
    path = adapter / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptAdapterError, match="truncated"):
        load_adapter(adapter, host=HOST)


def test_manifest_records_the_environment(adapter):
    manifest = json.loads((adapter / MANIFEST).read_text())
    libraries = manifest["environment"]["libraries"]
    for name in ("torch", "transformers", "peft", "accelerate", "coldstart-peft"):
        assert libraries[name], name
