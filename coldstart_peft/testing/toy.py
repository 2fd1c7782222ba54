"""The toy task of the method contract and the small pretrained model it trains on.

Colour matching: a user's clicks share one colour and the positive item has it too, so a
model that reads text can rank the positive first while any text-blind scorer stays at
chance. The bundled MiniLM cut to two layers keeps pretrained features (which methods that
only steer them, IA3 or prompt tuning, need) at a third of the cost.
"""

from __future__ import annotations

import random
from pathlib import Path

from coldstart_peft.examples import RankingCase, TrainGroup

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gold", "grey"]
KINDS = ["lipstick", "shampoo", "brush", "cream", "perfume", "soap"]
WORDS = ["likes", "clicked", "a", "item", "title", ":", ";", "."]
"""Every word of the task, so a word-level tokenizer built from them covers it."""


def toy_groups(n: int, n_negatives: int, seed: int) -> list[TrainGroup]:
    """``n`` colour-matching groups: one positive item of the user's colour, ``n_negatives`` of others.

    Args:
        n: number of groups.
        n_negatives: negatives per group (at most ``len(COLOURS) - 1``).
        seed: seed of the random draws.

    Returns:
        The groups, positive first in each.
    """
    rng = random.Random(seed)
    groups = []
    for _ in range(n):
        colour = rng.choice(COLOURS)
        user = f"likes {colour} {rng.choice(KINDS)} ; clicked {colour} {rng.choice(KINDS)}"
        positive = f"{colour} {rng.choice(KINDS)}"
        others = [c for c in COLOURS if c != colour]
        negatives = [f"{c} {rng.choice(KINDS)}" for c in rng.sample(others, n_negatives)]
        groups.append(TrainGroup(user, [positive, *negatives], [1.0] + [0.0] * n_negatives))
    return groups


def toy_task() -> tuple[list[TrainGroup], list[RankingCase]]:
    """The contract's task: 160 training groups (3 negatives each) and 24 ranking cases (5 negatives).

    Returns:
        ``(training groups, ranking cases)``; the cases rank the positive, index 0.
    """
    train = toy_groups(160, 3, seed=1)
    cases = [RankingCase(g.user_text, g.item_texts, 0) for g in toy_groups(24, 5, seed=2)]
    return train, cases


def save_small_bundled_model(folder: str | Path, layers: int = 2) -> str:
    """Save the bundled MiniLM cut to its first ``layers`` layers (with its tokenizer) into ``folder``.

    Args:
        folder: where to write it (created if missing).
        layers: encoder layers to keep.

    Returns:
        ``folder``, as a string to pass as a base model.
    """
    from coldstart_peft.backbone import load_backbone, load_tokenizer

    folder = Path(folder)
    model = load_backbone()
    model.encoder.layer = model.encoder.layer[:layers]
    model.config.num_hidden_layers = layers
    model.save_pretrained(folder)
    load_tokenizer().save_pretrained(folder)
    return str(folder)
