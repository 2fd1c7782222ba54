"""Refuse to evaluate an adapter on another split of the data it was trained on.

A split with another seed (or protocol) of the same dataset puts different users on the test
side, most of them users the adapter trained on, and the numbers look wonderful. The manifest
of an adapter trained on a split records which users training saw (its partition
fingerprint; older adapters only the split's fingerprint), so the evaluated split can be
compared with it before a single case is scored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.errors import SplitMismatchError

logger = logging.getLogger(__name__)


def trained_on_this_data(facts: Mapping[str, Any], split: ColdStartSplit) -> bool:
    """Whether the adapter whose manifest ``extra`` is ``facts`` was trained on a split of ``split``'s dataset."""
    return facts.get("data_fingerprint") == split.dataset.fingerprint() and (
        "partition_fingerprint" in facts or "split_fingerprint" in facts
    )


def same_partition(facts: Mapping[str, Any], split: ColdStartSplit) -> bool:
    """Whether ``split`` keeps the training users of the recorded one out of its test side."""
    if "partition_fingerprint" in facts:
        return facts["partition_fingerprint"] == split.partition_fingerprint()
    return facts.get("split_fingerprint") == split.fingerprint()  # adapters saved before partitions were recorded


def check_evaluation_split(facts: Mapping[str, Any], split: ColdStartSplit, adapter: str, allow_mismatch: bool = False) -> bool:
    """Raise (or, with ``allow_mismatch``, warn loudly) when ``split`` is not the one the adapter trained on.

    Args:
        facts: the ``extra`` field of the adapter's manifest.
        split: the split about to be evaluated.
        adapter: the adapter folder, for the message.
        allow_mismatch: downgrade the refusal to a warning (``--allow-split-mismatch``).

    Returns:
        ``True`` when the split is the trained one or unrelated (another dataset, a pairs-trained
        adapter); ``False`` when it differs and ``allow_mismatch`` let it through.

    Raises:
        SplitMismatchError: the split differs from the recorded one and ``allow_mismatch`` is false.
    """
    if not isinstance(facts, Mapping) or not trained_on_this_data(facts, split) or same_partition(facts, split):
        return True
    message = (
        f"adapter {adapter} was trained on a {facts.get('split', '?')} split of {split.dataset.name!r} with seed "
        f"{facts.get('seed', '?')} (split {facts.get('split_fingerprint', '?')}), but the split evaluated now is a "
        f"{split.kind} split with seed {split.config.get('seed', '?')} (split {split.fingerprint()}): its test users "
        "include users the adapter trained on, so the scores would be inflated. Evaluate with the training split's "
        "--split, --seed and --k-context"
    )
    if not allow_mismatch:
        raise SplitMismatchError(message + ", or pass --allow-split-mismatch to score it anyway")
    logger.warning("WARNING: %s. Scoring anyway (--allow-split-mismatch): do not report these numbers", message)
    return False
