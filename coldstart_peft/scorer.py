"""The contract every scorer implements: text pairs in, relevance scores out.

A scorer owns tokenization, the pooling and the head. Its ``backbone`` attribute is the
encoder a :class:`~coldstart_peft.method.Method` prepares; everything else in the scorer
(the head) is the scorer's own and is saved by :func:`coldstart_peft.artifact.save_adapter`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from coldstart_peft.errors import ConfigError, CorruptAdapterError
from coldstart_peft.hardware import autocast
from coldstart_peft.examples import TrainGroup
from coldstart_peft.method import build_config
from coldstart_peft.pair_prior import PairPrior
from coldstart_peft.prior import count_positives, lookup, prior_tables

PRIOR_FLAGS = ("popularity_prior", "lexical_prior", "cooccurrence_prior")
"""The :class:`ScorerConfig` switches of the three priors, all on in the training recipes."""


@dataclasses.dataclass
class ScorerConfig:
    """Settings shared by every scorer."""

    max_length: int = dataclasses.field(default=256, metadata={"help": "token budget of one input"})
    popularity_prior: bool = dataclasses.field(
        default=False,
        metadata={"help": "add w·log(1 + training popularity) of the item to the score, w learned "
                          "(unseen items get 0); see coldstart_peft.prior"},
    )
    lexical_prior: bool = dataclasses.field(
        default=False,
        metadata={"help": "add w·(TF-IDF cosine of user and item wordpieces) to the score, w learned; "
                          "see coldstart_peft.pair_prior"},
    )
    cooccurrence_prior: bool = dataclasses.field(
        default=False,
        metadata={"help": "add w·log(1 + times training users bought the item next to a context item), "
                          "w learned; see coldstart_peft.pair_prior"},
    )

    def pair_features(self) -> tuple[str, ...]:
        """The enabled pair-prior features, in :data:`coldstart_peft.pair_prior.FEATURES` order."""
        return tuple(name for name, on in (("lexical", self.lexical_prior), ("cooccurrence", self.cooccurrence_prior)) if on)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values."""
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view, stored in adapter manifests."""
        return dataclasses.asdict(self)


def inference_autocast(precision: str, device: torch.device):
    """The autocast context for scoring at ``precision`` (see :func:`coldstart_peft.hardware.resolve_precision`).

    ``auto`` is bf16 only where the device computes bf16 natively and faster, full precision elsewhere.
    """
    return autocast(precision, device)


def length_sorted_batches(user_texts: Sequence[str], item_texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Index batches of aligned pairs, shortest first.

    Pairs of similar length share a batch, so dynamic padding adds little: the same work in
    fewer padded tokens. Callers write results back by index.
    """
    order = sorted(range(len(item_texts)), key=lambda i: len(user_texts[i]) + len(item_texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class Scorer(nn.Module):
    """Base class of scorers.

    Subclasses implement :meth:`collate`, :meth:`compute_loss` and :meth:`forward_pairs`.

    Args:
        backbone: the encoder (a ``transformers`` base model).
        tokenizer: its tokenizer.
        config: the scorer's config dataclass or a dict of its fields.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = ScorerConfig
    PRIOR_WEIGHTS: ClassVar[frozenset[str]] = frozenset({"prior_weight", "pair_prior_weight"})
    """Parameters that weight the priors; the engine trains them at ``TrainConfig.prior_lr``."""
    default_negatives: ClassVar[int] = 7
    """Sampled negatives per training group when the recipe is not told: a scorer whose loss
    also uses the other groups' items as negatives needs fewer."""

    def __init__(self, backbone: nn.Module, tokenizer: PreTrainedTokenizerBase, config: Any = None):
        super().__init__()
        if config is None or isinstance(config, dict):
            config = build_config(self.config_class, config)
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.precision = "auto"
        """Scoring precision: ``auto`` (bf16 where the hardware computes it natively and faster,
        else fp32), ``fp32``, ``bf16`` or ``fp16`` (GPU); training precision is the engine's."""
        if self.config.popularity_prior:
            self.prior_weight = nn.Parameter(torch.tensor(1.0))
            # Plain CPU tensors, not buffers: features are looked up on the CPU while a batch is
            # collated, wherever the model runs. head_state_dict() saves them.
            self.prior_keys, self.prior_values = torch.zeros(0, dtype=torch.int64), torch.zeros(0)
        features = self.config.pair_features()
        if features:
            self.pair_prior = PairPrior(tokenizer, features)
            # Starting weights put each feature on the scale of a cosine logit (temperature
            # 0.05): a perfect word match is worth about a quarter of the similarity range.
            start = {"lexical": 5.0, "cooccurrence": 0.5}
            self.pair_prior_weight = nn.Parameter(torch.tensor([start[f] for f in features]))

    def fit_prior(self, groups: Sequence[TrainGroup]) -> None:
        """Fit the enabled priors on the training groups; the engine calls this before training."""
        if self.config.popularity_prior:
            self.prior_keys, self.prior_values = prior_tables(count_positives(groups))
        if self.config.pair_features():
            self.pair_prior.fit(groups)

    def prior_features(self, item_texts: Sequence[str]) -> torch.Tensor:
        """``log(1 + training popularity)`` per item text (zeros without a popularity prior).

        Collate functions store this in the batch; :meth:`add_prior` weights it.
        """
        if not self.config.popularity_prior:
            return torch.zeros(len(item_texts))
        return lookup(self.prior_keys, self.prior_values, item_texts)

    def add_prior(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``logits + w · features`` with the learned weight ``w``; ``logits`` unchanged without a prior."""
        if not self.config.popularity_prior:
            return logits
        return logits + self.prior_weight.to(logits.device) * features.to(logits.device, torch.float32)

    def pair_prior_grid(self, groups: Sequence[TrainGroup], item_texts: Sequence[str]) -> torch.Tensor:
        """Training pair features of every group's user with every item: ``[groups, items, F]``.

        ``item_texts`` are the groups' item texts, concatenated in order. Each group's own
        positive loses the co-occurrence counts the group itself added to the table, so
        training sees the feature as a new user would.
        """
        if not self.config.pair_features():
            return torch.zeros(len(groups), len(item_texts), 0)
        own = np.zeros((len(groups), len(item_texts)))
        start = 0
        for g, group in enumerate(groups):
            own[g, start : start + len(group.item_texts)] = self.pair_prior.own_counts(group)
            start += len(group.item_texts)
        return self.pair_prior.grid([g.user_text for g in groups], item_texts, subtract=own)

    def pair_prior_features(
        self, user_texts: Sequence[str], item_texts: Sequence[str], groups: Sequence[TrainGroup] | None = None
    ) -> torch.Tensor:
        """Pair features of aligned (user, item) texts: ``[pairs, F]`` (``F = 0`` without pair priors).

        Pass the training ``groups`` the pairs were flattened from (in order) so each positive
        loses the co-occurrence counts its own group added to the table.
        """
        if not self.config.pair_features():
            return torch.zeros(len(item_texts), 0)
        own = None if groups is None else np.concatenate([self.pair_prior.own_counts(g) for g in groups])
        return self.pair_prior.aligned(user_texts, item_texts, subtract=own)

    def add_pair_prior(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """``logits + features · w`` with learned weights ``w``; ``logits`` unchanged without pair priors."""
        if not self.config.pair_features():
            return logits
        return logits + features.to(logits.device, torch.float32) @ self.pair_prior_weight.to(logits.device)

    @classmethod
    def description(cls) -> str:
        """First line of the class docstring, shown by ``coldstart-peft plugins``."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @property
    def device(self) -> torch.device:
        """Device of the scorer's parameters."""
        return next(self.parameters()).device

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss; ``forward`` so that DDP synchronises gradients."""
        return self.compute_loss(batch)

    def collate(self, groups: Sequence[TrainGroup]) -> dict[str, torch.Tensor]:
        """Tokenize a list of training groups into one padded batch (with labels)."""
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a collated batch."""
        raise NotImplementedError

    def forward_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> torch.Tensor:
        """Raw scores (logits) of aligned (user, item) text pairs, differentiable."""
        raise NotImplementedError

    @torch.no_grad()
    def score(self, user_texts: Sequence[str], item_texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Score aligned (user context, item) text pairs for ranking.

        Args:
            user_texts: one user context per pair.
            item_texts: one item text per pair.
            batch_size: pairs per forward pass.

        Returns:
            A float array of logits, one per pair; higher means more relevant.
        """
        if len(user_texts) != len(item_texts):
            raise ValueError(f"{len(user_texts)} user texts but {len(item_texts)} item texts")
        was_training = self.training
        self.eval()
        out = np.empty(len(item_texts), dtype=np.float32)
        with inference_autocast(self.precision, self.device):
            for idx in length_sorted_batches(user_texts, item_texts, batch_size):
                logits = self.forward_pairs([user_texts[i] for i in idx], [item_texts[i] for i in idx])
                out[idx] = logits.float().cpu().numpy()
        self.train(was_training)
        return out

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """A block in which the weights will not change, so a scorer may reuse work across calls.

        Evaluation scores a catalog's items once per user chunk; a scorer that embeds texts
        separately (the bi-encoder) keeps embeddings for the length of the block. The base
        class reuses nothing.
        """
        yield

    def padded_length(self, group: TrainGroup) -> int:
        """How long ``group`` makes a padded training batch (characters; only the order matters).

        The engine batches groups of similar ``padded_length`` together. The base class pairs the
        user text with each item, so the longest pair counts.
        """
        return len(group.user_text) + max((len(t) for t in group.item_texts), default=0)

    def precompute(self, user_texts: Sequence[str], item_texts: Sequence[str], progress: bool = False) -> None:
        """Inside :meth:`frozen`, do ahead of scoring the per-text work that scoring these pairs needs.

        :func:`~coldstart_peft.evaluation.ranking.score_cases` calls it so that its progress
        bars count the real work (distinct texts to embed, not pairs). The base class, which
        encodes pairs jointly, has nothing to do ahead.
        """

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The scorer's own weights (everything outside ``backbone``) and its fitted prior tables."""
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}
        return {**state, **self._prior_tables()}

    def _prior_tables(self) -> dict[str, torch.Tensor]:
        tables = {}
        if self.config.popularity_prior:
            tables.update(prior_keys=self.prior_keys, prior_values=self.prior_values)
        if self.config.pair_features():
            tables.update(self.pair_prior.tables("pair_prior."))
        return tables

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the weights returned by :meth:`head_state_dict`."""
        expected = set(self.head_state_dict())
        if set(state) != expected:
            raise CorruptAdapterError(
                f"scorer head weights do not match: expected {sorted(expected)}, found {sorted(state)}; "
                "the adapter was saved by a different scorer or scorer version"
            )
        if self.config.popularity_prior:  # the table's size is the training catalog's, not fixed
            self.prior_keys = state["prior_keys"].detach().cpu().clone()
            self.prior_values = state["prior_values"].detach().cpu().clone()
        if self.config.pair_features():
            self.pair_prior.load_tables(state, "pair_prior.")
        tables = set(self._prior_tables())
        self.load_state_dict({k: v for k, v in state.items() if k not in tables}, strict=False)
