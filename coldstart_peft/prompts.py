"""(user, item) pairs written into one prompt, with the user's history truncated from the left.

A tokenizer's own pair encoding (``[CLS] user [SEP] item [SEP]``) is what BERT-style models
were trained on; a decoder reads one running text, and the generative scorer needs its own
words around the pair ("… Will the user buy it? Answer:"). :func:`encode_prompts` renders
``template`` with ``{user}`` and ``{item}`` and tokenizes the prompt once, so subword
boundaries are those the model knows. When the prompt is too long, only the user's history is
shortened, oldest part first, so the candidate and the question always stay in the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from coldstart_peft.errors import ConfigError

PLACEHOLDERS = ("{user}", "{item}")


def check_pair_template(template: str, name: str = "template") -> None:
    """Raise :class:`ConfigError` unless ``template`` holds ``{user}`` and then ``{item}``."""
    missing = [p for p in PLACEHOLDERS if p not in template]
    if missing:
        raise ConfigError(f"{name} {template!r} must contain {' and '.join(missing)}, where the pair's texts go")
    if template.index("{user}") > template.index("{item}"):
        raise ConfigError(f"{name} {template!r} must put {{user}} before {{item}}")


def render(template: str, user: str, item: str) -> str:
    """``template`` with the pair's texts in place (no tokenization, no truncation)."""
    return template.replace("{user}", user, 1).replace("{item}", item, 1)


def _shorten_user(tokenizer: PreTrainedTokenizerBase, template: str, user: str, item: str, max_length: int) -> str:
    """``user`` cut from the left until the rendered prompt fits ``max_length`` tokens."""
    length = len(tokenizer(render(template, user, item))["input_ids"])
    if length <= max_length:
        return user
    user_ids = tokenizer(user, add_special_tokens=False)["input_ids"]
    keep = max(0, len(user_ids) - (length - max_length) - 1)  # one spare: re-tokenizing may merge differently
    return tokenizer.decode(user_ids[len(user_ids) - keep :]) if keep else ""


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    user_texts: Sequence[str],
    item_texts: Sequence[str],
    max_length: int,
    item_segment: bool = False,
) -> dict[str, torch.Tensor]:
    """Tokenize one prompt per pair, padded to the longest.

    Args:
        tokenizer: the backbone's tokenizer (a fast one when ``item_segment`` is asked for).
        template: the prompt, with ``{user}`` before ``{item}``.
        user_texts: one user context per pair.
        item_texts: one item text per pair.
        max_length: token budget of a prompt; the user's text is shortened to fit it.
        item_segment: also return ``token_type_ids``: 1 on the tokens of the item text, 0
            elsewhere (what a similarity head compares the user part with).

    Returns:
        ``input_ids``, ``attention_mask`` (and ``token_type_ids``) as ``[pairs, length]`` tensors.
    """
    check_pair_template(template)
    users = [_shorten_user(tokenizer, template, u, i, max_length) for u, i in zip(user_texts, item_texts)]
    prompts = [render(template, u, i) for u, i in zip(users, item_texts)]
    encoded = tokenizer(
        prompts, truncation=True, max_length=max_length, padding="longest", return_tensors="pt",
        return_offsets_mapping=item_segment,
    )  # fmt: skip
    out = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    if item_segment:
        starts = [len(template[: template.index("{item}")].replace("{user}", u, 1)) for u in users]
        ends = [s + len(i) for s, i in zip(starts, item_texts)]
        offsets = encoded["offset_mapping"]
        start = torch.tensor(starts)[:, None]
        end = torch.tensor(ends)[:, None]
        inside = (offsets[..., 0] >= start) & (offsets[..., 1] <= end) & (offsets[..., 1] > offsets[..., 0])
        out["token_type_ids"] = (inside & encoded["attention_mask"].bool()).long()
    return out


def tagged_history(liked: Sequence[str], disliked: Sequence[str], like: str = "liked", dislike: str = "disliked") -> str:
    """A like/dislike history as one text in which every item carries its own verdict.

    ``liked "A". liked "B". disliked "C".`` rather than two lists under two headers: a scorer that
    averages over tokens (the cross-encoder's mean pooling) then holds the share of liked items
    as a linear feature, which a head learns from a few dozen examples. On TALLRec's Movie
    validation prompts, a linear probe of frozen MiniLM features fitted on 64 examples ranks
    with this layout and is at chance with TALLRec's two lists (``benchmarks/results/tallrec``).

    Args:
        liked: titles of the items the user liked, in history order.
        disliked: titles of the items the user disliked.
        like: the word put before a liked item.
        dislike: the word put before a disliked item.
    """
    return " ".join([f'{like} "{t}".' for t in liked] + [f'{dislike} "{t}".' for t in disliked])
