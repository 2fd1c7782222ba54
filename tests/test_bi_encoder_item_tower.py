"""The bi-encoder's frozen item tower: items keep the base model's embeddings, users adapt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coldstart_peft import ConfigError, TrainConfig, apply_method, build_scorer, create_host, load_adapter, save_adapter, train
from coldstart_peft.priors import Priors

HOST = create_host(load_entrypoints=False)
FROZEN = {"max_length": 48, "item_tower": "frozen"}


def _trained(tiny_base, toy_task, steps=30, probe=None):
    scorer = build_scorer("bi-encoder", tiny_base, FROZEN, host=HOST)
    scorer.precision = "fp32"
    method = HOST.method("lora")()
    apply_method(scorer, method)
    if probe is not None:
        probe(scorer)
    result = train(scorer, method, toy_task[0], None, TrainConfig(max_steps=steps, batch_size=16, lr=3e-3, progress=False))
    return scorer, result


def test_items_keep_base_embeddings_while_users_learn(small_pretrained_base, toy_task):
    base = build_scorer("bi-encoder", small_pretrained_base, {"max_length": 48}, host=HOST)
    base.precision = "fp32"
    losses, batch = [], {}

    def held_out_loss(scorer):
        scorer.eval()
        batch.update(batch or scorer.collate(toy_task[0][-32:]))  # one batch, before and after
        with torch.no_grad():
            losses.append(scorer.compute_loss(batch).item())

    scorer, result = _trained(small_pretrained_base, toy_task, probe=held_out_loss)
    held_out_loss(scorer)
    assert losses[1] < losses[0] - 0.05, f"the user tower learned: loss {losses[0]:.3f} -> {losses[1]:.3f}"
    items = ["red lipstick", "blue soap bar"]
    torch.testing.assert_close(scorer.encode_items(items), base.encode(items))
    users = ["Clicked: red lipstick; red nail polish"]
    assert not torch.allclose(scorer.encode(users), base.encode(users), atol=1e-4), "the user tower was adapted"
    assert result.trainable_params < sum(p.numel() for p in base.parameters()), "the copy is not trained"


def test_every_remembered_item_is_a_negative(tiny_base, toy_task):
    scorer = build_scorer("bi-encoder", tiny_base, FROZEN, host=HOST)
    scorer.fit_statistics(toy_task[0])
    first = scorer.collate(toy_task[0][:4])
    second = scorer.collate(toy_task[0][4:8])
    assert len(second["memory"]) > len(first["memory"]), "new items join the memory"
    assert torch.equal(second["memory"][: len(first["memory"])], first["memory"]), "old rows never move"
    positives = second["item_rows"][second["positive_index"]]
    texts = list(scorer._memory_rows)
    assert [texts[int(r)] for r in positives] == [next(t for t, y in zip(g.item_texts, g.labels) if y > 0.5) for g in toy_task[0][4:8]]
    logits_needed = scorer.compute_loss(second)
    assert torch.isfinite(logits_needed)


def test_memory_negatives_refuse_priors_and_name_the_way_out(tiny_base):
    scorer = build_scorer("bi-encoder", tiny_base, FROZEN, host=HOST)
    with pytest.raises(ConfigError, match="memory_negatives=false"):
        scorer.attach_priors(Priors())
    assert scorer.priors is None


def test_round_trip_keeps_scores_and_saves_no_item_tower(tiny_base, toy_task, tmp_path):
    scorer, _ = _trained(tiny_base, toy_task, steps=3)
    with torch.no_grad():  # LoRA B starts at zero: perturb so a lost weight changes scores
        for name, p in scorer.backbone.named_parameters():
            if "lora_B" in name:
                p.add_(0.05 * torch.randn_like(p))
    folder = save_adapter(scorer, tmp_path / "frozen")
    shared = build_scorer("bi-encoder", tiny_base, {**FROZEN, "item_tower": "shared"}, host=HOST)
    apply_method(shared, HOST.method("lora")())
    shared_folder = save_adapter(shared, tmp_path / "shared")
    size = lambda f: sum(x.stat().st_size for x in f.iterdir())  # noqa: E731
    assert abs(size(folder) - size(shared_folder)) < 2048, "the frozen copy is not saved"
    loaded = load_adapter(folder, host=HOST)
    loaded.precision = "fp32"
    users, items = [g.user_text for g in toy_task[0][:6]], [g.item_texts[0] for g in toy_task[0][:6]]
    np.testing.assert_allclose(loaded.score(users, items), scorer.score(users, items), rtol=1e-5, atol=1e-5)
