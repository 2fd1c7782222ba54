"""What training interactions say about items, without a language model: the prior tables.

Fitted from training groups only (a split's training users), keyed by item id:

* ``popularity``: ``log(1 + n)``, n = how often the item was a training positive.
* ``cooccurrence``: per pair of items, how often one was a training positive while the other
  was in the same user's context (symmetric, upper triangle stored).
* ``idf``: inverse document frequency over the training item texts, for the lexical feature (a
  TF-IDF cosine of the user and item texts), which needs no ids and so also serves search
  queries and labeled pairs. Its units are the backbone's wordpieces, or whole words
  (:data:`LEXICAL_UNITS`): tables fitted on words hold the hashes of the words seen in
  ``words`` and one idf per word, plus one for every word never seen.

Ids are stored as 64-bit hashes, so a table is a few flat tensors that safetensors can hold;
the co-occurrence triangle is stored row-compressed with the narrowest integer types that hold
it (on Beauty 1.3 MB instead of 4.0 MB; the item-text rows add 1.6 MB). An id never seen in
training, or no id at all, looks up 0: the cold-start value.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import save_file

from coldstart_peft.errors import ConfigError, CorruptAdapterError
from coldstart_peft.examples import TrainGroup
from coldstart_peft.progress import tracked

TABLE_FORMAT = "coldstart-peft-prior-tables"
TABLE_FORMAT_VERSION = "1"
TENSORS = ("keys", "popularity", "row_starts", "cols", "counts", "idf")
TEXT_TENSORS = ("text_starts", "text_cols", "text_weights")
"""The optional item-text rows (row-compressed TF-IDF of each key's text); all three or none."""
LEXICAL_UNITS = ("wordpiece", "words")
"""What the lexical feature counts: the backbone's wordpieces, or whole words (scikit-learn's default token pattern)."""
ROW_CACHE_SIZE = 100_000
"""Most texts whose TF-IDF rows a table keeps (about 1 KB each at Beauty's text lengths, so under 100 MB); past it the cache starts over."""
WORD = re.compile(r"(?u)\b\w\w+\b")
WORD_COLUMNS = 2**20
"""Columns of a word TF-IDF row: a word's hash modulo this; two of 30k words share one about 1.5% of the time."""


def check_lexical_units(units: str) -> str:
    """``units`` if it is one of :data:`LEXICAL_UNITS`, else a :class:`ConfigError` naming them."""
    if units not in LEXICAL_UNITS:
        raise ConfigError(f"lexical_units={units!r}: choose one of {', '.join(LEXICAL_UNITS)}")
    return units


def id_key(item_id: str) -> int:
    """A stable signed 64-bit hash of an item id (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(str(item_id).encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def positive_of(group: TrainGroup) -> str | None:
    """The id of the group's positive item (``None`` without ids or without a positive)."""
    if not group.item_ids:
        return None
    return next((i for i, y in zip(group.item_ids, group.labels) if y > 0.5), None)


class PriorTables:
    """The fitted tables; build with :meth:`fit` or :meth:`load`.

    Args:
        keys: sorted id hashes of every item seen in training (positives and context items).
        popularity: ``log(1 + positives)`` per key.
        rows, cols, counts: the co-occurrence upper triangle, as indices into ``keys``, sorted
            by row then column.
        idf: one weight per wordpiece of the backbone's vocabulary; with ``words``, one per word
            and a last one for every word not in it.
        words: sorted hashes of the words seen in the training item texts; ``None`` for wordpieces.
        item_text: each key's TF-IDF row (``[keys, units]``, rows L2-normalised; empty for a key
            whose text training never showed), or ``None`` when fitted without item texts.
    """

    def __init__(self, keys: torch.Tensor, popularity: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                 counts: torch.Tensor, idf: torch.Tensor, words: torch.Tensor | None = None,
                 item_text: sp.csr_matrix | None = None):  # fmt: skip
        self.keys, self.popularity, self.idf, self.words = keys, popularity, idf, words
        self.rows, self.cols, self.counts = rows, cols, counts
        self.item_text = item_text
        self._matrix: sp.csr_matrix | None = None
        self._digest: str | None = None
        self._cache_owner: object = None  # the tokenizer the kept rows were made with (wordpieces only)
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def lexical_units(self) -> str:
        """``"words"`` or ``"wordpiece"``: what the lexical feature counts."""
        return "wordpiece" if self.words is None else "words"

    @classmethod
    def fit(cls, groups: Sequence[TrainGroup], tokenizer, lexical_units: str = "words", item_texts: bool = False) -> PriorTables:
        """Count the groups' positives and context co-occurrences; fit idf on their item texts.

        Args:
            groups: training groups.
            tokenizer: the backbone's tokenizer (counts wordpieces; unused for words).
            lexical_units: one of :data:`LEXICAL_UNITS`.
            item_texts: also keep each item's TF-IDF row (:attr:`item_text`), for the
                ``neighbour_text`` feature; about 8 bytes per word of every item's text.
        """
        check_lexical_units(lexical_units)
        positives: Counter = Counter()
        pairs: Counter = Counter()
        seen: set[int] = set()
        for group in tracked(groups, "prior counts", unit="group"):
            target = positive_of(group)
            context = [id_key(i) for i in group.context_ids or ()]
            seen.update(context)
            if target is None:
                continue
            key = id_key(target)
            positives[key] += 1
            seen.add(key)
            for other in context:
                if other != key:
                    pairs[(min(key, other), max(key, other))] += 1
        keys = sorted(seen)
        index = {k: i for i, k in enumerate(keys)}
        # Row-major order: the stored form is row-compressed, and one order gives one digest.
        pairs = Counter(dict(sorted(pairs.items(), key=lambda kv: (index[kv[0][0]], index[kv[0][1]]))))
        texts = list(dict.fromkeys(t for g in groups for t in g.item_texts))
        words = None
        if lexical_units == "words":
            seen_in = Counter(key for text in texts for key in set(word_keys(text)))
            words = torch.tensor(sorted(seen_in), dtype=torch.int64)
            df = np.array([seen_in[k] for k in words.tolist()] + [0], dtype=np.float64)  # last: a word never seen
        else:
            df = np.zeros(len(tokenizer))
            for ids in token_ids(tokenizer, texts):
                df[np.unique(ids)] += 1
        tables = cls(
            keys=torch.tensor(keys, dtype=torch.int64),
            popularity=torch.tensor([np.log1p(positives[k]) for k in keys], dtype=torch.float32),
            rows=torch.tensor([index[a] for a, _ in pairs], dtype=torch.int32),
            cols=torch.tensor([index[b] for _, b in pairs], dtype=torch.int32),
            counts=torch.tensor(list(pairs.values()), dtype=torch.int32),
            idf=torch.tensor(np.log((1 + len(texts)) / (1 + df)) + 1, dtype=torch.float32),
            words=words,
        )
        if item_texts:
            text_of: dict[int, str] = {}
            for group in groups:
                for item_id, text in zip(group.item_ids or (), group.item_texts):
                    text_of.setdefault(id_key(item_id), text)
            # A context item that was never a candidate has no text here: its row stays empty.
            tables.item_text = tables.tfidf(tokenizer, [text_of.get(k, "") for k in keys]).astype(np.float32)
        return tables

    # -- storage ---------------------------------------------------------------------------

    def state(self) -> dict[str, torch.Tensor]:
        """The tensors by name, as saved: the triangle row-compressed, in the narrowest integer types."""
        n = len(self.keys)
        row_starts = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.rows.numpy(), minlength=n), out=row_starts[1:])
        top = int(self.counts.max()) if len(self.counts) else 0
        return {
            "keys": self.keys.contiguous(),
            "popularity": self.popularity.contiguous(),
            "row_starts": torch.from_numpy(row_starts),
            "cols": self.cols.to(torch.int16 if n < 2**15 else torch.int32).contiguous(),
            "counts": self.counts.to(torch.uint8 if top < 2**8 else torch.int16 if top < 2**15 else torch.int32).contiguous(),
            "idf": self.idf.contiguous(),
            **({"words": self.words.contiguous()} if self.words is not None else {}),
            **(self._text_state() if self.item_text is not None else {}),
        }

    def _text_state(self) -> dict[str, torch.Tensor]:
        text = self.item_text
        return {
            "text_starts": torch.from_numpy(text.indptr.astype(np.int32)),
            "text_cols": torch.from_numpy(text.indices.astype(np.int32)),
            "text_weights": torch.from_numpy(text.data.astype(np.float32)),
        }

    def digest(self) -> str:
        """16 hex digits identifying the tables' content: equal tables share one file in a bank."""
        if self._digest is None:
            digest = hashlib.sha256()
            for name, tensor in self.state().items():
                digest.update(name.encode() + b"\0" + tensor.numpy().tobytes())
            self._digest = digest.hexdigest()[:16]
        return self._digest

    def save(self, path: str | Path) -> Path:
        """Write the tables to one safetensors file."""
        path = Path(path)
        save_file(self.state(), str(path), metadata={"format": TABLE_FORMAT, "format_version": TABLE_FORMAT_VERSION})
        return path

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], where: str) -> PriorTables:
        """Tables from the tensors of :meth:`state`, checked for names, dtypes and consistency."""
        integers = (torch.uint8, torch.int16, torch.int32)
        expected = {"keys": (torch.int64,), "popularity": (torch.float32,), "row_starts": (torch.int32,),
                    "cols": integers, "counts": integers, "idf": (torch.float32,)}  # fmt: skip
        if "words" in state:
            expected["words"] = (torch.int64,)
        if any(name in state for name in TEXT_TENSORS):
            expected.update({"text_starts": (torch.int32,), "text_cols": (torch.int32,), "text_weights": (torch.float32,)})
        if set(state) != set(expected):
            raise CorruptAdapterError(
                f"prior tables in {where} hold {sorted(state)}, expected {sorted(expected)}; save the adapter again"
            )
        wrong = [name for name, dtypes in expected.items() if state[name].dtype not in dtypes or state[name].dim() != 1]
        n = len(state["keys"])
        starts, cols = state["row_starts"].long(), state["cols"].long()
        consistent = (
            not wrong and len(state["popularity"]) == n and len(starts) == n + 1 and len(cols) == len(state["counts"])
            and int(starts[0]) == 0 and int(starts[-1]) == len(cols) and bool((starts[1:] >= starts[:-1]).all())
            and (not len(cols) or (int(cols.min()) >= 0 and int(cols.max()) < n))
            and ("words" not in state or len(state["idf"]) == len(state["words"]) + 1)
            and ("text_starts" not in state or _rows_consistent(state, n, width=_width(state)))
        )  # fmt: skip
        if not consistent:
            raise CorruptAdapterError(f"prior tables in {where} are inconsistent ({wrong or 'sizes'}); save the adapter again")
        rows = torch.repeat_interleave(torch.arange(n, dtype=torch.int32), (starts[1:] - starts[:-1]))
        words = state["words"].clone() if "words" in state else None
        item_text = None
        if "text_starts" in state:
            item_text = sp.csr_matrix(
                (state["text_weights"].numpy().copy(), state["text_cols"].numpy().copy(), state["text_starts"].numpy().copy()),
                shape=(n, _width(state)),
            )
        return cls(keys=state["keys"].clone(), popularity=state["popularity"].clone(), rows=rows, cols=cols.to(torch.int32),
                   counts=state["counts"].to(torch.int32), idf=state["idf"].clone(), words=words, item_text=item_text)  # fmt: skip

    # -- features --------------------------------------------------------------------------

    def columns(self, item_ids: Sequence[str | None]) -> np.ndarray:
        """Index of each id in :attr:`keys`; ``len(keys)`` (the zero column) for unknown or missing ids."""
        query = np.array([0 if i is None else id_key(i) for i in item_ids], dtype=np.int64)
        given = np.array([i is not None for i in item_ids], dtype=bool)
        return np.where(given, _index_in(self.keys.numpy(), query), len(self.keys))

    def popularity_of(self, columns: np.ndarray) -> np.ndarray:
        """``log(1 + positives)`` of the items at ``columns`` (0 for the zero column)."""
        return np.append(self.popularity.numpy(), 0.0)[columns]

    def neighbours(self, contexts: Sequence[Sequence[str] | None]) -> sp.csr_matrix:
        """Per context, the summed co-occurrence of every item with its items: ``[contexts, keys + 1]``."""
        n = len(self.keys)
        rows, cols = [], []
        for r, context in enumerate(contexts):
            for c in self.columns(list(context or ())):
                if c < n:
                    rows.append(r)
                    cols.append(c)
        one_hot = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(contexts), n))
        summed = one_hot @ self._cooccurrence()
        return sp.hstack([summed, sp.csr_matrix((len(contexts), 1), dtype=np.float32)]).tocsr()

    def neighbour_profiles(self, counts: sp.spmatrix) -> sp.csr_matrix:
        """What each user's co-occurrence neighbours say in words: ``[users, units]``, rows L2-normalised.

        Args:
            counts: per user, summed co-occurrence with every key, ``[users, keys + 1]``
                (:meth:`neighbours`, perhaps less a training group's own pairs); each neighbour's
                text row is weighted by ``log(1 + count)``.

        Raises:
            ConfigError: the tables were fitted without item texts.
        """
        if self.item_text is None:
            raise ConfigError(
                "these prior tables were fitted without item texts, which the neighbour_text feature reads; "
                "train again with neighbour_text among the prior features"
            )
        weights = sp.csr_matrix(counts)[:, : len(self.keys)].astype(np.float32)
        weights.data = np.log1p(np.maximum(weights.data, 0))
        profiles = (weights @ self.item_text).tocsr()
        # By hand, not sklearn's normalize: importing sklearn would add about a second to loading an adapter.
        norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return (sp.diags(1.0 / norms) @ profiles).tocsr()

    def _cooccurrence(self) -> sp.csr_matrix:
        if self._matrix is None:
            n = len(self.keys)
            upper = sp.coo_matrix(
                (self.counts.numpy().astype(np.float32), (self.rows.numpy().astype(np.int64), self.cols.numpy().astype(np.int64))),
                shape=(n, n),
            )
            self._matrix = (upper + upper.T).tocsr()
        return self._matrix

    def tfidf(self, tokenizer, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised sublinear TF-IDF rows of ``texts`` over wordpieces or words (:attr:`lexical_units`).

        Rows are kept per text (up to :data:`ROW_CACHE_SIZE`): evaluation asks for the same
        catalog items once per chunk of users, and rebuilding their rows in Python was a fifth
        of a method's scoring time on Beauty.
        """
        cache = self._row_cache(tokenizer)
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if 0 < len(missing) <= ROW_CACHE_SIZE:  # more than the cache may keep are computed below, not kept
            if len(cache) + len(missing) > ROW_CACHE_SIZE:
                cache.clear()
            cache.update(zip(missing, self._rows(tokenizer, missing)))
        found = [cache.get(t) for t in texts]
        if any(row is None for row in found):  # not kept, or another thread cleared the cache meanwhile
            found = self._rows(tokenizer, list(texts))
        lengths = np.array([len(cols) for cols, _ in found], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        cols = np.concatenate([c for c, _ in found]) if found else np.zeros(0, dtype=np.int64)
        vals = np.concatenate([v for _, v in found]) if found else np.zeros(0)
        matrix = sp.csr_matrix((vals, cols, starts), shape=(len(texts), self._columns))
        matrix.sum_duplicates()  # two words may hash to one column; sorted, summed columns as before
        return matrix

    @property
    def _columns(self) -> int:
        """Columns of a TF-IDF row: one per wordpiece of the vocabulary, or the word hash space."""
        return len(self.idf) if self.words is None else WORD_COLUMNS

    def _row_cache(self, tokenizer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The cache of rows for ``tokenizer`` (wordpiece rows depend on it; word rows do not)."""
        owner = None if self.words is not None else tokenizer
        if self._cache_owner is not owner:
            self._cache_owner, self._cache = owner, {}
        return self._cache

    def _rows(self, tokenizer, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each text's TF-IDF row as (columns, weights); word columns may repeat where two words' hashes meet."""
        idf = self.idf.numpy()
        words = None if self.words is None else self.words.numpy()
        width = self._columns
        if words is None:
            units = [np.asarray(ids, dtype=np.int64) for ids in token_ids(tokenizer, texts)]
        else:
            units = [np.asarray(word_keys(text), dtype=np.int64) for text in texts]
        rows = []
        for keys in units:
            keys, counts = np.unique(keys, return_counts=True)
            if words is None:
                keep = keys < width
                columns, counts = keys[keep], counts[keep]
                weights = idf[columns]
            else:  # idf's last entry, at len(words), is the weight of a word never seen
                columns, weights = keys % width, idf[_index_in(words, keys)]
            weights = ((1 + np.log(counts)) * weights).astype(np.float64)
            norm = np.linalg.norm(weights)
            rows.append((columns.astype(np.int64), weights / norm if norm else weights))
        return rows


def _width(state: dict[str, torch.Tensor]) -> int:
    """Columns of a TF-IDF row: the word hash space, or one per wordpiece of the vocabulary."""
    return WORD_COLUMNS if "words" in state else len(state["idf"])


def _rows_consistent(state: dict[str, torch.Tensor], n: int, width: int) -> bool:
    """Whether the item-text tensors form an ``[n, width]`` row-compressed matrix."""
    starts, cols, weights = state["text_starts"].long(), state["text_cols"].long(), state["text_weights"]
    return (
        len(starts) == n + 1 and int(starts[0]) == 0 and int(starts[-1]) == len(cols) == len(weights)
        and bool((starts[1:] >= starts[:-1]).all()) and (not len(cols) or (int(cols.min()) >= 0 and int(cols.max()) < width))
    )  # fmt: skip


def _index_in(table: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Position of each hash of ``query`` in the sorted ``table``; ``len(table)`` where it is absent."""
    if not len(table):
        return np.zeros(len(query), dtype=np.int64)
    position = np.searchsorted(table, query).clip(max=len(table) - 1)
    return np.where(table[position] == query, position, len(table))


def word_keys(text: str) -> list[int]:
    """The 64-bit hashes of ``text``'s words: lowercased runs of two or more word characters."""
    return [id_key(word) for word in WORD.findall(text.lower())]


def token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Wordpiece ids of ``texts``, no special tokens, no truncation."""
    return tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"] if texts else []
