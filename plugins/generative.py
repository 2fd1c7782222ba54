"""The generative scorer: ask the language model "Will the user buy it?" and read Yes against No.

The pair is written as a prompt (``template``)::

    User history: <user text>
    Candidate: <item text>
    Will the user buy it? Answer:

and the score is ``logit("Yes") - logit("No")`` of the next token at the answer position,
the binary objective of TALLRec and other LLM recommenders. It is the log-odds of Yes among
the two answers, so binary cross-entropy on it (the default loss) trains the model to answer
correctly, and the ranking losses (``listwise``, ``bpr``) compare items of one user.

On a decoder-only backbone (GPT-2, Llama, Qwen) the answer position is the prompt's last
token and the two logits come from the model's own language-model head: its Yes and No rows
are read once from the checkpoint (only those two rows, never the whole head) and kept as
the scorer's head, ``answer = w_yes - w_no``, trained with the method. On a BERT-style
encoder the prompt ends in the mask token and its hidden state is read the same way (a
masked LM's head ties to the input embeddings), so the scorer works on the bundled MiniLM
too. On an encoder-decoder (T5) the encoder reads the prompt and the answer is the decoder's
first token, the position TALLRec-style seq2seq recommenders generate "Yes" or "No" at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from coldstart_peft import ConfigError, PairScorer, PairScorerConfig, hookimpl
from coldstart_peft.decoder import (
    answer_token_id,
    base_config,
    decoder_output_scale,
    decoder_start,
    is_decoder,
    is_encoder_decoder,
    model_inputs,
    output_embedding_rows,
    prepare_tokenizer,
)
from coldstart_peft.prompts import check_pair_template, encode_prompts

DEFAULT_TEMPLATE = "User history: {user}\nCandidate: {item}\nWill the user buy it? Answer:"


@dataclasses.dataclass
class GenerativeConfig(PairScorerConfig):
    """Settings of the generative (Yes/No) scorer."""

    template: str = dataclasses.field(
        default=DEFAULT_TEMPLATE,
        metadata={"help": "the question, with {user} before {item}; the answer token follows its end"},
    )
    yes: str = dataclasses.field(default="Yes", metadata={"help": "the answer word whose logit counts for the item"})
    no: str = dataclasses.field(default="No", metadata={"help": "the answer word whose logit counts against it"})
    loss: str = dataclasses.field(
        default="bce", metadata={"help": "'bce' on logit(yes) - logit(no) (pointwise), 'listwise' or 'bpr'"}
    )

    def validate(self) -> None:
        super().validate()
        check_pair_template(self.template)
        if not self.yes.strip() or not self.no.strip() or self.yes.strip() == self.no.strip():
            raise ConfigError(f"yes and no must be two different non-empty words, got {self.yes!r} and {self.no!r}")


class Generative(PairScorer):
    """Asks the language model whether the user will buy the item; scores logit(Yes) - logit(No)."""

    name = "generative"
    config_class = GenerativeConfig
    # Pointwise: each pair is its own question, so a few negatives per positive balance the labels.
    default_negatives = 3

    def __init__(self, backbone, tokenizer, config=None):
        super().__init__(backbone, prepare_tokenizer(tokenizer, backbone), config)
        self.causal = is_decoder(backbone)
        self.seq2seq = is_encoder_decoder(backbone)
        template = self.config.template
        if self.seq2seq:
            self.decoder_start = decoder_start(base_config(backbone))
        elif not self.causal:
            if self.tokenizer.mask_token is None:
                raise ConfigError(
                    f"the generative scorer reads the next token of a decoder or the mask token of a masked LM; "
                    f"{type(backbone).__name__}'s tokenizer has neither a causal LM nor a mask token. Use a decoder "
                    "(GPT-2, Llama, Qwen) or a BERT-style model"
                )
            template = f"{template} {self.tokenizer.mask_token}"
        self.template = template
        self.answer_ids = (answer_token_id(self.tokenizer, self.config.yes.strip()),
                           answer_token_id(self.tokenizer, self.config.no.strip()))  # fmt: skip
        rows = output_embedding_rows(backbone, self.answer_ids)
        # T5 scales its decoder output before the tied head; folded in here, the score is its LM's logits.
        scale = decoder_output_scale(base_config(backbone)) if self.seq2seq else 1.0
        self.answer = nn.Parameter((rows[0] - rows[1]) * scale)
        self.answer_bias = nn.Parameter(torch.zeros(()))

    def tokenize_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return encode_prompts(self.tokenizer, self.template, user_texts, item_texts, self.config.max_length)

    def _answer_position(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per prompt, the position whose next-token (or masked-token) logits hold the answer."""
        mask = inputs["attention_mask"]
        if self.causal:
            real = mask.bool()
        else:
            real = inputs["input_ids"] == self.tokenizer.mask_token_id
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        return torch.where(real, positions, torch.zeros_like(positions)).max(dim=1).values

    def pair_logits(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.seq2seq:  # one decoder step from the start token: its output predicts the answer
            ids = inputs["input_ids"]
            start = torch.full((ids.shape[0], 1), self.decoder_start, dtype=ids.dtype, device=ids.device)
            hidden = self.backbone(**model_inputs(self.backbone, inputs), decoder_input_ids=start).last_hidden_state
            return hidden[:, -1].float() @ self.answer + self.answer_bias
        hidden = self.backbone(**model_inputs(self.backbone, inputs)).last_hidden_state
        # Prompt methods may put virtual tokens in front of the prompt; positions count from its end.
        position = self._answer_position(inputs) + (hidden.shape[1] - inputs["attention_mask"].shape[1])
        state = hidden[torch.arange(hidden.shape[0], device=hidden.device), position]
        return state.float() @ self.answer + self.answer_bias


@hookimpl
def register_scorers(register):
    register(Generative)
