"""Shared by the ``prefix`` and ``prompt`` plugins: peft prompt learning behind the backbone contract.

A scorer calls its backbone like a ``transformers`` encoder, ``backbone(input_ids=...,
attention_mask=..., token_type_ids=...)``, and reads one hidden state per input token. peft's
own prompt-learning forward for encoders breaks that contract in three ways: it drops
``token_type_ids`` (the segment ids a cross-encoder relies on), prompt tuning returns
``num_virtual_tokens`` extra positions in front, and prefix tuning hands the prefix to the base
model as ``past_key_values``, a keyword transformers 5 renamed to ``cache`` for BERT (kept only
as a deprecated alias). So :class:`PromptLearningBackbone` keeps peft for what it does well
(the prompt parameters, ``get_prompt``, save and load in peft's format) and does the forward
itself: it extends the mask and the segment ids, passes the prefix under whichever keyword the
base model's ``forward`` declares (feature-detected, so a peft or transformers fix changes
nothing here), and trims the virtual positions from the output.

Virtual tokens take position ids ahead of the real tokens, as in peft, so an input of ``L``
tokens needs ``L + num_virtual_tokens`` positions; longer inputs raise
:class:`~coldstart_peft.InputTooLongError` instead of an index error deep in the embeddings.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from peft import PeftModel
from torch import nn

from coldstart_peft import ConfigError, InputTooLongError, PeftMethod

CACHE_KEYWORDS = ("past_key_values", "cache")


def position_budget(model: nn.Module) -> int | None:
    """The number of position embeddings of a ``transformers`` model, or ``None`` if unbounded."""
    return getattr(getattr(model, "config", None), "max_position_embeddings", None)


def check_virtual_tokens(model: nn.Module, num_virtual_tokens: int) -> None:
    """Refuse virtual-token counts that leave no positions for real tokens.

    Raises:
        ConfigError: ``num_virtual_tokens`` is not below the model's position budget.
    """
    budget = position_budget(model)
    if budget is not None and num_virtual_tokens >= budget:
        raise ConfigError(
            f"num_virtual_tokens={num_virtual_tokens} leaves no room for input tokens: the base model "
            f"has {budget} positions; use fewer virtual tokens"
        )


def cache_keyword(model: nn.Module) -> str:
    """The keyword under which ``model.forward`` accepts a key/value cache.

    Raises:
        ConfigError: the model's forward takes no cache, so prefix tuning cannot reach its attention.
    """
    parameters = inspect.signature(model.forward).parameters
    for keyword in CACHE_KEYWORDS:
        if keyword in parameters:
            return keyword
    raise ConfigError(
        f"{type(model).__name__}.forward accepts no key/value cache ({' or '.join(CACHE_KEYWORDS)}), "
        "so prefix tuning cannot reach its attention layers; use the prompt, lora or bottleneck method"
    )


class PromptLearningBackbone(nn.Module):
    """A peft prompt-learning model (prefix or prompt tuning) called like the encoder it wraps.

    Args:
        peft_model: the ``PeftModel`` holding the virtual tokens and the base encoder.

    Example:
        >>> backbone = PromptLearningBackbone(get_peft_model(bert, PromptTuningConfig(...)))
        >>> backbone(input_ids=ids, attention_mask=mask).last_hidden_state.shape == (*ids.shape, hidden)
        True
    """

    def __init__(self, peft_model: PeftModel):
        super().__init__()
        self.peft_model = peft_model
        base = peft_model.get_base_model()
        self.is_prefix = peft_model.active_peft_config.peft_type.value == "PREFIX_TUNING"
        self._cache_keyword = cache_keyword(base) if self.is_prefix else None

    @property
    def config(self):
        """The base model's ``transformers`` config."""
        return self.peft_model.get_base_model().config

    @property
    def num_virtual_tokens(self) -> int:
        """Virtual tokens placed in front of every input."""
        return self.peft_model.active_peft_config.num_virtual_tokens

    def _check_length(self, length: int) -> None:
        budget = position_budget(self.peft_model.get_base_model())
        if budget is not None and length + self.num_virtual_tokens > budget:
            raise InputTooLongError(
                f"an input of {length} tokens plus {self.num_virtual_tokens} virtual tokens needs "
                f"{length + self.num_virtual_tokens} positions, but the base model has {budget}; set the "
                f"scorer's max_length to at most {budget - self.num_virtual_tokens} or use fewer virtual tokens"
            )

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None, **kwargs):
        """Run the encoder with the virtual tokens; the output has one position per input token."""
        base = self.peft_model.get_base_model()
        batch, length = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        self._check_length(length)
        virtual = self.num_virtual_tokens
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is None:
            attention_mask = torch.ones(batch, length, dtype=torch.long, device=device)
        attention_mask = torch.cat(
            [torch.ones(batch, virtual, dtype=attention_mask.dtype, device=device), attention_mask], dim=1
        )
        prompt = self.peft_model.get_prompt(batch_size=batch)
        if self.is_prefix:
            kwargs[self._cache_keyword] = prompt
            return base(
                input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                token_type_ids=token_type_ids, **kwargs,
            )
        if inputs_embeds is None:
            inputs_embeds = base.get_input_embeddings()(input_ids)
        if token_type_ids is not None:
            # Virtual tokens read as segment A, like the [CLS] they precede.
            token_type_ids = torch.cat([token_type_ids.new_zeros(batch, virtual), token_type_ids], dim=1)
        inputs_embeds = torch.cat([prompt.to(inputs_embeds.dtype), inputs_embeds], dim=1)
        output = base(inputs_embeds=inputs_embeds, attention_mask=attention_mask, token_type_ids=token_type_ids, **kwargs)
        output.last_hidden_state = output.last_hidden_state[:, virtual:]
        if getattr(output, "hidden_states", None) is not None:
            output.hidden_states = tuple(h[:, virtual:] for h in output.hidden_states)
        return output


class PromptLearningMethod(PeftMethod):
    """Base of the prompt-learning methods: peft's virtual tokens behind :class:`PromptLearningBackbone`.

    Subclasses give a config with ``num_virtual_tokens`` and ``to_peft()``, and may refuse an
    architecture in :meth:`check_architecture` before anything is wrapped.
    """

    # peft serves several adapters per batch only for LoRA-family layers, and there are no
    # weights to fold virtual tokens into.
    supports_mixed_batches = False
    supports_merge = False

    def check_architecture(self, model: nn.Module) -> None:
        """Raise a named error if ``model`` cannot take this method (default: any model can)."""

    def prepare(self, model, config, *, total_steps=None):
        check_virtual_tokens(model, config.num_virtual_tokens)
        self.check_architecture(model)
        return PromptLearningBackbone(super().prepare(model, config))

    def save(self, model: PromptLearningBackbone, directory: Path) -> None:
        super().save(model.peft_model, directory)

    def load(self, model: nn.Module, directory: Path) -> PromptLearningBackbone:
        return PromptLearningBackbone(super().load(model, directory))
