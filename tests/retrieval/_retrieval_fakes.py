"""Stand-ins for tests of retrieval: an encoder whose rankings are known in advance, tiny adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from coldstart_peft import apply_method, build_scorer, create_host, make_method, save_adapter
from coldstart_peft.data.schema import Item

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gold", "grey"]
KINDS = ["lipstick", "shampoo", "brush", "cream", "perfume", "soap"]
HOST = create_host(load_entrypoints=False)


class ColourEncoder:
    """Embeds a text as its normalized colour-word counts, so a user who clicked red items gets red items."""

    def __init__(self):
        self.scale = torch.tensor(2.0)
        self.calls = 0

    def encode(self, texts, batch_size=128, progress=False):
        self.calls += 1
        vectors = torch.full((len(texts), len(COLOURS) + 1), 0.0)
        vectors[:, -1] = 0.01  # a text without colours still has a direction
        for row, text in enumerate(texts):
            for word in text.lower().replace(";", " ").replace("|", " ").split():
                if word in COLOURS:
                    vectors[row, COLOURS.index(word)] += 1.0
        return F.normalize(vectors, dim=-1)


class PriceReranker:
    """Scores an item by the price written in its text (cheapest first), ignoring the user."""

    def __init__(self):
        self.pairs = []

    def score(self, user_texts, item_texts):
        self.pairs.append((list(user_texts), list(item_texts)))
        return np.array([-float(text.split("$")[1]) for text in item_texts])


def colour_catalog() -> dict[str, Item]:
    """48 items, one per (colour, kind), with distinct prices and a domain per kind."""
    items = {}
    for c, colour in enumerate(COLOURS):
        for k, kind in enumerate(KINDS):
            item_id = f"I{c}{k}"
            items[item_id] = Item(item_id, title=f"{colour} {kind}", brand="acme", categories=("Beauty", kind.title()),
                                  price=float(1 + c * len(KINDS) + k), domain=kind.title())  # fmt: skip
    return items


def tiny_bi_encoder(tiny_base: str):
    """A bi-encoder on the tiny BERT with LoRA applied (untrained but not identity)."""
    torch.manual_seed(0)
    scorer = build_scorer("bi-encoder", tiny_base, {"max_length": 48}, host=HOST)
    apply_method(scorer, make_method("lora", {"r": 2, "alpha": 4, "dropout": 0.0}, host=HOST))
    with torch.no_grad():
        for name, parameter in scorer.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.1)
    scorer.eval()
    return scorer


def save_tiny_adapter(tiny_base: str, directory: Path) -> Path:
    """Save :func:`tiny_bi_encoder` as an adapter folder."""
    return save_adapter(tiny_bi_encoder(tiny_base), directory)
