"""Length blocks: an optimal partition, and a blocked forward that equals the whole batch's."""

import itertools
import random

import pytest
import torch

from coldstart_peft import TrainGroup, build_scorer, create_host
from coldstart_peft.length_blocks import length_blocks, plan_blocks

HOST = create_host(load_entrypoints=False)


def _cost(blocks, lengths, block_cost):
    return sum(max(lengths[i] for i in b) * len(b) + block_cost for b in blocks)


def _best_by_brute_force(lengths, block_cost):
    """Every way to cut the sorted rows into contiguous blocks."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = float("inf")
    for k in range(len(order)):
        for cuts in itertools.combinations(range(1, len(order)), k):
            bounds = [0, *cuts, len(order)]
            blocks = [order[a:b] for a, b in itertools.pairwise(bounds)]
            best = min(best, _cost(blocks, lengths, block_cost))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_plan_blocks_is_an_optimal_partition(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(3, 120) for _ in range(rng.randint(1, 9))]
    block_cost = rng.choice([0, 16, 64, 1000])
    blocks = plan_blocks(lengths, block_cost)
    assert sorted(i for b in blocks for i in b) == list(range(len(lengths)))
    assert _cost(blocks, lengths, block_cost) == _best_by_brute_force(lengths, block_cost)


def test_plan_blocks_splits_only_when_the_padding_saved_pays_for_a_block():
    lengths = [100] * 8 + [10] * 8
    assert len(plan_blocks(lengths, block_cost=100)) == 2  # saves 8 x 90 tokens
    assert len(plan_blocks(lengths, block_cost=10**6)) == 1


def test_length_blocks_cut_rows_and_padding_columns_on_either_side():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]])
    inputs = {"attention_mask": mask, "input_ids": torch.arange(18).view(3, 6), "labels": torch.tensor([7, 8, 9])}
    blocks = list(length_blocks(inputs, block_cost=0))
    assert [b[0].tolist() for b in blocks] == [[1, 2], [0]]
    short = blocks[0][1]
    # Row 1 is padded on the right, row 2 on the left: both keep their real tokens.
    assert short["attention_mask"].tolist() == [[1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]]
    assert blocks[1][1]["input_ids"].tolist() == [list(range(6))]
    assert short["labels"].tolist() == [8, 9]


def _mixed_length_groups():
    short, long = "red lipstick", " ".join(["blue mascara"] * 8)
    return [TrainGroup(f"clicked {short}", [short, long, "green soap", long + " extra"], [1.0, 0.0, 0.0, 0.0]),
            TrainGroup(f"clicked {long}", [long, short, short, "soap"], [0.0, 1.0, 0.0, 0.0])]  # fmt: skip


def _train_without_dropout(scorer):
    """Training mode (where blocks run) with every dropout off, so two passes can be compared."""
    scorer.train()
    for module in scorer.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _loss_and_grads(scorer, batch):
    scorer.zero_grad()
    loss = scorer.compute_loss(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in scorer.named_parameters() if p.grad is not None}


def test_blocked_cross_encoder_loss_and_gradients_equal_one_padded_batch(tiny_base):
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", tiny_base, {"dropout": 0.0, "head": "linear", "max_length": 48}, host=HOST)
    _train_without_dropout(scorer)
    batch = scorer.collate(_mixed_length_groups())
    assert len(list(length_blocks(batch, block_cost=1))) > 1
    scorer.length_block_cost = 1
    blocked_loss, blocked = _loss_and_grads(scorer, batch)
    scorer.length_block_cost = None
    whole_loss, whole = _loss_and_grads(scorer, batch)
    assert torch.allclose(blocked_loss, whole_loss, atol=1e-5)
    assert whole and set(blocked) == set(whole)
    for name in whole:
        assert torch.allclose(blocked[name], whole[name], atol=1e-5), name


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
def test_blocked_cross_encoder_logits_equal_unblocked_on_decoders(tiny_decoders, kind):
    scorer = build_scorer("cross-encoder", tiny_decoders[kind], {"max_length": 48}, host=HOST)
    _train_without_dropout(scorer)
    users = ["clicked red lipstick", "clicked blue mascara " * 5]
    items = ["matte red lipstick " * 4, "soap"]
    with torch.no_grad():
        scorer.length_block_cost = 1
        blocked = scorer.forward_pairs(users * 2, items + items[::-1])
        scorer.length_block_cost = None
        whole = scorer.forward_pairs(users * 2, items + items[::-1])
    assert torch.allclose(blocked, whole, atol=1e-5)


def test_scoring_runs_batches_whole(tiny_base, monkeypatch):
    import coldstart_peft_plugins.cross_encoder as module

    scorer = build_scorer("cross-encoder", tiny_base, {"max_length": 48}, host=HOST)
    scorer.length_block_cost = 1
    monkeypatch.setattr(module, "blockwise", lambda *a, **k: pytest.fail("scoring ran length blocks"))
    scorer.eval()
    scorer.score(["clicked red lipstick", "clicked blue mascara " * 5], ["soap", "matte red lipstick " * 4])
