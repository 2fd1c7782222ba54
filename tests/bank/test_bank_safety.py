"""The bank refuses adapters of another base model, pickles and corrupt files; crashes mid-save lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from _bank_helpers import HOST, ITEMS, SCORER_CONFIG, USERS, tiny_bank
from coldstart_peft import CorruptAdapterError, FingerprintMismatchError, UnsafeFileError, apply_method, build_scorer, save_adapter
from coldstart_peft.bank import AdapterBank


@pytest.fixture(scope="module")
def other_base(tmp_path_factory, tiny_base):
    """The tiny BERT with a wider feed-forward layer: same tokenizer, different fingerprint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("other-bert")
    BertTokenizerFast.from_pretrained(tiny_base).save_pretrained(folder)
    config = BertConfig.from_pretrained(tiny_base)
    config.intermediate_size = 96
    BertModel(config).save_pretrained(folder)
    return str(folder)


def test_fingerprint_mismatch_is_refused(tmp_path, tiny_base, other_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    with pytest.raises(FingerprintMismatchError, match="fingerprint"):
        AdapterBank.load(tmp_path / "bank", base_model=other_base)
    torch.manual_seed(0)
    stranger = build_scorer("cross-encoder", other_base, SCORER_CONFIG, host=HOST)
    apply_method(stranger, HOST.method("lora")({}))
    save_adapter(stranger, tmp_path / "stranger")
    bank = AdapterBank.load(tmp_path / "bank")
    with pytest.raises(FingerprintMismatchError, match="retrain it on the bank's base model"):
        bank.add("Nails", tmp_path / "stranger")
    assert "Nails" not in bank


def test_truncated_weights_give_a_clear_error(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    weights = tmp_path / "bank" / "makeup" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CorruptAdapterError, match="makeup.*truncated"):
        AdapterBank.load(tmp_path / "bank")
    head = tmp_path / "bank" / "hair-care" / "scorer_head.safetensors"
    head.write_bytes(b"not a safetensors file")
    lazy = AdapterBank.load(tmp_path / "bank", lazy=True)  # lazy: weights are read on first use
    with pytest.raises(CorruptAdapterError, match="hair-care"):
        lazy.score(USERS, ITEMS, domains="Hair Care")


def test_pickle_files_are_refused(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    (tmp_path / "bank" / "makeup" / "adapter_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(UnsafeFileError, match="pickle"):
        AdapterBank.load(tmp_path / "bank")


CRASHING_SAVE = textwrap.dedent("""
    import sys, time
    import torch
    import coldstart_peft.artifact as artifact
    from coldstart_peft import create_host, load_adapter
    folder, marker = sys.argv[1], sys.argv[2]
    scorer = load_adapter(folder, host=create_host(load_entrypoints=False))
    with torch.no_grad():
        for p in scorer.parameters():
            p.add_(1.0)
    real_save_file = artifact.save_file
    def save_then_hang(tensors, path):  # the method's weights are written; the head is half-written
        open(path, "wb").write(b"partial")
        open(marker, "w").write("saving")
        time.sleep(120)
    artifact.save_file = save_then_hang
    artifact.save_adapter(scorer, folder)
""")


def test_crash_mid_save_leaves_the_previous_adapter_intact(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    marker = tmp_path / "saving"
    child = subprocess.Popen([sys.executable, "-c", CRASHING_SAVE, str(tmp_path / "bank" / "makeup"), str(marker)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    deadline = time.time() + 240
    while not marker.exists() and child.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the child never reached the save"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert any(p.name.startswith(".makeup.tmp-") for p in (tmp_path / "bank").iterdir())  # the half-written copy
    bank = AdapterBank.load(tmp_path / "bank")
    bank.scorer.precision = "fp32"
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Makeup"), scorers["Makeup"].score(USERS, ITEMS), atol=1e-5)


def test_crash_between_the_renames_is_recovered(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    # save_adapter's swap is two renames; a crash between them leaves only the hidden old copy.
    os.replace(tmp_path / "bank" / "makeup", tmp_path / "bank" / ".makeup.old-deadbeef")
    bank = AdapterBank.load(tmp_path / "bank")
    bank.scorer.precision = "fp32"
    np.testing.assert_allclose(bank.score(USERS, ITEMS, domains="Makeup"), scorers["Makeup"].score(USERS, ITEMS), atol=1e-5)
