"""Turning items and user contexts into text: the seed's attr_u ⊕ attr_i.

Every field is cut to its own budget before the parts are joined, so one long title can
never push the candidate item out of the encoder's 256-token window. Budgets are
whitespace words by default (cheap, no tokenizer needed); pass a tokenizer to count
wordpieces instead.

Defaults (measured on Beauty with the MiniLM tokenizer): titles have a median of 9 words
(15 wordpieces), a 95th percentile of 18 words and a maximum of 137; a 24-word title budget
keeps 97% of titles whole. A five-item context at 12 words per title plus a full candidate
measured 123 wordpieces median and 157 at most over 500 random pairs, well inside 256.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from coldstart_peft.data.schema import Item
from coldstart_peft.errors import ConfigError

ITEM_LABELS = {"title": "", "brand": "Brand", "category": "Category", "price": "Price", "description": "Description"}
"""Item fields that can be serialized and the label each gets (the title goes unlabeled, first)."""


def truncate(text: str, budget: int | None, tokenizer=None) -> str:
    """Cut ``text`` to ``budget`` whitespace words, or wordpieces when ``tokenizer`` is given.

    Args:
        text: the text.
        budget: the maximum length; ``None`` keeps everything.
        tokenizer: a Hugging Face tokenizer to count wordpieces with.

    Example:
        >>> truncate("a very long product title", 3)
        'a very long'
    """
    text = " ".join(str(text).split())
    if budget is None:
        return text
    if tokenizer is None:
        words = text.split()
        return text if len(words) <= budget else " ".join(words[:budget])
    pieces = tokenizer.tokenize(text)
    return text if len(pieces) <= budget else tokenizer.convert_tokens_to_string(pieces[:budget])


@dataclass
class TextConfig:
    """How items and users become text.

    Args:
        item_fields: item fields in output order (keys of :data:`ITEM_LABELS`).
        budgets: per-field budget in words (or wordpieces with a tokenizer); ``history_title``
            is the budget for each title in the user context.
        max_history: most recent items kept in the user context (oldest dropped first).
        skip_category_root: drop the first category level (``"Beauty"``), the same for every item.
        history_label: prefix of the user's recent items.
        history_extras: item fields (keys of :data:`ITEM_LABELS` other than the title) added in
            brackets after each title in the user context, e.g. ``("brand",)``; each keeps its budget.
        include_demographics: add user attributes (MovieLens age, gender, occupation) when present.
        separator: joins the labeled parts.
    """

    item_fields: tuple[str, ...] = ("title", "brand", "category", "price")
    budgets: dict[str, int] = field(
        default_factory=lambda: {"title": 24, "brand": 6, "category": 10, "description": 32,
                                 "history_title": 12, "query": 24, "demographics": 12}
    )  # fmt: skip
    max_history: int = 5
    skip_category_root: bool = True
    history_label: str = "Recently bought"
    history_extras: tuple[str, ...] = ()
    include_demographics: bool = True
    separator: str = "; "

    def __post_init__(self):
        self.history_extras = tuple(self.history_extras)
        unknown = sorted({*self.item_fields, *self.history_extras} - set(ITEM_LABELS))
        if unknown or "title" in self.history_extras:
            raise ConfigError(
                f"unknown item fields {unknown} (or 'title' in history_extras, where the title is always first); "
                f"choose from {sorted(ITEM_LABELS)}"
            )


class TextSerializer:
    """Serialize items and user contexts under a :class:`TextConfig`.

    Args:
        config: templates and budgets; defaults to ``TextConfig()``.
        tokenizer: optional tokenizer so budgets count wordpieces.

    Example:
        >>> text = TextSerializer()
        >>> text.item(Item("1", title="Lip balm", brand="Acme", price=3.5))
        'Lip balm; Brand: Acme; Price: $3.50'
    """

    def __init__(self, config: TextConfig | None = None, tokenizer=None):
        self.config = config or TextConfig()
        self.tokenizer = tokenizer
        self._item_cache: dict[str, str] = {}

    def _cut(self, text: str, field_name: str) -> str:
        return truncate(text, self.config.budgets.get(field_name), self.tokenizer)

    def _field(self, item: Item, name: str) -> str:
        if name == "title":
            return item.title
        if name == "brand":
            return item.brand or ""
        if name == "category":
            path = item.categories[1:] if self.config.skip_category_root and len(item.categories) > 1 else item.categories
            return " > ".join(path)
        if name == "price":
            # Items built in code skip the loaders' checks; "$nan" or "$-3.00" would only mislead the model.
            valid = item.price is not None and math.isfinite(item.price) and item.price >= 0
            return f"${abs(item.price):.2f}" if valid else ""  # abs: -0.0 passes `>= 0` and prints "$-0.00"
        if name == "description":
            return item.description or ""
        raise KeyError(f"unknown item field {name!r}; known: {sorted(ITEM_LABELS)}")

    def item(self, item: Item) -> str:
        """Serialize one item: its fields in configured order, each cut to its budget, empty ones left out."""
        cached = self._item_cache.get(item.item_id)
        if cached is not None:
            return cached
        parts = []
        for name in self.config.item_fields:
            value = self._cut(self._field(item, name), name)
            if value:
                parts.append(f"{ITEM_LABELS[name]}: {value}" if ITEM_LABELS[name] else value)
        # An item with no fields falls back to its id, cut like a title: ids from messy catalogs can be anything.
        text = self.config.separator.join(parts) or self._cut(item.item_id, "title") or "Item"
        self._item_cache[item.item_id] = text
        return text

    def _history_entry(self, item: Item) -> str:
        title = self._cut(item.title or item.item_id, "history_title")
        extras = [self._cut(self._field(item, name), name) for name in self.config.history_extras]
        extras = [value for value in extras if value]
        return f"{title} ({', '.join(extras)})" if extras else title

    def demographics(self, attributes: dict | None) -> str:
        """Serialize user attributes, e.g. ``"age 24, male, technician"``; empty when there are none."""
        if not attributes:
            return ""
        parts = []
        if attributes.get("age") is not None:
            parts.append(f"age {attributes['age']}")
        parts += [str(attributes[k]) for k in ("gender", "occupation") if attributes.get(k)]
        return self._cut(", ".join(parts), "demographics")

    def user(self, history: Sequence[Item], query: str | None = None, attributes: dict | None = None) -> str:
        """Serialize a user context: recent titles (most recent last), then query, then demographics.

        Args:
            history: the user's known items in chronological order.
            query: an optional search query.
            attributes: optional user attributes.

        Returns:
            The context text; ``"New user"`` when nothing is known (K = 0 without demographics).
        """
        parts = []
        recent = list(history)[-self.config.max_history :] if self.config.max_history else []
        titles = [self._history_entry(item) for item in recent]
        if titles:
            parts.append(f"{self.config.history_label}: " + " | ".join(titles))
        if query:
            parts.append("Query: " + self._cut(query, "query"))
        if self.config.include_demographics:
            described = self.demographics(attributes)
            if described:
                parts.append("User: " + described)
        return self.config.separator.join(parts) or "New user"
