"""The base of scorers that read each (user, item) pair as one input: the cross-encoder, the generative scorer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from coldstart_peft.errors import ConfigError
from coldstart_peft.examples import TrainGroup
from coldstart_peft.losses import LOSSES, ranking_loss
from coldstart_peft.scorer import Scorer, ScorerConfig, own_offsets, pair_batch


@dataclasses.dataclass
class PairScorerConfig(ScorerConfig):
    """Settings shared by pair scorers: the training loss over each group's pairs."""

    loss: str = dataclasses.field(
        default="listwise", metadata={"help": "'listwise' (softmax over a group), 'bpr' or 'bce'"}
    )

    def validate(self) -> None:
        super().validate()
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")


class PairScorer(Scorer):
    """A scorer with one input and one logit per (user, item) pair.

    Subclasses implement :meth:`tokenize_pairs` and :meth:`pair_logits`; the rest of the
    :class:`Scorer` contract follows from those two. Training batches hold every pair of a group
    (:func:`pair_batch`), the loss is the config's ``loss`` over each group with the priors'
    offsets added (:func:`own_offsets`), and since inputs and logits are apart, an
    :class:`~coldstart_peft.bank.AdapterBank` tokenizes a mixed-domain batch once.

    Example:
        A linear head on the first token::

            class FirstToken(PairScorer):
                name = "first-token"

                def __init__(self, backbone, tokenizer, config=None):
                    super().__init__(backbone, tokenizer, config)
                    self.head = torch.nn.Linear(backbone.config.hidden_size, 1)

                def tokenize_pairs(self, user_texts, item_texts):
                    return self.tokenizer(list(user_texts), list(item_texts), truncation=True,
                                          max_length=self.config.max_length, padding=True, return_tensors="pt")

                def pair_logits(self, inputs):
                    return self.head(self.backbone(**inputs).last_hidden_state[:, 0]).squeeze(-1)
    """

    config_class = PairScorerConfig

    def tokenize_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The encoder inputs of aligned pairs, on the CPU: one row per pair."""
        raise NotImplementedError

    def collate(self, groups: Sequence[TrainGroup]) -> dict[str, torch.Tensor]:
        return pair_batch(groups, self.tokenize_pairs)

    def compute_loss(self, batch: dict[str, torch.Tensor], offsets: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "group_index")}
        logits = self.pair_logits(inputs)
        if offsets is not None:  # one logit per (group, own item): the grid's own-group entries
            logits = logits + own_offsets(offsets, batch["group_index"])
        return ranking_loss(self.config.loss, logits, batch["labels"], batch["group_index"])

    def forward_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> torch.Tensor:
        return self.pair_logits(self.pair_inputs(user_texts, item_texts))

    def pair_inputs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.tokenize_pairs(user_texts, item_texts).items()}
