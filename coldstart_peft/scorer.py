"""The contract every scorer implements: text pairs in, relevance scores out.

A scorer owns tokenization, the pooling and the head. Its ``backbone`` attribute is the
encoder a :class:`~coldstart_peft.method.Method` prepares; everything else in the scorer
(the head) is the scorer's own and is saved by :func:`coldstart_peft.artifact.save_adapter`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from coldstart_peft.errors import ConfigError, CorruptAdapterError, PluginError
from coldstart_peft.examples import TrainGroup
from coldstart_peft.hardware import autocast
from coldstart_peft.length_blocks import CPU_BLOCK_COST
from coldstart_peft.method import build_config
from coldstart_peft.priors import Priors

PRIOR_FEATURES = "prior_features"
"""The training batch key under which the engine hands a scorer's ``forward`` the prior features."""


@dataclasses.dataclass
class ScorerConfig:
    """Settings shared by every scorer."""

    max_length: int = dataclasses.field(default=256, metadata={"help": "token budget of one input"})
    # 0 by default: on Beauty's validation users it ranked within 0.004 NDCG@10 of the model's own 0.1
    # at equal time (cold-user +0.004, cold-item -0.004) while training 1.3-1.4x as many pairs per
    # second, as CPU dropout draws a random number per activation (benchmarks/results/levers-backbone-dropout-*).
    backbone_dropout: float | None = dataclasses.field(
        default=0.0,
        metadata={"help": "dropout of every torch.nn.Dropout inside the backbone while training (None: the model's own)"},
    )

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values."""
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}")
        if self.backbone_dropout is not None and not 0.0 <= self.backbone_dropout < 1.0:
            raise ConfigError(f"backbone_dropout must be in [0, 1) or None, got {self.backbone_dropout}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable view, stored in adapter manifests."""
        return dataclasses.asdict(self)


def takes_ids(score_pairs) -> bool:
    """Whether a pair-scoring callable accepts the ``context_ids`` and ``item_ids`` keywords."""
    try:
        parameters = inspect.signature(score_pairs).parameters
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    return "item_ids" in parameters and "context_ids" in parameters


def set_backbone_dropout(backbone: nn.Module, p: float | None) -> None:
    """Set the rate of every :class:`torch.nn.Dropout` in ``backbone`` to ``p``; ``None`` leaves them.

    Runs when the scorer is built, before a method adds modules of its own, so a method's dropout
    (LoRA's ``lora_dropout``) keeps its setting. BERT and GPT-2 read their attention dropout from
    such a module at every call, so at 0 their attention can take SDPA's fused kernels.
    """
    if p is None:
        return
    for module in backbone.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


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

    Subclasses implement :meth:`collate`, :meth:`compute_loss` (which adds the ``offsets`` it
    is given to its logits) and :meth:`forward_pairs`, and may override :meth:`score_texts` to
    score faster. Priors are not theirs to handle: the engine and :meth:`score` compose them.
    A scorer with one input per (user, item) pair gets all but two of these from
    :class:`~coldstart_peft.pair_scorer.PairScorer`.

    Args:
        backbone: the encoder (a ``transformers`` base model).
        tokenizer: its tokenizer.
        config: the scorer's config dataclass or a dict of its fields.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = ScorerConfig
    default_negatives: ClassVar[int] = 7
    """Sampled negatives per training group when the recipe is not told: a scorer whose loss
    also uses the other groups' items as negatives needs fewer."""
    embeds_texts_apart: ClassVar[bool] = False
    """Whether user and item texts go through the model separately (a bi-encoder) rather than as
    one input per pair: such a scorer embeds each distinct text once per adapter, so an
    :class:`~coldstart_peft.bank.AdapterBank` groups its pairs by domain instead of mixing them."""
    length_block_cost: int | None = CPU_BLOCK_COST
    """On a CPU, a scorer may run a padded training batch as length blocks
    (:func:`~coldstart_peft.blockwise`) priced at this many tokens per extra pass; ``None`` runs
    every batch whole. Scoring never uses blocks: its batches are sorted by length already, and
    the bank's mixed batches pair each backbone call with the whole batch's rows."""
    merged: bool = False
    """Whether the method's weights are folded into the base (see :meth:`merge_for_inference`)."""

    def __init__(self, backbone: nn.Module, tokenizer: PreTrainedTokenizerBase, config: Any = None):
        super().__init__()
        if config is None or isinstance(config, dict):
            config = build_config(self.config_class, config)
        self.config = config
        self.backbone = backbone
        set_backbone_dropout(backbone, getattr(config, "backbone_dropout", None))
        self.tokenizer = tokenizer
        self.priors: Priors | None = None
        """The prior component composed with this scorer (see :meth:`attach_priors`), or ``None``."""
        self.precision = "auto"
        """Scoring precision: ``auto`` (bf16 where the hardware computes it natively and faster,
        else fp32), ``fp32``, ``bf16`` or ``fp16`` (GPU); training precision is the engine's."""

    def attach_priors(self, priors: Priors | None) -> None:
        """Compose ``priors`` with this scorer: training and :meth:`score` add their weighted features.

        Raises:
            ConfigError: this scorer's configuration cannot take additive offsets (see
                :meth:`priors_unsupported`).
            PluginError: the scorer's ``compute_loss`` takes no ``offsets`` argument.
        """
        if priors is not None:
            reason = self.priors_unsupported()
            if reason:
                raise ConfigError(f"the {self.name} scorer cannot use priors here: {reason}; or train with --no-priors")
            if len(inspect.signature(self.compute_loss).parameters) < 2:
                raise PluginError(
                    f"scorer {self.name!r} ({type(self).__module__}) has compute_loss(batch) without offsets, so it "
                    "cannot train with priors; give it compute_loss(batch, offsets) (see the README), or train with --no-priors"
                )
            if priors.tokenizer is None:
                priors.tokenizer = self.tokenizer
        self.priors = priors

    def merge_for_inference(self) -> bool:
        """Fold the method's weights into the base model until the scorer trains again.

        Scores stay the same (up to float rounding) and each pass does one matrix product per
        adapted layer instead of two paths; :meth:`train` unmerges first, so a merged scorer
        still trains its adapter. ``load_adapter(..., merge=True)`` calls this.

        Returns:
            Whether the method merged (LoRA, DoRA, AdaLoRA and IA3 do; prompt methods, bottleneck
            adapters and full fine-tuning have nothing to fold).
        """
        method = getattr(self, "method", None)  # set when a method is applied or loaded
        if not self.merged and method is not None:
            self.merged = method.merge_in_place(self.backbone)
        return self.merged

    def train(self, mode: bool = True):
        if mode and self.merged:
            self.method.unmerge_in_place(self.backbone)
            self.merged = False
        return super().train(mode)

    def priors_unsupported(self) -> str | None:
        """Why this scorer, as configured, cannot add prior offsets to its training logits (``None``: it can)."""
        return None

    def fit_statistics(self, groups: Sequence[TrainGroup]) -> None:
        """Called by the engine with the training groups before the first step; the base class keeps nothing."""

    @classmethod
    def description(cls) -> str:
        """First line of the class docstring, shown by ``coldstart-peft plugins``."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @property
    def device(self) -> torch.device:
        """Device of the scorer's parameters."""
        return next(self.parameters()).device

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss; ``forward`` so that DDP synchronises gradients (the prior weights' too)."""
        features = batch.pop(PRIOR_FEATURES, None)
        offsets = None if features is None or self.priors is None else self.priors(features)
        return self.compute_loss(batch, offsets)

    def training_batch(self, groups: Sequence[TrainGroup]) -> dict[str, torch.Tensor]:
        """What the engine's loader yields: :meth:`collate` plus the prior features, when priors are attached."""
        batch = self.collate(groups)
        if self.priors is not None:
            batch[PRIOR_FEATURES] = self.priors.grid(groups)
        return batch

    def collate(self, groups: Sequence[TrainGroup]) -> dict[str, torch.Tensor]:
        """Tokenize a list of training groups into one padded batch (with labels)."""
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, torch.Tensor], offsets: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss of a collated batch.

        Args:
            batch: what :meth:`collate` returned.
            offsets: ``None``, or a ``[groups, items]`` float tensor to add to the logits before
                the loss: entry ``[g, j]`` is for group ``g``'s user with the ``j``-th item of the
                batch (the groups' items concatenated in order). A scorer with one logit per
                (group, own item) takes :func:`own_offsets`; one that scores every user against
                every item in the batch adds the whole grid. This is how the priors train.
        """
        raise NotImplementedError

    def forward_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> torch.Tensor:
        """The scorer's logits of aligned (user, item) text pairs, differentiable, without priors."""
        raise NotImplementedError

    def pair_inputs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> dict[str, torch.Tensor] | None:
        """The encoder inputs of aligned pairs on the scorer's device, for :meth:`pair_logits`.

        A scorer that reads each pair as one input may split :meth:`forward_pairs` into this and
        :meth:`pair_logits`: an :class:`~coldstart_peft.bank.AdapterBank` scoring a mixed-domain
        batch then tokenizes it once and runs each domain's head on its rows of the same inputs.
        The base class returns ``None`` (no split: the bank tokenizes each domain's rows again).
        """
        return None

    def pair_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The logits of :meth:`pair_inputs`' output, or of any subset of its rows."""
        raise NotImplementedError

    @torch.no_grad()
    def score(
        self,
        user_texts: Sequence[str],
        item_texts: Sequence[str],
        batch_size: int | None = None,
        *,
        context_ids: Sequence[Sequence[str] | None] | None = None,
        item_ids: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Score aligned (user context, item) pairs for ranking: the scorer's logit plus the priors'.

        Args:
            user_texts: one user context per pair.
            item_texts: one item text per pair.
            batch_size: pairs (or texts) per forward pass; ``None`` for the scorer's default.
            context_ids: per pair, the ids of the user's context items, for the id-keyed priors.
            item_ids: per pair, the item's id, for the id-keyed priors. Without ids those priors
                add 0 (the cold-start value); the lexical prior needs only the texts.

        Returns:
            A float32 array, one score per pair; higher means more relevant.
        """
        if len(user_texts) != len(item_texts):
            raise ValueError(f"{len(user_texts)} user texts but {len(item_texts)} item texts")
        scores = np.asarray(self.score_texts(user_texts, item_texts, batch_size), dtype=np.float32)
        if self.priors is not None:
            scores = scores + self.priors.score(user_texts, item_texts, context_ids, item_ids)
        return scores

    @torch.no_grad()
    def score_texts(self, user_texts: Sequence[str], item_texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """The scorer's own logits of aligned text pairs, without priors (override to score faster)."""
        batch_size = batch_size or 64
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
        """The scorer's own weights (everything outside ``backbone``), the prior weights included.

        The prior *tables* are not here: they are fitted data, saved once beside the head
        (see :mod:`coldstart_peft.artifact`) and shared by every domain of a bank.
        """
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the weights returned by :meth:`head_state_dict`."""
        expected = set(self.head_state_dict())
        if set(state) != expected:
            raise CorruptAdapterError(
                f"scorer head weights do not match: expected {sorted(expected)}, found {sorted(state)}; "
                "the adapter was saved by a different scorer or scorer version"
            )
        self.load_state_dict(state, strict=False)


def pair_batch(groups: Sequence[TrainGroup], tokenize) -> dict[str, torch.Tensor]:
    """A training batch of one input per (group, item) pair: ``tokenize(users, items)`` plus
    ``labels`` and ``group_index`` (which group each pair came from), for scorers that read the
    user and the item together (the cross-encoder, the generative scorer)."""
    users = [g.user_text for g in groups for _ in g.item_texts]
    items = [t for g in groups for t in g.item_texts]
    batch = dict(tokenize(users, items))
    batch["labels"] = torch.tensor([y for g in groups for y in g.labels], dtype=torch.float32)
    batch["group_index"] = torch.tensor([i for i, g in enumerate(groups) for _ in g.item_texts])
    return batch


def own_offsets(offsets: torch.Tensor, group_index: torch.Tensor) -> torch.Tensor:
    """From a ``[groups, items]`` offset grid, each item's offset for its own group's user: ``[items]``."""
    return offsets[group_index.to(offsets.device), torch.arange(offsets.shape[1], device=offsets.device)]
