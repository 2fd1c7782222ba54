"""The result of a cold-start split: who trains, which cases are evaluated, saved as JSON.

A split stores ids only (users, context items, candidates), never text, so it is small,
diffable, and renders the same cases under any :class:`TextSerializer`. Its fingerprint
hashes the dataset and every case, so two runs with the same fingerprint evaluated on
exactly the same candidates.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from coldstart_peft.data.schema import Dataset
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import SplitError
from coldstart_peft.examples import RankingCase
from coldstart_peft.outputs import check_output_file, json_format, write_text_atomic

SPLIT_KINDS = ("cold-user", "cold-item", "cold-domain")
FORMAT_VERSION = 1
SPLIT_FORMAT = "coldstart-peft-split"
"""``format`` field of a saved split; kept out of the fingerprint so fingerprints of older splits still match."""
_SPLIT_KEYS = {"kind", "dataset_fingerprint", "config", "train_users", "valid_users", "test_users", "excluded_items",
               "valid", "test", "few_shot"}  # fmt: skip


def is_split_file(path: str | Path) -> bool:
    """Whether ``path`` holds a split saved by :meth:`ColdStartSplit.save` (older ones lack the ``format`` field)."""
    if json_format(path) == SPLIT_FORMAT:
        return True
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(payload, dict) and _SPLIT_KEYS <= set(payload)


@dataclass
class CaseRecord:
    """One evaluation query by ids.

    Args:
        user_id: the user.
        context: the known items, chronological (the first K of a cold user).
        target: the held-out item to find.
        candidates: target plus negatives, in presentation order.
        segment: ``"cold-user"``, ``"cold-item"`` or ``"cold-domain"``.
        domain: the target's domain.
    """

    user_id: str
    context: list[str]
    target: str
    candidates: list[str]
    segment: str
    domain: str


@dataclass
class ColdStartSplit:
    """Train users, held-out items and evaluation cases of one cold-start protocol.

    Args:
        kind: one of :data:`SPLIT_KINDS`.
        dataset: the dataset the ids refer to (not saved; pass it to :meth:`load`).
        config: the builder's arguments (seed, k, n_negatives...), saved for provenance.
        train_users: users whose (filtered) interactions training may use.
        valid_users: users for model selection (for example tuning the hybrid's λ).
        test_users: users for the reported numbers.
        excluded_items: items removed from all training data (cold items, the held-out domain).
        valid: validation cases.
        test: test cases.
        few_shot: extra training cases from the held-out domain (cold-domain only).
    """

    kind: str
    dataset: Dataset
    config: dict
    train_users: list[str]
    valid_users: list[str]
    test_users: list[str]
    excluded_items: list[str] = field(default_factory=list)
    valid: list[CaseRecord] = field(default_factory=list)
    test: list[CaseRecord] = field(default_factory=list)
    few_shot: list[CaseRecord] = field(default_factory=list)

    def train_sequences(self) -> dict[str, list[str]]:
        """Train users' chronological item ids with excluded items removed: all that training may see."""
        excluded = set(self.excluded_items)
        sequences = self.dataset.sequences()
        out = {u: [i for i in sequences[u] if i not in excluded] for u in self.train_users}
        return {u: s for u, s in out.items() if s}

    def popularity(self) -> Counter:
        """Interaction counts per item over the training sequences (the popularity baseline's prior)."""
        return Counter(i for seq in self.train_sequences().values() for i in seq)

    def candidate_pool(self) -> list[str]:
        """The items a full-catalog ranking ranks each target against, sorted.

        The pool the sampled negatives come from: the whole catalog for cold users (and for
        ``negative_pool="all"``), the cold items of a cold-item split, the held-out domain's
        items of a cold-domain split.
        """
        if self.kind == "cold-user" or self.config.get("negative_pool") == "all" or not self.excluded_items:
            return sorted(self.dataset.items)
        return sorted(self.excluded_items)

    def ranking_cases(self, which: str = "test", serializer: TextSerializer | None = None) -> list[RankingCase]:
        """Render ``valid`` or ``test`` records as :class:`RankingCase` objects.

        Args:
            which: ``"valid"`` or ``"test"``.
            serializer: text templates; defaults to ``TextSerializer()``.
        """
        if which not in ("valid", "test"):
            raise SplitError(f"which must be 'valid' or 'test', not {which!r}")
        records = self.valid if which == "valid" else self.test
        serializer = serializer or TextSerializer()
        items, attributes = self.dataset.items, self.dataset.user_attributes
        return [
            RankingCase(
                user_text=serializer.user([items[i] for i in r.context], attributes=attributes.get(r.user_id)),
                candidate_texts=[serializer.item(items[i]) for i in r.candidates],
                target=r.candidates.index(r.target),
                domain=r.domain,
                user_id=r.user_id,
                candidate_ids=list(r.candidates),
                segment=r.segment,
                context_ids=list(r.context),
            )
            for r in records
        ]

    def fingerprint(self) -> str:
        """A 16-hex-digit digest of the dataset, the configuration and every case."""
        digest = hashlib.sha256()
        digest.update(self.dataset.fingerprint().encode())
        payload = {k: v for k, v in self._payload().items() if k != "fingerprint"}
        digest.update(json.dumps(payload, sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def _payload(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "dataset": self.dataset.name,
            "dataset_fingerprint": self.dataset.fingerprint(),
            "config": self.config,
            "train_users": self.train_users,
            "valid_users": self.valid_users,
            "test_users": self.test_users,
            "excluded_items": self.excluded_items,
            "valid": [asdict(r) for r in self.valid],
            "test": [asdict(r) for r in self.test],
            "few_shot": [asdict(r) for r in self.few_shot],
        }

    def save(self, path: str | Path) -> str:
        """Write the split as JSON (ids only) and return its fingerprint.

        Raises:
            OverwriteRefusedError: ``path`` holds a file that is not a saved split.
            UnwritableOutputError: its folder cannot be written.
        """
        check_output_file(path, is_split_file, "split file")
        payload = self._payload()
        payload["fingerprint"] = self.fingerprint()
        payload["format"] = SPLIT_FORMAT
        write_text_atomic(path, json.dumps(payload))
        return payload["fingerprint"]

    def partition_fingerprint(self) -> str:
        """A 16-hex-digit digest of what training may see: the dataset, the kind, the train users, the excluded items.

        Two splits with the same partition put the same users on the training side, whatever
        their number of negatives or test users; an adapter evaluated on a split of another
        partition of the same data is scored on users it trained on.
        """
        payload = {"dataset": self.dataset.fingerprint(), "kind": self.kind, "train_users": sorted(self.train_users),
                   "excluded_items": sorted(self.excluded_items), "few_shot": sorted(r.user_id for r in self.few_shot)}  # fmt: skip
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def load(cls, path: str | Path, dataset: Dataset) -> ColdStartSplit:
        """Read a split saved by :meth:`save` and bind it to ``dataset``.

        Raises:
            SplitError: the dataset differs from the one the split was made on.
        """
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise SplitError(f"cannot read the split {path} ({type(exc).__name__}: {exc}); save the split again") from None
        if not isinstance(payload, dict) or not _SPLIT_KEYS <= set(payload):
            raise SplitError(f"{path} is not a split saved by coldstart-peft (expected the fields {sorted(_SPLIT_KEYS)})")
        if payload["dataset_fingerprint"] != dataset.fingerprint():
            raise SplitError(
                f"{path} was made on dataset {payload.get('dataset')!r} with fingerprint "
                f"{payload['dataset_fingerprint']}, but the given dataset has {dataset.fingerprint()}; "
                f"load the same data files or rebuild the split"
            )
        try:
            records = {k: [CaseRecord(**r) for r in payload[k]] for k in ("valid", "test", "few_shot")}
        except TypeError as exc:  # a record that is not an object of CaseRecord's fields
            raise SplitError(f"{path} holds a malformed case record ({exc}); save the split again") from None
        return cls(
            payload["kind"], dataset, payload["config"], payload["train_users"], payload["valid_users"],
            payload["test_users"], payload["excluded_items"], **records,
        )  # fmt: skip


def sample_negatives(
    rng: np.random.Generator, pool: list[str], exclude: set[str], n: int | None, weights: np.ndarray | None = None
) -> list[str]:
    """Draw ``n`` distinct items from ``pool`` minus ``exclude``, uniformly or in proportion to ``weights``.

    Args:
        rng: the random generator (its state advances).
        pool: candidate negatives, in a fixed order so seeds reproduce.
        exclude: items that must not be drawn (everything the user interacted with).
        n: how many; ``None`` returns every allowed item (full-catalog ranking).
        weights: one non-negative weight per pool item (popularity-sampled negatives); ``None``
            draws uniformly, with the same random stream as before weights existed.

    Returns:
        The negatives; fewer than ``n`` only when the pool is that small.
    """
    if n is None:
        return [i for i in pool if i not in exclude]
    if n <= 0:  # without this, the fallback below copies the whole pool and draws a permutation for nothing
        return []
    if weights is not None:
        return _sample_weighted(rng, pool, exclude, n, np.asarray(weights, dtype=np.float64))
    # Rejection sampling is fast while exclusions are rare; small or crowded pools filter first.
    for _ in range(50 if n < len(pool) // 2 else 0):
        chosen: list[str] = []
        seen: set[str] = set()
        for index in rng.integers(0, len(pool), size=4 * n):
            item = pool[index]
            if item not in exclude and item not in seen:
                seen.add(item)
                chosen.append(item)
                if len(chosen) == n:
                    return chosen
    allowed = [i for i in pool if i not in exclude]
    return [allowed[i] for i in rng.permutation(len(allowed))[:n]]


def _sample_weighted(rng: np.random.Generator, pool: list[str], exclude: set[str], n: int, weights: np.ndarray) -> list[str]:
    """Successive draws in proportion to ``weights``, each without the items already drawn or excluded.

    Items of weight 0 come only once every weighted allowed item is taken, uniformly among them.
    """
    cdf = np.cumsum(weights)
    total = float(cdf[-1]) if len(cdf) else 0.0
    # Rejecting repeats and exclusions from draws with replacement is exactly sampling without
    # replacement from the renormalized weights, and needs no per-user copy of the pool.
    for _ in range(50 if total > 0 and n < np.count_nonzero(weights) // 2 else 0):
        chosen: list[str] = []
        seen: set[str] = set()
        for index in np.searchsorted(cdf, rng.random(4 * n) * total, side="right"):
            item = pool[min(int(index), len(pool) - 1)]
            if item not in exclude and item not in seen:
                seen.add(item)
                chosen.append(item)
                if len(chosen) == n:
                    return chosen
    allowed = np.array([j for j, item in enumerate(pool) if item not in exclude], dtype=np.int64)
    weighted = allowed[weights[allowed] > 0]
    take = min(n, len(weighted))
    picks = list(rng.choice(weighted, size=take, replace=False, p=weights[weighted] / weights[weighted].sum())) if take else []
    rest = allowed[weights[allowed] <= 0]
    picks += list(rest[rng.permutation(len(rest))[: n - take]])
    return [pool[j] for j in picks]
