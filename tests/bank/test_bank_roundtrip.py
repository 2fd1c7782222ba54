"""A bank saved in one process scores identically when loaded in a fresh one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from _bank_helpers import DOMAINS, ITEMS, USERS, load_fp32, tiny_bank
from coldstart_peft import __version__
from coldstart_peft.bank import AdapterBank, read_manifest

FRESH = textwrap.dedent("""
    import json, sys
    from coldstart_peft import create_host
    from coldstart_peft.bank import AdapterBank
    root, users, items, domains = sys.argv[1], *json.loads(sys.argv[2])
    bank = AdapterBank.load(root, host=create_host(load_entrypoints=False))
    bank.scorer.precision = "fp32"
    print(json.dumps({d: bank.score(users, items, domains=d).tolist() for d in domains}))
""")


def test_round_trip_three_domains_in_a_fresh_process(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    expected = {d: s.score(USERS, ITEMS) for d, s in scorers.items()}
    assert not np.allclose(expected["Hair Care"], expected["Makeup"], atol=1e-3)  # non-identity, distinct adapters
    payload = json.dumps([USERS, ITEMS, DOMAINS])
    out = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "bank"), payload],
                         capture_output=True, text=True, check=True, timeout=300,
                         env={"OMP_NUM_THREADS": "1", "PATH": "", "HOME": str(tmp_path)})  # fmt: skip
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for domain in DOMAINS:
        np.testing.assert_allclose(got[domain], expected[domain], atol=1e-5)


def test_layout_and_manifest(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    root = tmp_path / "bank"
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert folders == ["_global", "hair-care", "makeup", "tools-accessories"]
    assert (root / "tools-accessories" / "adapter_config.json").is_file()  # peft's own format
    assert (root / "tools-accessories" / "adapter_model.safetensors").is_file()
    manifest = read_manifest(root)
    assert manifest["base_model"]["fingerprint"] == scorers["Makeup"].base_fingerprint
    assert manifest["method"] == "lora" and manifest["method_config"]["r"] == 8
    assert manifest["library_version"] == __version__ and manifest["created"]
    assert [(d["name"], d["folder"]) for d in manifest["domains"]] == [
        ("Hair Care", "hair-care"), ("Makeup", "makeup"), ("Tools & Accessories", "tools-accessories")]
    bank = AdapterBank.load(root)
    assert bank.domains == DOMAINS and bank.has_global


def test_lazy_loading_attaches_on_first_use(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank", lazy=True)
    assert bank._names == {}
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Makeup"), scorers["Makeup"].score(USERS, ITEMS), atol=1e-5)
    assert set(bank._names) == {"Makeup"}
