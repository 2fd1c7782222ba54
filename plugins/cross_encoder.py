"""The cross-encoder scorer: score = head(pool(M(user text [SEP] item text))).

One forward pass reads the user context and the candidate together, so attention can match
words across them; this is the most accurate scorer and the slowest (one pass per pair).

On a decoder-only backbone the pair is written as one prompt (``template``), pooled at its
last token by default, and the item's tokens are found from the tokenizer's offsets, since a
decoder has no segment ids.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch
from torch import nn

from coldstart_peft import ConfigError, PairScorer, PairScorerConfig, hookimpl
from coldstart_peft.decoder import POOLINGS, is_decoder, model_inputs, pool, prepare_tokenizer, resolve_pooling
from coldstart_peft.length_blocks import blockwise
from coldstart_peft.prompts import check_pair_template, encode_prompts

DECODER_TEMPLATE = "{user}\nCandidate: {item}"
"""How a pair is written for a decoder when no ``template`` is given."""


@dataclasses.dataclass
class CrossEncoderConfig(PairScorerConfig):
    """Settings of the cross-encoder."""

    pooling: str = dataclasses.field(
        default="auto",
        metadata={"help": "'auto' (last token on a decoder, mean on an encoder), 'mean' over tokens, 'cls' or 'last'"},
    )
    template: str = dataclasses.field(
        default="",
        metadata={"help": "the pair as one prompt, with {user} before {item} (empty: the tokenizer's own pair "
                          f"encoding on an encoder, {DECODER_TEMPLATE!r} on a decoder)"},
    )
    dropout: float = dataclasses.field(default=0.1, metadata={"help": "dropout before the head"})
    head: str = dataclasses.field(
        default="similarity",
        metadata={"help": "'similarity': cosine of the user and item segments plus a linear term that "
                          "starts at zero, so training starts from the encoder's zero-shot ranking; "
                          "'linear': a linear head on the pooled pair, the textbook cross-encoder"},
    )
    temperature: float = dataclasses.field(
        default=0.05, metadata={"help": "initial temperature of the similarity head (learned)"}
    )

    def validate(self) -> None:
        super().validate()
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.template:
            check_pair_template(self.template)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head not in ("similarity", "linear"):
            raise ConfigError(f"head must be 'similarity' or 'linear', got {self.head!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")


class CrossEncoder(PairScorer):
    """Reads user context and item together; a linear head on the pooled encoding gives the score."""

    name = "cross-encoder"
    config_class = CrossEncoderConfig

    def __init__(self, backbone, tokenizer, config=None):
        super().__init__(backbone, prepare_tokenizer(tokenizer, backbone), config)
        self.pooling = resolve_pooling(self.config.pooling, backbone)
        self.template = self.config.template or (DECODER_TEMPLATE if is_decoder(backbone) else "")
        hidden = backbone.config.hidden_size
        self.dropout = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(hidden, 1)
        if self.config.head == "similarity":
            # Zero init: at step 0 the score is exactly the segment cosine, a useful ranking.
            nn.init.zeros_(self.head.weight)
            self.log_scale = nn.Parameter(torch.tensor(-math.log(self.config.temperature)))
        else:
            nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def tokenize_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.template:  # token_type_ids marks the item's tokens, for the similarity head only
            return encode_prompts(self.tokenizer, self.template, user_texts, item_texts, self.config.max_length, item_segment=True)
        # Only the user context is truncated, from the left (oldest history first), so the
        # candidate item and the most recent clicks always stay in the input.
        self.tokenizer.truncation_side = "left"
        return self.tokenizer(
            list(user_texts),
            list(item_texts),
            truncation="only_first",
            max_length=self.config.max_length,
            padding="longest",
            return_tensors="pt",
        )

    def pair_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # A training batch holds whole groups, whose items differ in length; on a CPU work grows
        # with every padding token, so long and short pairs run apart. Scoring batches are sorted
        # by pair length already, and an accelerator is bound by launches at these sizes.
        if self.training and self.length_block_cost is not None and inputs["attention_mask"].device.type == "cpu":
            return blockwise(self._block_logits, inputs, self.length_block_cost)
        return self._block_logits(inputs)

    def _block_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.backbone(**model_inputs(self.backbone, inputs)).last_hidden_state
        mask = _align(inputs["attention_mask"], hidden).unsqueeze(-1).to(hidden.dtype)
        pooled = pool(hidden, inputs["attention_mask"], self.pooling)
        # A backbone loaded in bf16 (load option dtype) hands the float32 head bf16 states.
        linear = self.head(self.dropout(pooled.to(self.head.weight.dtype))).squeeze(-1)
        if self.config.head == "linear":
            return linear
        # Segment B (token type 1) is the item; segment A is the user context.
        item_mask = _align(inputs["token_type_ids"], hidden, fill=0).unsqueeze(-1).to(hidden.dtype) * mask
        user = _masked_mean(hidden, mask - item_mask)
        item = _masked_mean(hidden, item_mask)
        cosine = nn.functional.cosine_similarity(user.float(), item.float(), dim=-1)
        return self.log_scale.exp() * cosine + linear


def _align(values: torch.Tensor, hidden: torch.Tensor, fill: int = 1) -> torch.Tensor:
    """Left-pad per-token ``values`` to the encoder's output length.

    Prompt-tuning methods prepend virtual tokens the tokenizer never saw; they count as
    attended context (``fill=1`` for the mask) and as part of the user segment (``fill=0``).
    """
    extra = hidden.shape[1] - values.shape[1]
    if extra <= 0:
        return values
    pad = torch.full((values.shape[0], extra), fill, dtype=values.dtype, device=values.device)
    return torch.cat([pad, values], dim=1)


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


@hookimpl
def register_scorers(register):
    register(CrossEncoder)
