"""Training groups from a split's train users: up to K previous items → the next item.

Negatives never include an excluded item (cold items, the held-out domain), so nothing
held out ever appears in training text; few-shot cases are the one deliberate exception.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from coldstart_peft.data.neighbours import cobought_neighbours, text_neighbours
from coldstart_peft.data.splits import ColdStartSplit, sample_negatives
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import SplitError
from coldstart_peft.examples import TrainGroup
from coldstart_peft.progress import tracked

HARD_NEGATIVE_SOURCES = ("domain", "text", "cooccurrence")
"""Where hard negatives come from: the positive's own domain, its nearest items by TF-IDF text, or
what training users bought with the context's items."""


def training_groups(
    split: ColdStartSplit,
    k: int | None = None,
    n_negatives: int = 4,
    hard_negative_fraction: float = 0.0,
    hard_negatives_from: str = "domain",
    seed: int = 0,
    serializer: TextSerializer | None = None,
    max_per_user: int | None = None,
    max_groups: int | None = None,
) -> list[TrainGroup]:
    """One group per (train user, position): context of up to ``k`` previous items, the next item, negatives.

    Args:
        split: the cold-start split; only its training sequences and few-shot cases are used.
        k: context length; defaults to the split's ``k`` so training matches evaluation.
        n_negatives: negatives per group, drawn uniformly from allowed items the user never touched.
        hard_negative_fraction: share of those negatives that are hard, drawn as ``hard_negatives_from`` says.
        hard_negatives_from: ``"domain"``: uniformly from the positive's own domain; ``"text"``: from
            the positive's nearest items by TF-IDF cosine over item text
            (:data:`~coldstart_peft.data.neighbours.TEXT_NEIGHBOURS` of them), the negatives a lexical
            ranker confuses with it; ``"cooccurrence"``: from the items training users bought most
            often with the context's items (:func:`~coldstart_peft.data.neighbours.cobought_neighbours`,
            the positive's own when the context has none, its domain when neither has any), the
            negatives the co-occurrence prior ranks high. Few-shot groups draw from the held-out
            domain either way.
        seed: seed of the sampling.
        serializer: text templates; defaults to ``TextSerializer()``.
        max_per_user: keep at most this many positions per user (the earliest, the cold-start regime).
        max_groups: stop after this many groups (few-shot groups always kept).

    Returns:
        Groups with the positive first, ``labels = [1, 0, ...]``, ``domain`` and ``item_ids`` set.

    Example:
        >>> groups = training_groups(split, n_negatives=4, hard_negative_fraction=0.5, hard_negatives_from="text")
    """
    if n_negatives < 0 or not 0.0 <= hard_negative_fraction <= 1.0:
        raise SplitError("n_negatives must be >= 0 and hard_negative_fraction in [0, 1]")
    if hard_negatives_from not in HARD_NEGATIVE_SOURCES:
        raise SplitError(f"hard_negatives_from must be one of {', '.join(HARD_NEGATIVE_SOURCES)}, "
                         f"got {hard_negatives_from!r}")
    k = split.config.get("k", 3) if k is None else k
    if k < 0:
        raise SplitError(f"the training context length k must be >= 0 (0 for no context), got {k}")
    serializer = serializer or TextSerializer()
    dataset, excluded = split.dataset, set(split.excluded_items)
    pool = sorted(i for i in dataset.items if i not in excluded)
    by_domain: dict[str, list[str]] = defaultdict(list)
    for item_id in pool:
        by_domain[dataset.items[item_id].domain].append(item_id)
    full = dataset.sequences()
    rng = np.random.default_rng([seed, 5])
    n_hard = int(round(hard_negative_fraction * n_negatives))
    neighbours: dict[str, list[str]] = {}
    if n_hard and hard_negatives_from == "text":
        neighbours = text_neighbours({i: serializer.item(dataset.items[i]) for i in pool})
    bought: dict[str, list[str]] = {}
    if n_hard and hard_negatives_from == "cooccurrence":
        bought = cobought_neighbours(split.train_sequences(), allowed=pool)

    def hard_pool_of(context: list[str], target: str) -> list[str]:
        if bought:
            near = list(dict.fromkeys(i for c in context for i in bought.get(c, ()))) or bought.get(target)
            if near:
                return near
        if neighbours:
            return neighbours[target]
        return by_domain[dataset.items[target].domain]

    def group(user: str, context: list[str], target: str, negative_pool: list[str], hard_pool: list[str]) -> TrainGroup:
        seen = set(full.get(user, ())) | {target}
        negatives = sample_negatives(rng, hard_pool, seen, n_hard) if n_hard else []
        negatives += sample_negatives(rng, negative_pool, seen | set(negatives), n_negatives - len(negatives))
        ids = [target, *negatives]
        return TrainGroup(
            user_text=serializer.user([dataset.items[i] for i in context], attributes=dataset.user_attributes.get(user)),
            item_texts=[serializer.item(dataset.items[i]) for i in ids],
            labels=[1.0] + [0.0] * len(negatives),
            domain=dataset.items[target].domain,
            item_ids=ids,
            context_ids=list(context),
        )

    groups: list[TrainGroup] = []
    start = 1 if k else 0
    sequences = split.train_sequences()
    for user, seq in tracked(sequences.items(), "training groups", total=len(sequences), unit="user"):
        positions = range(start, len(seq))
        for t in list(positions)[:max_per_user]:
            if max_groups is not None and len(groups) >= max_groups:
                break
            target, context = seq[t], seq[max(0, t - k) : t] if k else []
            groups.append(group(user, context, target, pool, hard_pool_of(context, target)))
    # Few-shot cases teach the held-out domain, so their negatives come from that domain too.
    domain_pool = sorted(split.excluded_items)
    groups += [group(r.user_id, r.context, r.target, domain_pool, domain_pool) for r in split.few_shot]
    return groups
