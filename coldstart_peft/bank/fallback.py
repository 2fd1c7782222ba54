"""What serves a domain the bank has no adapter for: the documented fallback chain.

A domain is *unknown* when the bank never heard of it, and *cold* when the manifest lists it
but it had too little data for an adapter of its own. Both walk the same chain, in the order
the config gives, and take the first step that applies:

``"global"``
    the shared global adapter, when the bank has one.
``"nearest"``
    a weighted combination of the adapters of the ``nearest_k`` most similar trained domains,
    built once with peft's ``add_weighted_adapter`` (``cat``: the exact weighted sum of the
    LoRA updates) and a weighted average of their heads. LoRA only. Similarity is the cosine of
    the base model's embeddings of the domain names, unless ``neighbours`` names them.
``"base"``
    the base model without any adapter (and the scorer's initial head: for the similarity
    head, the encoder's zero-shot ranking).

``"base"`` always applies, and is appended when the chain leaves it out, so routing never fails.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch

from coldstart_peft.errors import ConfigError

STEPS = ("global", "nearest", "base")


@dataclasses.dataclass
class FallbackConfig:
    """How the bank serves unknown and cold domains.

    Args:
        chain: steps tried in order, from ``"global"``, ``"nearest"``, ``"base"``.
        nearest_k: trained domains combined by the ``"nearest"`` step.
        neighbours: explicit weights per domain, e.g. ``{"Nails": {"Makeup": 0.7, "Skin Care": 0.3}}``;
            overrides name similarity for the domains it lists.
        temperature: softmax temperature turning name similarities into weights (lower: sharper).
    """

    chain: tuple[str, ...] = ("global", "nearest", "base")
    nearest_k: int = 2
    neighbours: Mapping[str, Mapping[str, float]] | None = None
    temperature: float = 0.1

    def __post_init__(self) -> None:
        self.chain = tuple(self.chain)
        unknown = [s for s in self.chain if s not in STEPS]
        if unknown:
            raise ConfigError(f"unknown fallback step(s) {unknown}; choose from {', '.join(STEPS)}")
        if self.nearest_k < 1:
            raise ConfigError(f"nearest_k must be at least 1, got {self.nearest_k}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if "base" not in self.chain:
            self.chain = (*self.chain, "base")


@dataclasses.dataclass(frozen=True)
class Route:
    """Which adapter serves a domain, and why.

    Attributes:
        key: the adapter key (a domain's peft adapter name, ``"__global__"``, ``"__base__"``,
            or a combined adapter's name).
        reason: ``"domain"``, ``"global"``, ``"nearest"`` or ``"base"``.
        parts: for ``"nearest"``, the domains combined and their weights.
    """

    key: str
    reason: str
    parts: tuple[tuple[str, float], ...] = ()


def nearest_weights(
    domain: str, trained: Sequence[str], config: FallbackConfig, embed,
) -> dict[str, float]:  # fmt: skip
    """Weights of the trained domains closest to ``domain`` (summing to one).

    Args:
        domain: the domain without an adapter.
        trained: domains that have one.
        config: the fallback settings.
        embed: ``embed(texts) -> tensor`` of L2-normalised base-model embeddings.

    Returns:
        Up to ``config.nearest_k`` domains and their weights; empty if none is trained.
    """
    if config.neighbours and domain in config.neighbours:
        given = {d: float(w) for d, w in config.neighbours[domain].items() if d in trained and w > 0}
        total = sum(given.values())
        return {d: w / total for d, w in given.items()} if total else {}
    if not trained:
        return {}
    vectors = embed([domain, *trained])
    similarity = vectors[1:] @ vectors[0]
    k = min(config.nearest_k, len(trained))
    top = torch.topk(similarity, k)
    weights = torch.softmax(top.values / config.temperature, dim=0)
    return {trained[int(i)]: float(w) for i, w in zip(top.indices, weights)}
