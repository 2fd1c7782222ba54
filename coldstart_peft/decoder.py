"""What a scorer needs to read a decoder-only (GPT-style) backbone as well as a BERT-style one.

An encoder reads every token with every other, so a mean over tokens (or ``[CLS]``) summarises
a text. A causal decoder's token ``t`` has read only tokens ``≤ t``: the only position that has
read the whole text is the last real one, so decoders pool there (last-token pooling, as LLM
embedding models do). Decoders also often ship without a pad token, take no segment ids, and
take an instruction in front of the text. Encoder-decoders (T5) answer from their decoder's first
step, read after the encoder has read the prompt. Everything here is a small pure helper, so the
scorers stay architecture-agnostic and each rule is tested once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from coldstart_peft.errors import ConfigError

POOLINGS = ("auto", "mean", "cls", "last")
"""Pooling choices of the scorers: ``auto`` is ``last`` on a decoder, ``mean`` on an encoder."""


def base_config(model: nn.Module) -> PretrainedConfig | None:
    """The ``transformers`` config of ``model``, through any method wrapper (peft, prompt learning)."""
    config = getattr(model, "config", None)
    if config is None and hasattr(model, "get_base_model"):
        config = getattr(model.get_base_model(), "config", None)
    if config is None and hasattr(model, "base_model"):
        config = getattr(model.base_model, "config", None)
    return config


def is_decoder(config: PretrainedConfig | nn.Module | None) -> bool:
    """Whether a model (or its config) is decoder-only: a causal LM that is no masked LM.

    transformers lists BERT-style models among causal LMs too (``BertLMHeadModel``), so a type
    counts as a decoder when it has a causal-LM head and no masked-LM head; encoder-decoder
    models (T5, BART) are not decoders here.
    """
    if isinstance(config, nn.Module):
        config = base_config(config)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    model_type = getattr(config, "model_type", None)
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def is_encoder_decoder(config: PretrainedConfig | nn.Module | None) -> bool:
    """Whether a model (or its config) is an encoder-decoder (T5, BART): the answer comes from its decoder."""
    if isinstance(config, nn.Module):
        config = base_config(config)
    return bool(getattr(config, "is_encoder_decoder", False))


def decoder_start(config: PretrainedConfig) -> int:
    """The token an encoder-decoder's decoder starts from (T5: the pad token).

    Raises:
        ConfigError: the config names neither a decoder start token nor a pad token.
    """
    start = getattr(config, "decoder_start_token_id", None)
    start = getattr(config, "pad_token_id", None) if start is None else start
    if start is None:
        raise ConfigError(
            f"the {getattr(config, 'model_type', 'encoder-decoder')} config has no decoder_start_token_id or pad_token_id; "
            "set decoder_start_token_id in the model's config.json"
        )
    return int(start)


def decoder_output_scale(config: PretrainedConfig) -> float:
    """The factor an encoder-decoder applies to its decoder's output before the LM head.

    The original T5 (tied embeddings) scales by ``d_model ** -0.5``; T5 v1.1, Flan-T5 and BART do
    not. transformers records it as ``scale_decoder_outputs``.
    """
    if getattr(config, "scale_decoder_outputs", False):
        return float(config.d_model) ** -0.5
    return 1.0


def resolve_pooling(pooling: str, backbone: nn.Module) -> str:
    """``pooling`` with ``auto`` replaced: ``last`` for a decoder backbone, ``mean`` otherwise.

    Raises:
        ConfigError: an unknown pooling name.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    if pooling != "auto":
        return pooling
    return "last" if is_decoder(backbone) else "mean"


def align_mask(mask: torch.Tensor, hidden: torch.Tensor, fill: int = 1) -> torch.Tensor:
    """Left-pad a per-token ``mask`` to the hidden states' length.

    Prompt methods may prepend virtual tokens the tokenizer never saw; they count as attended
    (``fill=1``) context in front of the text.
    """
    extra = hidden.shape[1] - mask.shape[1]
    if extra <= 0:
        return mask
    return torch.cat([mask.new_full((mask.shape[0], extra), fill), mask], dim=1)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Per row, the position of the last attended token: right, left or no padding alike.

    Args:
        mask: ``[batch, length]`` attention mask (1 for a real token).

    Returns:
        A ``[batch]`` long tensor (0 for a row with no real token).
    """
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask.bool(), positions, torch.zeros_like(positions)).max(dim=1).values


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Summarise ``[batch, length, hidden]`` states into ``[batch, hidden]``.

    Args:
        hidden: the backbone's last hidden states.
        mask: the attention mask of the tokens (virtual tokens in front are aligned for).
        pooling: ``mean`` over attended tokens, ``cls`` (the first position) or ``last``
            (the last attended token, what a causal decoder has read everything up to).
    """
    mask = align_mask(mask, hidden)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(mask)]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, backbone: nn.Module) -> PreTrainedTokenizerBase:
    """Give a decoder's tokenizer what batching needs: a pad token and right padding.

    Many decoder tokenizers (GPT-2, Llama) have no pad token; the end-of-sequence token (or the
    unknown one) stands in, which is harmless because the attention mask hides padding and
    pooling reads the mask. Right padding keeps every real token at its natural position under
    causal attention, so no position ids need recomputing. Encoders' tokenizers are returned
    unchanged.

    Raises:
        ConfigError: the tokenizer has no pad, end-of-sequence or unknown token to pad with.
    """
    if not is_decoder(backbone):
        return tokenizer
    if tokenizer.pad_token is None:
        stand_in = tokenizer.eos_token or tokenizer.unk_token
        if stand_in is None:
            raise ConfigError(
                f"the tokenizer of this {type(backbone).__name__} has no pad, end-of-sequence or unknown token to "
                "pad batches with; give it one (tokenizer.pad_token = ...) and save it with the model"
            )
        tokenizer.pad_token = stand_in
    tokenizer.padding_side = "right"
    return tokenizer


def model_inputs(backbone: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``inputs`` as the backbone takes them: a decoder or an encoder-decoder gets no segment ids.

    Llama-style decoders and T5 take no ``token_type_ids``, and GPT-2 would embed them with its
    *word* embeddings (segment 1 would add the embedding of token 1), so they are dropped.
    """
    if "token_type_ids" not in inputs or not (is_decoder(backbone) or is_encoder_decoder(backbone)):
        return inputs
    return {k: v for k, v in inputs.items() if k != "token_type_ids"}


def apply_template(template: str, texts: Sequence[str]) -> list[str]:
    """Each text put into ``template`` at ``{text}`` (an empty template leaves the texts as they are).

    Raises:
        ConfigError: a non-empty template without the ``{text}`` placeholder.
    """
    if not template:
        return list(texts)
    if "{text}" not in template:
        raise ConfigError(f"template {template!r} must contain {{text}}, where the text goes")
    return [template.replace("{text}", t) for t in texts]


def check_template(template: str, name: str = "template", placeholders: Sequence[str] = ("{text}",)) -> None:
    """Raise :class:`ConfigError` if a non-empty ``template`` lacks one of ``placeholders``."""
    missing = [p for p in placeholders if template and p not in template]
    if missing:
        raise ConfigError(f"{name} {template!r} must contain {', '.join(missing)}")


def answer_token_id(tokenizer: PreTrainedTokenizerBase, word: str, context: str = "Answer:") -> int:
    """The id of the first token ``word`` becomes right after ``context`` (``" Yes"`` after ``"Answer:"``).

    Byte-level BPE (GPT-2, Qwen) and SentencePiece (Llama) spell a word differently after a
    space, so the word is tokenized where the scorer reads it, not on its own.

    Raises:
        ConfigError: the tokenizer does not know ``word`` (it maps to the unknown token).
    """
    before = tokenizer(context, add_special_tokens=False)["input_ids"]
    after = tokenizer(f"{context} {word}", add_special_tokens=False)["input_ids"]
    common = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), len(before))
    if common >= len(after) or after[common] == tokenizer.unk_token_id:
        raise ConfigError(f"the tokenizer has no token for {word!r}; choose answer words it knows (yes=..., no=...)")
    return after[common]


def output_embedding_rows(backbone: nn.Module, token_ids: Sequence[int]) -> torch.Tensor:
    """The language-model head's rows for ``token_ids``, read without loading the whole head.

    A base model (``AutoModel``) has no LM head. With tied embeddings (GPT-2, small Qwen, BERT)
    the head is the input embedding matrix; otherwise (Llama) only the needed rows of
    ``lm_head.weight`` are sliced out of the checkpoint's safetensors files, so a 150k-token
    head is never materialised.

    Returns:
        A ``[len(token_ids), hidden]`` float32 tensor; for a checkpoint whose head cannot be
        found, the input embeddings' rows (logged).
    """
    config = base_config(backbone)
    embeddings = backbone.get_input_embeddings().weight
    if getattr(config, "tie_word_embeddings", True):
        return embeddings[list(token_ids)].detach().float().clone()
    rows = _checkpoint_rows(getattr(config, "_name_or_path", ""), "lm_head.weight", token_ids)
    if rows is None:
        import logging

        logging.getLogger(__name__).warning(
            "no lm_head.weight in the safetensors files of %r: the answer head starts from the input embeddings",
            getattr(config, "_name_or_path", ""),
        )
        return embeddings[list(token_ids)].detach().float().clone()
    return rows


def _checkpoint_rows(name_or_path: str, key: str, token_ids: Sequence[int]) -> torch.Tensor | None:
    """Rows of tensor ``key`` (or one ending in ``.key``) from a model folder or cached hub checkpoint."""
    import json
    from pathlib import Path

    from safetensors import safe_open
    from transformers.utils import cached_file

    def locate(filename: str) -> Path | None:
        try:
            found = cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False)
        except Exception:  # not a folder, not cached, offline: the caller falls back
            return None
        return Path(found) if found else None

    files: list[Path] = []
    index = locate("model.safetensors.index.json")
    if index is not None:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        names = {f for k, f in weight_map.items() if k == key or k.endswith("." + key)}
        files = [p for p in (locate(f) for f in sorted(names)) if p is not None]
    else:
        single = locate("model.safetensors")
        files = [single] if single is not None else []
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            name = next((k for k in handle.keys() if k == key or k.endswith("." + key)), None)
            if name is not None:
                tensor = handle.get_slice(name)
                return torch.cat([tensor[i : i + 1] for i in token_ids]).float()
    return None
