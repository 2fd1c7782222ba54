"""Score one batch whose pairs belong to different domains with a single encoder pass.

peft's LoRA takes ``adapter_names=[...]``, one per row, and applies each row's adapter in one
forward pass. The scorer head is per domain too, and a scorer does not expose its head
separately from its encoder, so the batch runs in two steps:

1. The scorer runs on the whole batch with the backbone wrapped by :class:`_Recording`, which
   adds ``adapter_names`` and keeps every encoder output. Rows of the domain whose head is
   active get their final scores from this pass.
2. For each other domain in the batch, its head is switched in and the scorer runs on that
   domain's rows with the backbone replaced by :class:`_Replay`, which serves the recorded
   encoder outputs instead of encoding again. Only the small head reruns, on those rows of the
   batch's tokenized inputs (:meth:`~coldstart_peft.Scorer.pair_inputs`); a scorer that does
   not expose them tokenizes the rows again.

This relies on one property of a scorer: each backbone call encodes the given pairs row by
row, in order (true of the cross-encoder, one call, and the bi-encoder, two calls). The replay
checks the token ids it is asked to encode against the recorded ones and refuses a mismatch,
so a scorer that breaks the property fails loudly rather than scoring wrong rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from coldstart_peft.bank.batched_lora import BatchedLora
from coldstart_peft.errors import AdapterError
from coldstart_peft.scorer import Scorer, inference_autocast, length_sorted_batches


class _Recording(nn.Module):
    def __init__(self, backbone: nn.Module, adapter_names: list[str], batched: BatchedLora | None = None):
        super().__init__()
        self.inner = backbone
        self.adapter_names = adapter_names
        self.batched = batched
        self.calls: list[tuple[dict[str, torch.Tensor], object]] = []

    def forward(self, **inputs):
        if self.batched is not None:  # every row's adapter in one gathered matmul per layer
            with self.batched.rows(self.adapter_names):
                output = self.inner(**inputs)
        else:
            output = self.inner(**inputs, adapter_names=self.adapter_names)
        self.calls.append((inputs, output))
        return output


class _Replay(nn.Module):
    def __init__(self, calls, rows: torch.Tensor):
        super().__init__()
        self.calls, self.rows, self.next = calls, rows, 0

    def forward(self, **inputs):
        recorded, output = self.calls[self.next]
        self.next += 1
        ids = inputs["input_ids"]
        length = ids.shape[1]
        same = length <= recorded["input_ids"].shape[1] and torch.equal(recorded["input_ids"][self.rows, :length], ids)
        if not same or recorded["attention_mask"][self.rows, length:].any():
            raise AdapterError(
                "the scorer did not encode a domain's rows the way it encoded the mixed batch, so its "
                "mixed-batch scores cannot be reused; score with mixed=False"
            )
        return type(output)(**{k: _rows(v, self.rows, length) for k, v in output.items()})


def _rows(value, rows: torch.Tensor, length: int):
    """The recorded rows of one output field, trimmed to the replayed sequence length."""
    if not torch.is_tensor(value):
        return value
    value = value[rows]
    return value[:, :length] if value.dim() > 2 else value


def _logits(scorer: Scorer, users: list[str], items: list[str], inputs: dict[str, torch.Tensor] | None) -> torch.Tensor:
    """The scorer's logits from its own tokenized inputs when it exposes them, else from the texts."""
    return scorer.forward_pairs(users, items) if inputs is None else scorer.pair_logits(inputs)


@contextlib.contextmanager
def _backbone_replaced(scorer: Scorer, module: nn.Module):
    original = scorer.backbone
    scorer.backbone = module
    try:
        yield module
    finally:
        scorer.backbone = original


@torch.no_grad()
def score_mixed(
    scorer: Scorer, user_texts: Sequence[str], item_texts: Sequence[str], keys: Sequence[str],
    activate: Callable[[str], None], activate_head: Callable[[str], None], batch_size: int = 64,
    batched: BatchedLora | None = None,
) -> np.ndarray:  # fmt: skip
    """Score aligned pairs, each under its own adapter key, in mixed-domain batches.

    Args:
        scorer: the bank's scorer, its backbone a LoRA ``PeftModel`` holding every key.
        user_texts: one user context per pair.
        item_texts: one item text per pair.
        keys: the peft adapter name for each pair (``"__base__"`` for the bare base model).
        activate: switches adapter and head to a key (the bank's own switch).
        activate_head: switches only the head (replayed rows need no adapter).
        batch_size: pairs per encoder pass.
        batched: the gathered multi-adapter LoRA path (:mod:`~coldstart_peft.bank.batched_lora`);
            ``None`` uses peft's ``adapter_names``.

    Returns:
        One score per pair, as the grouped path would give them.
    """
    scorer.eval()
    out = np.empty(len(item_texts), dtype=np.float32)
    with inference_autocast(scorer.precision, scorer.device):
        for idx in length_sorted_batches(user_texts, item_texts, batch_size):
            names = [keys[i] for i in idx]
            distinct = list(dict.fromkeys(names))
            # A real adapter goes active first: peft skips adapter_names while adapters are disabled.
            first = next((k for k in distinct if k != "__base__"), distinct[0])
            activate(first)
            users, items = [user_texts[i] for i in idx], [item_texts[i] for i in idx]
            if len(distinct) == 1:
                logits = scorer.forward_pairs(users, items)
                out[idx] = logits.float().cpu().numpy()
                continue
            use = batched if batched is not None and batched.covers(distinct) else None
            inputs = scorer.pair_inputs(users, items)
            with _backbone_replaced(scorer, _Recording(scorer.backbone, names, use)) as recording:
                logits = _logits(scorer, users, items, inputs).float().cpu().numpy()
            batch_out = np.empty(len(idx), dtype=np.float32)
            for key in distinct:
                rows = [r for r, name in enumerate(names) if name == key]
                if key == first:
                    batch_out[rows] = logits[rows]
                    continue
                activate_head(key)
                picked = torch.tensor(rows)
                with _backbone_replaced(scorer, _Replay(recording.calls, picked)):
                    sub = _logits(scorer, [users[r] for r in rows], [items[r] for r in rows],
                                  None if inputs is None else {k: v[picked.to(v.device)] for k, v in inputs.items()})  # fmt: skip
                batch_out[rows] = sub.float().cpu().numpy()
            out[idx] = batch_out
    return out
