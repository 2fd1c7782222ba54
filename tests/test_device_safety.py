"""The default recipe's collate, loss and pair scoring run with the scorer on a device that is not the CPU.

The scorer goes to PyTorch's ``meta`` device (shapes, no data): any prior table that followed
it there and is then read on the CPU (``.numpy()``, ``.tolist()``) fails here, exactly as it
would on a GPU, so the default recipe cannot lose CUDA support again without CI noticing.
"""

from __future__ import annotations

import pytest
import torch
from transformers import masking_utils

from coldstart_peft import apply_method, build_scorer, create_host
from coldstart_peft.priors import Priors
from coldstart_peft.recipes import FitSettings

HOST = create_host(load_entrypoints=False)


@pytest.mark.parametrize("scorer_name", ["bi-encoder", "cross-encoder"])
def test_default_recipe_runs_on_a_non_cpu_device(scorer_name, tiny_base, toy_task, monkeypatch):
    groups = toy_task[0][:8]
    scorer = build_scorer(scorer_name, tiny_base, {"max_length": 32}, host=HOST)
    scorer.attach_priors(Priors(FitSettings(scorer=scorer_name).prior_features()))
    apply_method(scorer, HOST.method("lora")())
    scorer.priors.fit(toy_task[0])
    # transformers peeks at the attention mask's values to skip building it; on meta there are none.
    monkeypatch.setattr(masking_utils, "_ignore_bidirectional_mask_sdpa", lambda *args, **kwargs: False)
    scorer.to("meta")
    assert scorer.device.type == "meta"
    batch = {k: v.to("meta") if torch.is_tensor(v) else v for k, v in scorer.training_batch(groups).items()}
    loss = scorer(batch)
    assert loss.device.type == "meta" and loss.dim() == 0
    users = [g.user_text for g in groups]
    items = [g.item_texts[0] for g in groups]
    logits = scorer.forward_pairs(users, items)
    assert logits.device.type == "meta" and logits.shape == (len(items),)
    # The tables stayed on the CPU with their values, ready for the next batch.
    assert all(t.device.type == "cpu" for t in scorer.priors.tables.state().values())
    assert scorer.priors.pairs(users, items).abs().sum() > 0
