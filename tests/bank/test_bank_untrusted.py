"""Untrusted bank folders: manifest paths never lead out of the root, symlinks out are refused,
and domain names in any script get safe, unique, stable folders."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from _bank_helpers import ITEMS, USERS, tiny_bank, tiny_scorer
from coldstart_peft import save_adapter
from coldstart_peft.bank import AdapterBank, save_bank
from coldstart_peft.bank.layout import slugify
from coldstart_peft.errors import UnsafePathError


def _digests(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["../victim", "ABSOLUTE", "", ".", "priors", "a/b"])
def test_a_manifest_folder_outside_the_root_is_refused_before_anything_is_written(tmp_path, tiny_base, where):
    tiny_bank(tmp_path / "bank", tiny_base)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.md").write_text("mine")
    manifest_path = tmp_path / "bank" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["domains"][0]["folder"] = str(victim) if where == "ABSOLUTE" else where
    manifest_path.write_text(json.dumps(manifest))
    before = {**_digests(victim), **_digests(tmp_path / "bank")}
    with pytest.raises(UnsafePathError, match="one plain name|outside|climbs"):
        AdapterBank.load(tmp_path / "bank")
    assert {**_digests(victim), **_digests(tmp_path / "bank")} == before


def test_a_symlink_out_of_a_bank_adapter_is_refused(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    folder = tmp_path / "bank" / json.loads((tmp_path / "bank" / "manifest.json").read_text())["domains"][0]["folder"]
    (folder / "extra.json").symlink_to(secret)
    with pytest.raises(UnsafePathError, match="outside"):
        AdapterBank.load(tmp_path / "bank")
    with pytest.raises(UnsafePathError, match="outside"):  # lazy loading checks every folder up front too
        AdapterBank.load(tmp_path / "bank", lazy=True)
    assert secret.read_text() == "key"


def test_add_refuses_a_source_folder_with_a_symlink_out(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    source = save_adapter(tiny_scorer(tiny_base, "lora", 8), tmp_path / "incoming")
    (source / "readme.txt").symlink_to(tmp_path / "bank" / "manifest.json")
    bank = AdapterBank.load(tmp_path / "bank")
    with pytest.raises(UnsafePathError):
        bank.add("Nails", source, persist=True)
    assert "Nails" not in bank and not any("nails" in p.name for p in (tmp_path / "bank").iterdir())


def test_domain_names_in_any_script_get_their_own_safe_folders(tmp_path, tiny_base):
    names = ["Красота", "美容", "Soins & Beauté", "Soins & Beaute", "化妆品"]
    scorers = {name: tiny_scorer(tiny_base, "lora", seed) for seed, name in enumerate(names, start=1)}
    root = save_bank(tmp_path / "bank", scorers)
    folders = {e["name"]: e["folder"] for e in json.loads((root / "manifest.json").read_text())["domains"]}
    assert len(set(folders.values())) == len(names)
    assert all(f.isascii() and f == slugify(n) or f.startswith(slugify(n)) for n, f in folders.items())
    assert slugify("Красота") == slugify("Красота") != slugify("美容"), "stable and distinct"
    bank = AdapterBank.load(root)
    bank.scorer.precision = "fp32"
    for name, scorer in scorers.items():
        scorer.precision = "fp32"
        np.testing.assert_allclose(bank.score(USERS, ITEMS, domains=name), scorer.score(USERS, ITEMS), atol=1e-5)
    bank.remove("美容", persist=True)
    reloaded = AdapterBank.load(root)
    assert sorted(reloaded.domains) == sorted(set(names) - {"美容"})
    assert not (root / folders["美容"]).exists() and all((root / folders[n]).is_dir() for n in names if n != "美容")
