"""DoRA: LoRA with the magnitude/direction split, honest about peft's mixed-batch limit."""

from __future__ import annotations

import pytest
from _helpers import HOST, perturb, prepared, scores

from coldstart_peft import ConfigError, load_adapter, save_adapter


def test_dora_decomposes_and_declares_no_mixed_batches(tiny_base):
    scorer, method = prepared(tiny_base, "dora")
    names = [n for n, p in scorer.backbone.named_parameters() if p.requires_grad]
    assert any("lora_magnitude_vector" in n for n in names)
    assert HOST.method("dora").supports_mixed_batches is False
    assert HOST.method("dora").supports_merge is True


def test_plain_lora_is_refused_under_the_dora_name():
    with pytest.raises(ConfigError, match="'lora' method"):
        HOST.method("dora")({"use_dora": False})


def test_dora_reloads(tiny_base, tmp_path):
    scorer, _ = prepared(tiny_base, "dora")
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "dora")
    assert scores(load_adapter(folder, host=HOST)) == scores(scorer)
