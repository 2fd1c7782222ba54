"""Tiny random decoder-only models (Llama, Qwen2, GPT-2) saved in-process, with word-level tokenizers.

No downloads: each model has two layers, hidden size 32 and the toy task's vocabulary plus the
generative scorer's prompt words. The tokenizers have no pad token, as many real decoders do.
"""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import COLOURS, KINDS, WORDS

PROMPT_WORDS = ["user", "history", "candidate", "will", "the", "buy", "it", "?", "answer", "yes", "no", ",", "!"]
SPECIAL = ["<unk>", "<s>", "</s>"]
KINDS_OF_DECODER = ("llama", "gpt2")
"""Saved with a tokenizer. Qwen2 is built in memory only (:func:`tiny_decoder_model`): transformers 5's
AutoTokenizer replaces any tokenizer saved beside a ``qwen2`` config with Qwen2's own byte-level BPE."""


def save_tokenizer(folder: Path) -> int:
    """Save a lower-casing word-level tokenizer without a pad token; return its vocabulary size."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = SPECIAL + sorted(set(WORDS + COLOURS + KINDS + PROMPT_WORDS))
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    return len(vocab)


def save_tiny_decoder(kind: str, folder: Path) -> Path:
    """Save a tiny random causal LM of ``kind`` (llama, gpt2) and its tokenizer in ``folder``."""
    model = tiny_decoder_model(kind, save_tokenizer(folder))
    model.save_pretrained(folder)
    return folder


def tiny_decoder_model(kind: str, vocab_size: int = 64):
    """A tiny random causal LM of ``kind`` (llama, qwen2, gpt2), seeded."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    common = {"vocab_size": vocab_size, "bos_token_id": 1, "eos_token_id": 2}
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=128, **common))
    else:
        config_class, model_class = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[kind]
        # Untied head (as Llama checkpoints): the generative scorer must read lm_head's rows.
        model = model_class(config_class(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=128, tie_word_embeddings=False, **common,
        ))  # fmt: skip
    return model


def save_tiny_t5(folder: Path, tied: bool = True) -> Path:
    """Save a tiny random T5 (encoder-decoder) and a word-level tokenizer with T5's special tokens.

    ``tied``: the original T5's layout, whose decoder output is scaled by ``d_model ** -0.5``
    before the LM head; ``False`` is T5 v1.1 / Flan-T5's, unscaled.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    vocab = ["<pad>", "</s>", "<unk>"] + sorted(set(WORDS + COLOURS + KINDS + PROMPT_WORDS))
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="</s>",
                            model_input_names=["input_ids", "attention_mask"]).save_pretrained(folder)  # fmt: skip
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(vocab), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=tied)  # fmt: skip
    T5ForConditionalGeneration(config).save_pretrained(folder)
    return folder
