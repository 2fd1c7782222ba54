"""AdaLoRA traps: the schedule comes from the engine, ranks really move, the pruned adapter reloads."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from _helpers import HOST, perturb, prepared, scores, trained

from coldstart_peft import ConfigError, load_adapter, save_adapter


def test_schedule_comes_from_total_steps_and_fits_short_runs():
    config = HOST.method("adalora")().config
    assert config.schedule(1000) == {"tinit": 100, "tfinal": 200, "deltaT": 70}
    for total in (3, 4, 7, 20):  # peft refuses tinit >= total - tfinal; every short run leaves a pruning phase
        schedule = config.schedule(total)
        assert schedule["tinit"] < total - schedule["tfinal"] - 1
        config.to_peft(total)
    with pytest.raises(ConfigError, match="at least 3 optimizer steps"):
        config.schedule(2)


def test_prepare_without_total_steps_is_refused_by_name(tiny_base):
    with pytest.raises(ConfigError, match="total_steps"):
        prepared(tiny_base, "adalora", total_steps=None)


def test_regularization_is_the_orthogonality_penalty(tiny_base):
    scorer, method = prepared(tiny_base, "adalora", {"orthogonal_init": False})
    penalty = method.regularization(scorer.backbone)
    assert penalty is not None and penalty.requires_grad and penalty.item() > 0
    penalty.backward()
    assert any(p.grad is not None for n, p in scorer.backbone.named_parameters() if "lora_A" in n)
    orthogonal, method = prepared(tiny_base, "adalora")
    assert method.regularization(orthogonal.backbone).item() < 1e-4  # starts where the penalty wants it


def test_ranks_are_reallocated_during_training_and_the_final_pattern_reloads(tiny_base, toy_task, tmp_path):
    groups, _ = toy_task
    scorer, method, result = trained(tiny_base, "adalora", groups[:96])  # 12 steps
    config = scorer.backbone.peft_config["default"]
    assert result.steps == config.total_step == 12
    pattern = config.rank_pattern
    assert pattern is not None, "update_and_allocate never ran: the ranks did not move"
    ranks = {name: sum(kept) for name, kept in pattern.items()}
    n_matrices = len(ranks)
    assert n_matrices == 6  # query, key, value in 2 layers
    assert sum(ranks.values()) == config.target_r * n_matrices  # the budget fell from init_r to target_r
    assert len(set(ranks.values())) > 1, f"every matrix kept the same rank: {ranks}"
    folder = save_adapter(scorer, tmp_path / "adalora")
    saved = json.loads((folder / "adapter_config.json").read_text())["rank_pattern"]
    assert {k: sum(v) for k, v in saved.items()} == {k.replace(".default", ""): r for k, r in ranks.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="The following rank_pattern")
        reloaded = load_adapter(folder, host=HOST)
    # Reloaded layers hold only the kept ranks, so sums run over fewer (zero) terms: equal up to rounding.
    assert torch.allclose(torch.tensor(scores(reloaded)), torch.tensor(scores(scorer)), rtol=0, atol=1e-6)
    for name, parameter in reloaded.backbone.named_parameters():
        if "lora_E" in name:
            assert parameter.shape[0] == ranks[name.split("base_model.model.")[1]]


def test_save_keeps_ranks_the_weights_use_when_they_disagree_with_the_allocator(tiny_base, toy_task, tmp_path):
    groups, _ = toy_task
    scorer, method, _ = trained(tiny_base, "adalora", groups[:96])
    perturb(scorer)  # revives pruned singular values, as restoring an earlier best state can
    folder = save_adapter(scorer, tmp_path / "adalora")
    assert scores(load_adapter(folder, host=HOST)) == scores(scorer)
    assert scorer.backbone.peft_config["default"].rank_pattern is not None  # the allocator's own pattern is kept


def test_merge_matches_the_unmerged_adapter(tiny_base, toy_task):
    groups, _ = toy_task
    scorer, method, _ = trained(tiny_base, "adalora", groups[:96])
    before = scores(scorer)
    scorer.backbone = method.merge(scorer.backbone)
    assert torch.allclose(torch.tensor(scores(scorer)), torch.tensor(before), atol=1e-5)
