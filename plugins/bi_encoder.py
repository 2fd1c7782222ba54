"""The bi-encoder (two-tower) scorer: score = s · sim(M(user text), M(item text)).

User context and item are encoded separately, so a catalog is encoded once and a user is
ranked against it with one matrix product. Training uses in-batch negatives (InfoNCE): every
other item in the batch is a negative for free. Zero-shot sentence embeddings already rank
reasonably, so fine-tuning starts from a useful model.

``item_tower="shared"`` (the default) adapts one encoder for both sides. ``"frozen"`` adapts
the user side only and embeds items with a frozen copy of the base model: an item is then
embedded once for the scorer's lifetime, a training step costs one backward pass per user
instead of one per user and item, and every item embedded so far is a negative in the
softmax (``memory_negatives``). On a CPU that buys several times more training users per
second; cold items still work, since their text goes through the same frozen tower.

On a decoder-only backbone (GPT-2, Llama, Qwen) ``pooling="auto"`` pools at the last real
token, the only one a causal model has read the whole text up to, and ``user_template`` /
``item_template`` put an instruction around each side, as LLM embedding models expect.

A labeled-pairs file may hold groups without a positive (a user's disliked item): those train
pointwise, with binary cross-entropy on ``s · sim + b`` (``loss="bce"`` trains every group so).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from coldstart_peft import ConfigError, Scorer, ScorerConfig, TrainGroup, hookimpl, own_offsets
from coldstart_peft.decoder import POOLINGS, apply_template, check_template, model_inputs, pool, prepare_tokenizer, resolve_pooling
from coldstart_peft.scorer import inference_autocast

LOSSES = ("infonce", "bce")


TRAIN_BLOCK = 32
"""Item texts per padded block in training: big enough to keep matmuls efficient on a CPU."""


@dataclasses.dataclass
class BiEncoderConfig(ScorerConfig):
    """Settings of the bi-encoder."""

    max_length: int = dataclasses.field(default=128, metadata={"help": "token budget of one text"})
    pooling: str = dataclasses.field(
        default="auto",
        metadata={"help": "'auto' (last token on a decoder, mean on an encoder), 'mean' over tokens, 'cls' or 'last'"},
    )
    user_template: str = dataclasses.field(
        default="", metadata={"help": "instruction around each user text, with {text} where it goes (empty: none)"}
    )
    item_template: str = dataclasses.field(
        default="", metadata={"help": "the same for item texts"}
    )
    loss: str = dataclasses.field(
        default="infonce",
        metadata={"help": "'infonce': softmax of each positive over the batch's items (groups without a positive "
                          "train with BCE on their own pairs); 'bce': every pair pointwise"},
    )
    similarity: str = dataclasses.field(default="cosine", metadata={"help": "'cosine' or 'dot'"})
    temperature: float = dataclasses.field(default=0.05, metadata={"help": "initial softmax temperature (learned)"})
    in_batch_negatives: bool = dataclasses.field(
        default=True, metadata={"help": "use the other items of the batch as negatives (InfoNCE)"}
    )
    item_tower: str = dataclasses.field(
        default="shared",
        metadata={"help": "'shared': items go through the adapted encoder; 'frozen': through a frozen copy of the base"},
    )
    memory_negatives: bool = dataclasses.field(
        default=True, metadata={"help": "with a frozen item tower, every item embedded so far is a negative"}
    )
    logq_correction: bool = dataclasses.field(
        default=True,
        metadata={"help": "in training, subtract log(how often an item shows up in a batch) from its in-batch "
                          "logits: other users' positives are popularity-sampled negatives, uniform test "
                          "candidates are not"},
    )

    def validate(self) -> None:
        super().validate()
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_template(self.user_template, "user_template")
        check_template(self.item_template, "item_template")
        if self.similarity not in ("cosine", "dot"):
            raise ConfigError(f"similarity must be 'cosine' or 'dot', got {self.similarity!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.item_tower not in ("shared", "frozen"):
            raise ConfigError(f"item_tower must be 'shared' or 'frozen', got {self.item_tower!r}")


class BiEncoder(Scorer):
    """Encodes user context and item separately; scores by scaled similarity (two-tower)."""

    name = "bi-encoder"
    config_class = BiEncoderConfig
    embeds_texts_apart = True
    # Every other group's items are negatives too (popularity-sampled ones); one uniformly
    # sampled negative per group adds what they lack. The Beauty benchmark figures use it.
    default_negatives = 1

    def __init__(self, backbone, tokenizer, config=None):
        super().__init__(backbone, prepare_tokenizer(tokenizer, backbone), config)
        self.pooling = resolve_pooling(self.config.pooling, backbone)
        self.log_scale = nn.Parameter(torch.tensor(-math.log(self.config.temperature)))
        # Shifts every score alike, so rankings ignore it; pointwise (BCE) training needs it.
        self.bias = nn.Parameter(torch.zeros(()))
        self._kept: dict[str, torch.Tensor] | None = None  # embeddings kept inside frozen()
        if self.config.item_tower == "frozen":
            # Set around nn.Module on purpose: the copy is not saved, not counted as the scorer's
            # parameters, and never wrapped by the method, which only sees ``backbone``.
            object.__setattr__(self, "_item_encoder", copy.deepcopy(backbone).eval().requires_grad_(False))
            self._memory_rows: dict[str, int] = {}
            self._memory = torch.zeros(0, self._dim())

    @contextlib.contextmanager
    def frozen(self):
        """Embed each distinct text once for the whole block (the weights must not change in it)."""
        outer = self._kept
        self._kept = {} if outer is None else outer
        try:
            yield
        finally:
            self._kept = outer

    def _tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(
            list(texts), truncation=True, max_length=self.config.max_length, padding="longest", return_tensors="pt"
        )

    def _templated(self, texts: Sequence[str], side: str) -> list[str]:
        """``texts`` in the user or item template: what the encoder reads (and embeddings are kept by)."""
        return apply_template(self.config.user_template if side == "user" else self.config.item_template, texts)

    def _embed(self, inputs: dict[str, torch.Tensor], encoder: nn.Module | None = None) -> torch.Tensor:
        encoder = encoder or self.backbone
        hidden = encoder(**model_inputs(encoder, inputs)).last_hidden_state
        pooled = pool(hidden, inputs["attention_mask"], self.pooling).float()
        return F.normalize(pooled, dim=-1) if self.config.similarity == "cosine" else pooled

    def encode(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False, side: str = "user") -> torch.Tensor:
        """Embed texts for retrieval through the adapted encoder; returns a float32 CPU tensor.

        Args:
            texts: the texts to embed.
            batch_size: texts per forward pass.
            progress: show a tqdm bar.
            side: ``"user"`` or ``"item"``: which template the texts go into (the same without templates).
        """
        texts = self._templated(texts, side)
        if self._kept is not None:
            fresh = list(dict.fromkeys(t for t in texts if t not in self._kept))
            if fresh:
                self._kept.update(zip(fresh, self._encode(fresh, batch_size, progress)))
            if not texts:
                return torch.empty(0, self._dim(), dtype=torch.float32)
            return torch.stack([self._kept[t] for t in texts])
        return self._encode(texts, batch_size, progress)

    def precompute(self, user_texts: Sequence[str], item_texts: Sequence[str], progress: bool = False) -> None:
        """Embed the distinct user and item texts once, under a bar per side (inside :meth:`frozen`)."""
        if self._kept is None:
            return
        self.encode(list(dict.fromkeys(user_texts)), progress=progress)
        self.encode_items(list(dict.fromkeys(item_texts)), progress=progress)

    def encode_items(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> torch.Tensor:
        """Embed item texts for retrieval: through the item tower, which may differ from the user one."""
        if self.config.item_tower == "shared":
            return self.encode(texts, batch_size, progress, side="item")
        rows = self._item_rows(self._templated(texts, "item"), batch_size, progress)  # before reading _memory: it may grow
        return self._memory[rows].clone()

    def _item_rows(self, texts: Sequence[str], batch_size: int = 128, progress: bool = False) -> torch.Tensor:
        """Rows of ``texts`` in the frozen item tower's memory, embedding the texts not seen yet.

        The tower never changes, so an item is embedded once for the scorer's lifetime: during
        training every item seen so far can serve as a negative, and evaluation and serving
        re-embed nothing.
        """
        fresh = list(dict.fromkeys(t for t in texts if t not in self._memory_rows))
        if fresh:
            tower = self._item_encoder
            if next(tower.parameters()).device != self.device:
                tower.to(self.device)
            vectors = self._encode(fresh, batch_size, progress, encoder=tower)
            start = len(self._memory_rows)
            self._memory_rows.update((t, start + i) for i, t in enumerate(fresh))
            self._memory = torch.cat([self._memory, vectors])
        return torch.tensor([self._memory_rows[t] for t in texts], dtype=torch.long)

    def priors_unsupported(self) -> str | None:
        if self._memory_logits():
            return ("the frozen item tower's memory negatives are columns the priors have no features for; "
                    "set memory_negatives=false or item_tower=shared")  # fmt: skip
        return None

    def _memory_logits(self) -> bool:
        return self.config.item_tower == "frozen" and self.config.memory_negatives and self.config.in_batch_negatives

    def fit_statistics(self, groups: Sequence[TrainGroup]) -> None:
        # Sampling-bias correction (Yi et al., RecSys 2019): an item's chance of being a column of
        # a batch is its share of the positives plus its share of the uniformly drawn negatives.
        # Uncorrected, popular items are over-represented as negatives, so the model (and the
        # popularity prior's weight) learn to under-rate them.
        self._positive_counts = Counter(t for g in groups for t, y in zip(g.item_texts, g.labels) if y > 0.5)
        self._n_positives = max(1, sum(self._positive_counts.values()))
        self._n_items = max(1, len({t for g in groups for t in g.item_texts}))

    def _encode(self, texts: Sequence[str], batch_size: int, progress: bool, encoder: nn.Module | None = None) -> torch.Tensor:
        from tqdm.auto import tqdm

        was_training = self.training
        self.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self._dim(), dtype=torch.float32)
        bar = tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress)
        with torch.no_grad(), inference_autocast(self.precision, self.device):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                inputs = {k: v.to(self.device) for k, v in self._tokenize([texts[i] for i in idx]).items()}
                out[idx] = self._embed(inputs, encoder).cpu()
                bar.update(len(idx))
        bar.close()
        self.train(was_training)
        return out

    def _dim(self) -> int:
        return self.backbone.config.hidden_size if hasattr(self.backbone, "config") else self.backbone.base_model.config.hidden_size

    @property
    def scale(self) -> torch.Tensor:
        """The learned inverse temperature."""
        return self.log_scale.exp()

    def collate(self, groups: Sequence[TrainGroup]) -> dict[str, torch.Tensor]:
        items, positives, keys, key_of = [], [], [], {}
        for group in groups:
            positive = next((i for i, y in enumerate(group.labels) if y > 0.5), None)
            positives.append(-1 if positive is None else len(items) + positive)  # -1: trains pointwise
            for text in self._templated(group.item_texts, "item"):
                items.append(text)
                keys.append(key_of.setdefault(text, len(key_of)))
        users = self._tokenize(self._templated([g.user_text for g in groups], "user"))
        batch = {f"user:{k}": v for k, v in users.items()}
        if self.config.item_tower == "frozen":
            batch["item_rows"] = self._item_rows(items)  # embeds new items here, without gradients
            batch["memory"] = self._memory
        else:
            batch.update(self._tokenize_blocks(items, "item:"))
        batch["positive_index"] = torch.tensor(positives)
        # Plain bools, decided here on the CPU: reading them off device tensors in the loss would
        # stall a GPU at every step.
        batch["has_ranked"] = any(p >= 0 for p in positives)
        batch["has_pointwise"] = any(p < 0 for p in positives)
        batch["text_key"] = torch.tensor(keys)
        batch["group_index"] = torch.tensor([g for g, group in enumerate(groups) for _ in group.item_texts])
        batch["labels"] = torch.tensor([y for g in groups for y in g.labels], dtype=torch.float32)
        batch["log_q"] = self._log_q(groups, items)
        return batch

    def padded_length(self, group: TrainGroup) -> int:
        """The user text's length: items are padded in blocks of their own (:meth:`_tokenize_blocks`)."""
        return len(group.user_text)

    def _tokenize_blocks(self, texts: Sequence[str], prefix: str) -> dict[str, torch.Tensor]:
        """``texts`` tokenized in blocks of similar length, each padded to its own longest text.

        A batch's items come in random order; padded together, the short ones carry the longest
        one's length (36% of Beauty's item tokens were padding). ``<prefix>order`` maps the
        blocks' rows back to ``texts``.
        """
        lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=True, max_length=self.config.max_length)["input_ids"]]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        out: dict[str, torch.Tensor] = {}
        for block, start in enumerate(range(0, len(order), TRAIN_BLOCK)):
            inputs = self._tokenize([texts[i] for i in order[start : start + TRAIN_BLOCK]])
            out.update({f"{prefix}{block}:{k}": v for k, v in inputs.items()})
        out[f"{prefix}order"] = torch.tensor(order)
        return out

    def _embed_blocks(self, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        """Embed what :meth:`_tokenize_blocks` wrote, rows back in the order of the texts."""
        blocks: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in batch.items():
            if key.startswith(prefix) and key != f"{prefix}order":
                block, _, name = key[len(prefix) :].partition(":")
                blocks.setdefault(int(block), {})[name] = value
        embedded = torch.cat([self._embed(blocks[b]) for b in sorted(blocks)])
        return embedded[torch.argsort(batch[f"{prefix}order"])]

    def _log_q(self, groups: Sequence[TrainGroup], items: Sequence[str]) -> torch.Tensor:
        """Log of each column's expected count in a batch like this one (zeros when not correcting)."""
        counts = getattr(self, "_positive_counts", None)
        if not (self.config.logq_correction and self.config.in_batch_negatives) or counts is None:
            return torch.zeros(len(items))
        n_positive = sum(1 for g in groups for y in g.labels if y > 0.5)
        n_negative = len(items) - n_positive
        expected = [n_positive * counts.get(t, 0) / self._n_positives + n_negative / self._n_items for t in items]
        return torch.tensor(expected, dtype=torch.float32).clamp(min=1e-12).log()

    def compute_loss(self, batch: dict[str, torch.Tensor], offsets: torch.Tensor | None = None) -> torch.Tensor:
        users = self._embed({k[5:]: v for k, v in batch.items() if k.startswith("user:")})
        if "memory" in batch:
            items = batch["memory"][batch["item_rows"]].to(users.device)
        else:
            items = self._embed_blocks(batch, "item:")
        positive = batch["positive_index"].to(users.device)
        group_index = batch["group_index"].to(users.device)
        ranked = positive >= 0 if self.config.loss == "infonce" else torch.zeros_like(positive, dtype=torch.bool)
        # Per group: the softmax loss of its positive over the batch, or the mean BCE of its own pairs.
        per_group = torch.zeros(len(positive), device=users.device)
        infonce = self.config.loss == "infonce"
        if not infonce or batch.get("has_pointwise", True):
            own = self.scale * (users[group_index] * items).sum(-1) + self.bias
            if offsets is not None:
                own = own + own_offsets(offsets, group_index)
            bce = F.binary_cross_entropy_with_logits(own.float(), batch["labels"].to(users.device), reduction="none")
            size = torch.zeros_like(per_group).index_add_(0, group_index, torch.ones_like(bce))
            per_group = per_group.index_add(0, group_index, bce) / size.clamp(min=1.0)
        if infonce and batch.get("has_ranked", True):
            per_group = torch.where(ranked, self._softmax_loss(batch, users, items, offsets, positive.clamp(min=0)), per_group)
        return per_group.mean()

    def _softmax_loss(self, batch, users, items, offsets, positive) -> torch.Tensor:
        """Per group, the cross-entropy of its positive against the batch's items (InfoNCE)."""
        if self._memory_logits():
            # Each remembered item is one column, so a positive is never also counted as a negative.
            logits = self.scale * users @ batch["memory"].T.to(users.device)
            return F.cross_entropy(logits, batch["item_rows"].to(users.device)[positive], reduction="none")
        logits = self.scale * users @ items.T - batch["log_q"][None, :].to(users.device)
        if offsets is not None:  # every user against every item of the batch: the whole grid
            logits = logits + offsets
        keys = batch["text_key"].to(users.device)
        # The same item text elsewhere in the batch is not a negative for this user.
        duplicate = keys[None, :] == keys[positive][:, None]
        duplicate[torch.arange(len(positive)), positive] = False
        if not self.config.in_batch_negatives:
            own_group = batch["group_index"].to(users.device)[None, :] == torch.arange(len(positive), device=keys.device)[:, None]
            duplicate |= ~own_group
        logits = logits.masked_fill(duplicate, float("-inf"))
        return F.cross_entropy(logits, positive, reduction="none")

    def forward_pairs(self, user_texts: Sequence[str], item_texts: Sequence[str]) -> torch.Tensor:
        users = self._embed({k: v.to(self.device) for k, v in self._tokenize(self._templated(user_texts, "user")).items()})
        item_texts = self._templated(item_texts, "item")
        if self.config.item_tower == "frozen":
            rows = self._item_rows(item_texts)  # before reading _memory: it may grow
            items = self._memory[rows].to(self.device)
        else:
            items = self._embed({k: v.to(self.device) for k, v in self._tokenize(item_texts).items()})
        return self.scale * (users * items).sum(-1) + self.bias

    @torch.no_grad()
    def score_texts(self, user_texts: Sequence[str], item_texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """Score aligned pairs, embedding each distinct text once (ranking reuses them a lot)."""
        batch_size = batch_size or 128
        unique_users = list(dict.fromkeys(user_texts))
        unique_items = list(dict.fromkeys(item_texts))
        u = self.encode(unique_users, batch_size)
        v = self.encode_items(unique_items, batch_size)
        user_pos = {t: i for i, t in enumerate(unique_users)}
        item_pos = {t: i for i, t in enumerate(unique_items)}
        ui = torch.tensor([user_pos[t] for t in user_texts], dtype=torch.long)
        ii = torch.tensor([item_pos[t] for t in item_texts], dtype=torch.long)
        return (self.scale.detach().float().cpu() * (u[ui] * v[ii]).sum(-1) + self.bias.detach().float().cpu()).numpy()

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the head; adapters saved before the pointwise bias existed load with a bias of 0."""
        if "bias" not in state:
            state = {**state, "bias": torch.zeros(())}
        super().load_head_state_dict(state)


@hookimpl
def register_scorers(register):
    register(BiEncoder)
