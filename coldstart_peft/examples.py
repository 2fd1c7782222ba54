"""The two shapes of data the engine consumes: training groups and ranking cases.

Everything upstream (dataset loaders, splits, the demo world, a labeled-pairs file) is
turned into these, and everything downstream (training engine, evaluator, benchmarks)
reads only these, so a new data source needs no change to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coldstart_peft.errors import DataError


@dataclass
class TrainGroup:
    """One user context with the items scored against it.

    A pointwise example is a group of one item; a ranking example is one positive followed
    by sampled negatives, which lets listwise losses compare items of the same context.

    Args:
        user_text: the serialized user context (history titles, query, demographics).
        item_texts: serialized candidate items.
        labels: 1.0 for a positive, 0.0 for a negative, one per item.
        domain: the domain (product category) the group belongs to, if known.
        item_ids: ids of the items, when they come from a catalog (the priors key by them).
        context_ids: ids of the items in the user context, oldest first, when known.
    """

    user_text: str
    item_texts: list[str]
    labels: list[float]
    domain: str | None = None
    item_ids: list[str] | None = None
    context_ids: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.item_texts) != len(self.labels):
            raise DataError(f"{len(self.item_texts)} item texts but {len(self.labels)} labels; give one label per item")
        if not self.item_texts:
            raise DataError("a training group needs at least one item; drop users without candidates before training")


@dataclass
class RankingCase:
    """One evaluation query: a user context and candidates, exactly one of which is relevant.

    Args:
        user_text: the serialized user context.
        candidate_texts: serialized candidates, the positive among them.
        target: index of the positive in ``candidate_texts``.
        domain: domain of the positive item, for per-segment metrics and adapter routing.
        user_id: the user's id, when known.
        candidate_ids: ids of the candidates, when they come from a catalog.
        segment: free-form label for grouped reporting (``"cold-user"``, ``"cold-item"``...).
        extra: anything else a data source wants to carry.
        context_ids: ids of the items in the user context, oldest first, when known (the
            priors and the id baselines read them).
    """

    user_text: str
    candidate_texts: list[str]
    target: int = 0
    domain: str | None = None
    user_id: str | None = None
    candidate_ids: list[str] | None = None
    segment: str | None = None
    extra: dict = field(default_factory=dict)
    context_ids: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.candidate_texts:
            raise DataError("a ranking case needs at least one candidate (the positive); drop cases without candidates")
        if not 0 <= self.target < len(self.candidate_texts):
            raise DataError(f"target {self.target} is not an index of the {len(self.candidate_texts)} candidates")
