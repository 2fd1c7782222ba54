"""Small helpers for the adapter-bank tests: tiny scorers with non-identity adapter weights."""

from __future__ import annotations

import torch

from coldstart_peft import apply_method, build_scorer, create_host
from coldstart_peft.bank import AdapterBank, save_bank

HOST = create_host(load_entrypoints=False)
SCORER_CONFIG = {"max_length": 48, "dropout": 0.0}
DOMAINS = ["Hair Care", "Makeup", "Tools & Accessories"]
USERS = ["likes red lipstick ; clicked red soap", "likes blue cream", "likes gold brush ; clicked gold soap"] * 4
ITEMS = ["red cream", "blue soap", "gold brush perfume", "blue cream", "pink perfume", "grey brush"] * 2
MIXED = ["Hair Care", "Makeup", "Tools & Accessories", "Makeup", "Hair Care", "Tools & Accessories"] * 2


def tiny_scorer(tiny_base: str, method: str, seed: int, std: float = 0.3):
    """A cross-encoder with ``method`` applied and every trainable weight moved off its init.

    Perturbing matters: LoRA starts with B = 0 and bottleneck adapters near the identity, so an
    unperturbed adapter scores like the base model and a routing bug would go unnoticed.
    """
    torch.manual_seed(seed)
    scorer = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    apply_method(scorer, HOST.method(method)({}), total_steps=10)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in scorer.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
    scorer.eval()
    scorer.precision = "fp32"
    return scorer


def tiny_bank(root, tiny_base: str, method: str = "lora", with_global: bool = True):
    """Save a bank of three domains (and a global adapter); return ``(domain scorers, global scorer)``."""
    scorers = {name: tiny_scorer(tiny_base, method, seed) for seed, name in enumerate(DOMAINS, start=1)}
    global_scorer = tiny_scorer(tiny_base, method, 99) if with_global else None
    save_bank(root, scorers, global_scorer)
    return scorers, global_scorer


def load_fp32(root, **options) -> AdapterBank:
    """``AdapterBank.load(root, **options)`` scoring in fp32, so scores compare within 1e-5 on any CPU."""
    bank = AdapterBank.load(root, **options)
    bank.scorer.precision = "fp32"
    return bank


def base_scores(tiny_base: str, users=USERS, items=ITEMS):
    """Scores of the bare base model with the scorer's initial head."""
    scorer = build_scorer("cross-encoder", tiny_base, SCORER_CONFIG, host=HOST)
    scorer.eval()
    scorer.precision = "fp32"
    return scorer.score(users, items)
