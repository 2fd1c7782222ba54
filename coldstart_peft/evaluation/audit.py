"""How easy a split's test targets are for signals that need no language model.

Predicting a cold user's next item from their first clicks can be much easier than the warm
next-item task the field reports, when early purchases come in bought-together bursts: an
item-to-item table then reads the answer off the context. Every cold-user result should say
how much of the test set is of that kind.
"""

from __future__ import annotations

from collections import defaultdict

from coldstart_peft.data.splits import ColdStartSplit


def target_audit(split: ColdStartSplit, which: str = "test", window: int | None = None) -> dict[str, float | int]:
    """Shares of ``which`` cases whose target a co-occurrence table or a repeat rule would find.

    Args:
        split: the cold-start split (training users are the only ones counted).
        which: ``"valid"`` or ``"test"``.
        window: the context length the priors count co-occurrence within; defaults to the
            split's ``k``.

    Returns:
        ``{"cases", "target_in_context", "cooccurs_same_user", "cooccurs_in_window",
        "target_unseen_in_training"}``: the count of cases, then shares of them: the target is
        one of the context items (a repeat purchase; such cases are kept); some training user
        bought the target and a context item; some training user bought the target within
        ``window`` items after a context item (what the co-occurrence prior counts); no training
        user bought the target at all.
    """
    records = split.valid if which == "valid" else split.test
    window = window if window is not None else split.config.get("k", 3)
    buyers: dict[str, set[str]] = defaultdict(set)
    after: dict[str, set[str]] = defaultdict(set)  # item -> items bought within `window` before it
    for user, sequence in split.train_sequences().items():
        for t, item in enumerate(sequence):
            buyers[item].add(user)
            after[item].update(sequence[max(0, t - window) : t])
    n = len(records)
    if not n:
        return {"cases": 0}
    # Before any lookup below: indexing the defaultdicts adds keys, and would make every target look bought.
    unseen = sum(r.target not in buyers for r in records)
    repeat = sum(r.target in r.context for r in records)
    same_user = sum(any(buyers[r.target] & buyers[c] for c in r.context if c != r.target) for r in records)
    # Symmetric, as the prior's table is: either item may have come first.
    in_window = sum(any(c in after[r.target] or r.target in after[c] for c in r.context if c != r.target) for r in records)
    return {
        "cases": n,
        "target_in_context": repeat / n,
        "cooccurs_same_user": same_user / n,
        "cooccurs_in_window": in_window / n,
        "target_unseen_in_training": unseen / n,
    }
