"""SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018) as a Baseline.

RecBole 1.2.1 (the release pip installs) does not run with numpy 2: its ``Config`` assigns
``np.float = np.float_`` at construction and ``recbole.quick_start`` imports ray's tensorboardX
logger, which reads ``np.bool8``. So this is a small implementation that follows the paper and
its reference code (kang205/SASRec, and the pytorch port pmixer/SASRec.pytorch):

- item embeddings scaled by sqrt(d) plus a learned positional embedding, dropout, padding masked;
- ``n_blocks`` pre-LayerNorm causal self-attention blocks (the query is normalised, keys and
  values are not, as in the reference code), a point-wise two-layer feed-forward net, residuals;
- at every position, binary cross-entropy of the next item against one negative sampled
  uniformly from the items outside the user's window; Adam (betas 0.9, 0.98);
- early stopping on validation NDCG@10, keeping the best epoch's weights.

Items no training user interacted with have no embedding: they score :data:`UNSEEN_SCORE`,
tied at the bottom of every ranking. Context items without an embedding are dropped from the
user's sequence; a user with none left scores every candidate 0 (all tied).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from coldstart_peft.errors import DataError
from coldstart_peft.evaluation import Baseline, metrics_from_scores, ranking_metrics
from coldstart_peft.examples import RankingCase

UNSEEN_SCORE = -1e9
"""Score of a candidate no training user interacted with (below any learned score)."""


@dataclass
class SASRecConfig:
    """Hyper-parameters; the defaults are the paper's for sparse Amazon data, hidden size 64.

    Args:
        hidden: embedding and attention width.
        n_blocks: self-attention blocks.
        n_heads: attention heads.
        max_length: most recent items the model reads.
        dropout: dropout rate (0.5 in the paper for Beauty).
        lr: Adam learning rate.
        batch_size: training sequences per step.
        max_epochs: upper bound on epochs.
        eval_every: epochs between validation evaluations.
        patience: evaluations without improvement before stopping.
        time_budget_s: stop training once this many seconds have passed (``None``: no limit).
        threads: torch threads while fitting and scoring (restored afterwards).
        seed: seed of the initial weights, the batches and the negatives.
    """

    hidden: int = 64
    n_blocks: int = 2
    n_heads: int = 1
    max_length: int = 50
    dropout: float = 0.5
    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 200
    eval_every: int = 5
    patience: int = 4
    time_budget_s: float | None = None
    # One thread: on a CPU shared with other jobs, two threads spin-wait on each other far more than they gain.
    threads: int = 1
    seed: int = 0


class _Block(nn.Module):
    def __init__(self, hidden: int, n_heads: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.attention = nn.MultiheadAttention(hidden, n_heads, dropout=dropout, batch_first=True)
        self.forward_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.feed_forward = nn.Sequential(nn.Linear(hidden, hidden), nn.Dropout(dropout), nn.ReLU(),
                                          nn.Linear(hidden, hidden), nn.Dropout(dropout))  # fmt: skip

    def forward(self, x: torch.Tensor, causal: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        query = self.attention_norm(x)
        attended, _ = self.attention(query, x, x, attn_mask=causal, need_weights=False)
        x = query + attended
        x = self.forward_norm(x)
        x = x + self.feed_forward(x)
        return x * keep


class SASRecModel(nn.Module):
    """The network: ``forward(sequences)`` returns one hidden state per position.

    Args:
        n_items: items with an embedding; index 0 is padding, items are 1..n_items.
        config: the hyper-parameters.
    """

    def __init__(self, n_items: int, config: SASRecConfig):
        super().__init__()
        self.scale = config.hidden**0.5
        self.items = nn.Embedding(n_items + 1, config.hidden, padding_idx=0)
        self.positions = nn.Embedding(config.max_length, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config.hidden, config.n_heads, config.dropout) for _ in range(config.n_blocks))
        self.final_norm = nn.LayerNorm(config.hidden, eps=1e-8)
        for name, parameter in self.named_parameters():
            if parameter.dim() > 1 and "norm" not in name:
                nn.init.xavier_normal_(parameter)
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, hidden) of left-padded item-index sequences (batch, length)."""
        length = sequences.shape[1]
        keep = (sequences > 0).unsqueeze(-1).to(self.items.weight.dtype)
        positions = torch.arange(length, device=sequences.device)
        x = self.items(sequences) * self.scale + self.positions(positions)
        x = self.dropout(x) * keep
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=sequences.device), diagonal=1)
        for block in self.blocks:
            x = block(x, causal, keep)
        return self.final_norm(x)


@contextmanager
def _torch_threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, before)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _left_pad(rows: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    out = np.zeros((len(rows), length), dtype=np.int64)
    for r, row in enumerate(rows):
        row = list(row)[-length:]
        if row:
            out[r, length - len(row) :] = row
    return torch.from_numpy(out)


def validation_ndcg(scores: Sequence[np.ndarray], cases: Sequence[RankingCase]) -> float:
    """Mean NDCG@10 of scored cases (ties at their expected rank), one matrix call when the sizes agree."""
    if len({len(s) for s in scores}) == 1:
        return float(ranking_metrics(np.stack(scores), [c.target for c in cases], ks=(10,))["ndcg@10"].mean())
    return float(metrics_from_scores(scores, cases, ks=(10,))["ndcg@10"].mean())


class SASRecBaseline(Baseline):
    """SASRec trained on a split's training sequences, scoring each case from its context items.

    Args:
        config: hyper-parameters; keyword arguments override its fields
            (``SASRecBaseline(hidden=32, time_budget_s=60)``).
        valid_cases: cases for early stopping; by default the split's validation users.
        **overrides: fields of :class:`SASRecConfig`.

    Example:
        >>> sasrec = SASRecBaseline(time_budget_s=600).fit(split)
        >>> evaluate_baseline(sasrec, split.ranking_cases("test"))["overall"]["ndcg@10"]
    """

    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None, valid_cases: Sequence[RankingCase] | None = None, **overrides):
        self.config = dataclasses.replace(config or SASRecConfig(), **overrides)
        self.valid_cases = valid_cases
        self.history: list[dict] = []

    def fit(self, split) -> SASRecBaseline:
        """Train on ``split.train_sequences()``, stopping early on its validation users."""
        cases = self.valid_cases if self.valid_cases is not None else split.ranking_cases("valid")
        return self.train(split.train_sequences(), cases)

    def train(self, sequences: Mapping[str, Sequence[str]], valid_cases: Sequence[RankingCase] = ()) -> SASRecBaseline:
        """Train on user id -> chronological item ids; keep the weights of the best validation NDCG@10.

        Args:
            sequences: the training users' histories (every position is a training target).
            valid_cases: cases scored every ``eval_every`` epochs; without them the last epoch is kept.
        """
        config = self.config
        self.items = sorted({i for seq in sequences.values() for i in seq})
        self.index = {item: n + 1 for n, item in enumerate(self.items)}
        rows = [[self.index[i] for i in seq] for seq in sequences.values() if len(seq) >= 2]
        # One sample per user per epoch, its last max_length + 1 items, as in the reference code.
        window = _left_pad(rows, config.max_length + 1)
        generator = torch.Generator().manual_seed(config.seed)
        started, self.history, self.epochs_run = time.monotonic(), [], 0
        with _torch_threads(config.threads), torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = SASRecModel(len(self.items), config)
            optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(0.9, 0.98))
            best, best_state, waited = -1.0, None, 0
            for epoch in range(1, config.max_epochs + 1):
                loss = self._epoch(window, optimizer, generator)
                self.epochs_run, record = epoch, {"epoch": epoch, "loss": loss}
                out_of_time = config.time_budget_s is not None and time.monotonic() - started > config.time_budget_s
                if valid_cases and (epoch % config.eval_every == 0 or out_of_time or epoch == config.max_epochs):
                    record["valid_ndcg@10"] = validation_ndcg(self.score_cases(valid_cases), valid_cases)
                    if record["valid_ndcg@10"] > best:
                        best, best_state, waited = record["valid_ndcg@10"], copy.deepcopy(self.model.state_dict()), 0
                    else:
                        waited += 1
                self.history.append(record)
                if out_of_time or waited >= config.patience:
                    break
            if best_state is not None:
                self.model.load_state_dict(best_state)
        self.best_valid_ndcg = best if best_state is not None else None
        self.train_seconds = time.monotonic() - started
        return self

    def _epoch(self, window: torch.Tensor, optimizer, generator: torch.Generator) -> float:
        self.model.train()
        n_items, total, steps = len(self.items), 0.0, 0
        for batch in torch.randperm(len(window), generator=generator).split(self.config.batch_size):
            rows = window[batch]
            inputs, positives = rows[:, :-1], rows[:, 1:]
            negatives = torch.randint(1, n_items + 1, positives.shape, generator=generator)
            # Resample negatives that fall inside the user's window (a few rounds leave almost none).
            for _ in range(3):
                clash = (negatives.unsqueeze(-1) == rows.unsqueeze(1)).any(-1)
                if not clash.any():
                    break
                negatives[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), generator=generator)
            hidden = self.model(inputs)
            pos_logits = (hidden * self.model.items(positives)).sum(-1)
            neg_logits = (hidden * self.model.items(negatives)).sum(-1)
            mask = positives > 0
            loss = nn.functional.binary_cross_entropy_with_logits(pos_logits[mask], torch.ones_like(pos_logits[mask]))
            loss = loss + nn.functional.binary_cross_entropy_with_logits(neg_logits[mask], torch.zeros_like(neg_logits[mask]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        return total / max(steps, 1)

    def score_case(self, case: RankingCase) -> np.ndarray:
        """Return one score per candidate of ``case`` (higher means more relevant)."""
        return self.score_cases([case])[0]

    @torch.no_grad()
    def _user_rows(self, cases: Sequence[RankingCase]) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every item column (0 is padding) for each case, and whether it had a known context item."""
        self.model.eval()
        contexts = [[self.index[i] for i in (c.context_ids or []) if i in self.index] for c in cases]
        users = self.model(_left_pad(contexts, self.config.max_length))[:, -1]
        return (users @ self.model.items.weight.T).double().numpy(), np.array([bool(c) for c in contexts])

    def _columns(self, ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.index.get(i, 0) for i in ids), np.int64, len(ids))

    def score_cases(self, cases: Sequence[RankingCase], batch_size: int = 256) -> list[np.ndarray]:
        """Score many cases: one forward pass and one product with the item table per batch of cases."""
        out = []
        with _torch_threads(self.config.threads):
            for start in range(0, len(cases), batch_size):
                batch = cases[start : start + batch_size]
                rows, known = self._user_rows(batch)
                for case, row, has_context in zip(batch, rows, known):
                    if case.candidate_ids is None:
                        raise DataError("sasrec needs item ids; build cases with ColdStartSplit.ranking_cases()")
                    columns = self._columns(case.candidate_ids)
                    scores = row[columns] if has_context else np.zeros(len(columns))
                    scores[columns == 0] = UNSEEN_SCORE
                    out.append(scores)
        return out

    def score_pool(self, cases: Sequence[RankingCase], item_ids: Sequence[str], item_texts: Sequence[str] = (),
                   batch_size: int = 256) -> np.ndarray:  # fmt: skip
        """Score every item of ``item_ids`` for each case's context: an array (cases, items)."""
        columns, blocks = self._columns(item_ids), []
        with _torch_threads(self.config.threads):
            for start in range(0, len(cases), batch_size):
                rows, known = self._user_rows(cases[start : start + batch_size])
                block = rows[:, columns]
                block[~known] = 0.0
                block[:, columns == 0] = UNSEEN_SCORE
                blocks.append(block)
        return np.concatenate(blocks) if blocks else np.zeros((0, len(item_ids)))
