"""Building the three cold-start protocols: cold user, cold item, cold domain.

All randomness comes from ``numpy.random.default_rng`` streams derived from one seed, one
stream per purpose (users, items, valid negatives, test negatives, few-shot picks), so
capping the number of test users never changes which negatives another user gets.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset
from coldstart_peft.data.splits import SPLIT_KINDS, CaseRecord, ColdStartSplit, sample_negatives
from coldstart_peft.errors import SplitError, UnknownNameError

K_CHOICES = (0, 1, 3, 5)
"""Context sizes the protocol reports; any non-negative K works."""


def _partition(users: list[str], seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[list[str], list[str], list[str]]:
    """Split ``users`` into disjoint train/valid/test lists by a seeded permutation."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise SplitError(f"fractions must be three non-negative shares summing to 1, got {fractions}")
    order = [users[i] for i in np.random.default_rng([seed, 0]).permutation(len(users))]
    n_train = int(round(fractions[0] * len(order)))
    n_valid = int(round(fractions[1] * len(order)))
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]


NEGATIVE_SAMPLING = ("uniform", "popularity")
"""How sampled negatives are drawn: uniformly from the pool, or in proportion to training-user counts."""


def _case(rng, user, sequence, t, context, pool, n_negatives, segment, domain, weights=None) -> CaseRecord:
    negatives = sample_negatives(rng, pool, set(sequence), n_negatives, weights)
    candidates = [sequence[t], *negatives]
    candidates = [candidates[i] for i in rng.permutation(len(candidates))]
    return CaseRecord(user, list(context), sequence[t], candidates, segment, domain)


def _check(k: int, n_negatives: int | None, negative_sampling: str = "uniform") -> None:
    if negative_sampling not in NEGATIVE_SAMPLING:
        raise SplitError(f"negative_sampling must be one of {', '.join(NEGATIVE_SAMPLING)}, not {negative_sampling!r}")
    if k < 0:
        raise SplitError(f"k (known items per cold user) must be >= 0, got {k}")
    if n_negatives is not None and n_negatives < 1:
        raise SplitError(f"n_negatives must be >= 1 or None for full-catalog ranking, got {n_negatives}")


def _weights(negative_sampling: str, dataset: Dataset, train_users, pool: list[str]) -> np.ndarray | None:
    """Per pool item, how often the split's training users interacted with it (``None`` for uniform).

    Held-out items count too: training never sees them, but their popularity among training
    users is what a popularity-sampled negative of a cold item is drawn by.
    """
    if negative_sampling == "uniform":
        return None
    sequences = dataset.sequences()
    counts = Counter(i for u in train_users for i in sequences[u])
    return np.array([counts.get(i, 0) for i in pool], dtype=np.float64)


def _record_sampling(config: dict, negative_sampling: str) -> dict:
    # Left out when uniform, so splits made before the option keep their fingerprints.
    return config if negative_sampling == "uniform" else {**config, "negative_sampling": negative_sampling}


def cold_user_split(
    dataset: Dataset, k: int = 3, n_negatives: int | None = 99, seed: int = 0,
    fractions=(0.8, 0.1, 0.1), max_test_users: int | None = None, max_valid_users: int | None = None,
    negative_sampling: str = "uniform",
) -> ColdStartSplit:  # fmt: skip
    """Users 80/10/10; a valid/test user shows its first ``k`` items and must rank its (k+1)-th.

    Args:
        dataset: the dataset.
        k: known items per cold user (0 = demographics/query only).
        n_negatives: negatives drawn (as ``negative_sampling`` says) from items the user never interacted with;
            ``None`` ranks against the whole catalog.
        seed: the seed of every random choice.
        fractions: train/valid/test shares of users.
        max_test_users: evaluate only the first N eligible test users (in permutation order).
        max_valid_users: likewise for validation users; defaults to ``max_test_users``.
        negative_sampling: ``"uniform"``, or ``"popularity"`` to draw negatives in proportion to
            how often training users interacted with each item (recorded in ``config``).

    Returns:
        The split; users with at most ``k`` interactions cannot be cold users and are skipped.

    Example:
        >>> split = cold_user_split(load_dataset("beauty"), k=3, max_test_users=1000)
        >>> cases = split.ranking_cases("test")
    """
    _check(k, n_negatives, negative_sampling)
    sequences = dataset.sequences()
    train, valid, test = _partition(sorted(sequences), seed, fractions)
    pool = sorted(dataset.items)
    weights = _weights(negative_sampling, dataset, train, pool)
    max_valid_users = max_valid_users if max_valid_users is not None else max_test_users

    def cases(users, stream, limit):
        rng, out = np.random.default_rng([seed, stream]), []
        for user in users:
            seq = sequences[user]
            if len(seq) > k and (limit is None or len(out) < limit):
                out.append(_case(rng, user, seq, k, seq[:k], pool, n_negatives, "cold-user", dataset.items[seq[k]].domain, weights))
        return out

    config = {"k": k, "n_negatives": n_negatives, "seed": seed, "fractions": list(fractions),
              "max_test_users": max_test_users, "max_valid_users": max_valid_users}  # fmt: skip
    config = _record_sampling(config, negative_sampling)
    return ColdStartSplit("cold-user", dataset, config, train, valid, test,
                          valid=cases(valid, 1, max_valid_users), test=cases(test, 2, max_test_users))  # fmt: skip


def cold_item_split(
    dataset: Dataset, k: int = 3, n_negatives: int | None = 99, seed: int = 0, item_fraction: float = 0.1,
    negative_pool: str = "cold", max_test_users: int | None = None, negative_sampling: str = "uniform",
) -> ColdStartSplit:  # fmt: skip
    """Hold ``item_fraction`` of items out of all training; evaluate each user's first cold item.

    Every user's interactions with warm items are training data; a user's case is its first
    interaction with a cold item (after at least one earlier item when ``k > 0``), with the
    last ``k`` warm items before it as context. Users with a case split 50/50 into valid/test.

    Args:
        dataset, k, n_negatives, seed, max_test_users, negative_sampling: as in :func:`cold_user_split`
            (every user trains on warm items, so popularity counts every user).
        item_fraction: share of the catalog held out as cold items.
        negative_pool: ``"cold"`` draws negatives among cold items (popularity cannot tell them
            apart, so only content helps); ``"all"`` draws from the whole catalog.

    Returns:
        The split; ``excluded_items`` holds the cold items.
    """
    _check(k, n_negatives, negative_sampling)
    if not 0 < item_fraction < 1:
        raise SplitError(f"item_fraction must be in (0, 1), got {item_fraction}")
    catalog = sorted(dataset.items)
    order = np.random.default_rng([seed, 3]).permutation(len(catalog))
    cold = sorted(catalog[i] for i in order[: max(1, int(round(item_fraction * len(catalog))))])
    cold_set = set(cold)
    pool = {"cold": cold, "all": catalog}.get(negative_pool)
    if pool is None:
        raise SplitError(f"negative_pool must be 'cold' or 'all', not {negative_pool!r}")
    sequences = dataset.sequences()
    users = sorted(sequences)
    weights = _weights(negative_sampling, dataset, users, pool)
    eligible = []
    for user in users:
        seq = sequences[user]
        first = next((t for t in range(1 if k else 0, len(seq)) if seq[t] in cold_set), None)
        if first is not None:
            eligible.append((user, first))
    half = len(eligible) // 2
    picked = [eligible[i] for i in np.random.default_rng([seed, 0]).permutation(len(eligible))]

    def cases(chosen, stream, limit):
        rng, out = np.random.default_rng([seed, stream]), []
        for user, t in chosen[:limit]:
            seq = sequences[user]
            context = [i for i in seq[:t] if i not in cold_set][-k:] if k else []
            out.append(_case(rng, user, seq, t, context, pool, n_negatives, "cold-item", dataset.items[seq[t]].domain, weights))
        return out

    config = {"k": k, "n_negatives": n_negatives, "seed": seed, "item_fraction": item_fraction,
              "negative_pool": negative_pool, "max_test_users": max_test_users}  # fmt: skip
    config = _record_sampling(config, negative_sampling)
    return ColdStartSplit(
        "cold-item", dataset, config, users, [u for u, _ in picked[:half]], [u for u, _ in picked[half:]],
        excluded_items=cold, valid=cases(picked[:half], 1, max_test_users), test=cases(picked[half:], 2, max_test_users),
    )  # fmt: skip


def cold_domain_split(
    dataset: Dataset, domain: str | None = None, k: int = 3, n_negatives: int | None = 99, seed: int = 0,
    few_shot: int = 0, negative_pool: str = "domain", fractions=(0.8, 0.1, 0.1), max_test_users: int | None = None,
    negative_sampling: str = "uniform",
) -> ColdStartSplit:  # fmt: skip
    """Remove one domain from training; evaluate valid/test users' first item in it.

    Args:
        dataset, k, n_negatives, seed, fractions, max_test_users, negative_sampling: as in
            :func:`cold_user_split` (popularity counts the training users' held-out-domain items too).
        domain: the held-out domain; ``None`` picks the most common one (largest test set).
        few_shot: training cases from the held-out domain added back (0/16/64/256), drawn
            from train users' interactions.
        negative_pool: ``"domain"`` draws negatives inside the held-out domain; ``"all"`` from the catalog.

    Returns:
        The split; ``excluded_items`` holds the domain's items and ``few_shot`` the added cases.

    Raises:
        UnknownNameError: ``domain`` is not one of the dataset's domains.
    """
    _check(k, n_negatives, negative_sampling)
    counts = Counter(item.domain for item in dataset.items.values() if item.domain != FALLBACK_DOMAIN)
    domain = domain or (counts.most_common(1)[0][0] if counts else FALLBACK_DOMAIN)
    if domain not in dataset.domains:
        raise UnknownNameError("domain", domain, dataset.domains)
    held = sorted(i for i, item in dataset.items.items() if item.domain == domain)
    held_set = set(held)
    pool = {"domain": held, "all": sorted(dataset.items)}.get(negative_pool)
    if pool is None:
        raise SplitError(f"negative_pool must be 'domain' or 'all', not {negative_pool!r}")
    sequences = dataset.sequences()
    train, valid, test = _partition(sorted(sequences), seed, fractions)
    weights = _weights(negative_sampling, dataset, train, pool)
    start = 1 if k else 0

    def first_in_domain(seq):
        return next((t for t in range(start, len(seq)) if seq[t] in held_set), None)

    def cases(users, stream, limit):
        rng, out = np.random.default_rng([seed, stream]), []
        for user in users:
            seq, t = sequences[user], first_in_domain(sequences[user])
            if t is not None and (limit is None or len(out) < limit):
                out.append(_case(rng, user, seq, t, seq[max(0, t - k) : t] if k else [], pool, n_negatives, "cold-domain", domain,
                                 weights))
        return out

    positions = [(u, t) for u in train for t in range(start, len(sequences[u])) if sequences[u][t] in held_set]
    picks = np.random.default_rng([seed, 4]).permutation(len(positions))[:few_shot]
    shots = [
        CaseRecord(u, sequences[u][max(0, t - k) : t] if k else [], sequences[u][t], [sequences[u][t]], "few-shot", domain)
        for u, t in (positions[i] for i in sorted(picks))
    ]
    config = {"k": k, "n_negatives": n_negatives, "seed": seed, "domain": domain, "few_shot": few_shot,
              "negative_pool": negative_pool, "fractions": list(fractions), "max_test_users": max_test_users}  # fmt: skip
    config = _record_sampling(config, negative_sampling)
    return ColdStartSplit("cold-domain", dataset, config, train, valid, test, excluded_items=held,
                          valid=cases(valid, 1, max_test_users), test=cases(test, 2, max_test_users), few_shot=shots)  # fmt: skip


def make_split(dataset: Dataset, kind: str = "cold-user", **options) -> ColdStartSplit:
    """Build a split by name (``"cold-user"``, ``"cold-item"``, ``"cold-domain"``) with its options.

    Raises:
        UnknownNameError: ``kind`` is not a known split.
    """
    builders = {"cold-user": cold_user_split, "cold-item": cold_item_split, "cold-domain": cold_domain_split}
    if kind not in builders:
        raise UnknownNameError("split", kind, SPLIT_KINDS)
    return builders[kind](dataset, **options)
