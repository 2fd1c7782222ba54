"""The training engine: one Accelerate loop for every scorer and method.

It runs unchanged on one CPU, one GPU, or several processes (``torchrun`` /
``accelerate launch``); only the main process writes files and shows progress.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.data_loader import skip_first_batches
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from coldstart_peft import checkpoint as ckpt
from coldstart_peft.errors import CheckpointError, ConfigError, ColdStartError, PluginError
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.examples import RankingCase, TrainGroup
from coldstart_peft.method import Method, count_parameters
from coldstart_peft.provenance import groups_fingerprint
from coldstart_peft.scorer import Scorer

PRECISIONS = ("auto", "no", "bf16", "fp16")


@dataclasses.dataclass
class TrainConfig:
    """Settings of the training engine (method settings live in the method's config)."""

    epochs: int = dataclasses.field(default=1, metadata={"help": "passes over the training groups"})
    max_steps: int | None = dataclasses.field(default=None, metadata={"help": "stop after this many optimizer steps"})
    time_budget_s: float | None = dataclasses.field(default=None, metadata={"help": "stop training after this many seconds"})
    # 32, as in the Beauty benchmark: every other group in the batch is a bi-encoder negative.
    batch_size: int = dataclasses.field(default=32, metadata={"help": "training groups per batch and process"})
    grad_accum: int = dataclasses.field(default=1, metadata={"help": "batches per optimizer step"})
    lr: float | None = dataclasses.field(default=None, metadata={"help": "learning rate of the method's parameters (default: the method's recommended_lr)"})
    head_lr: float | None = dataclasses.field(default=None, metadata={"help": "learning rate of the scorer head (default: lr)"})
    prior_lr: float = dataclasses.field(
        default=0.05,
        metadata={"help": "learning rate of the scorer's prior weights (popularity, lexical, co-occurrence): they "
                          "start from a guess and must travel several units in a few hundred steps"},
    )
    weight_decay: float = dataclasses.field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = dataclasses.field(default=0.06, metadata={"help": "share of steps with rising learning rate"})
    scheduler: str = dataclasses.field(default="linear", metadata={"help": "transformers scheduler name"})
    max_grad_norm: float = dataclasses.field(default=1.0, metadata={"help": "gradient clipping (0: off)"})
    mixed_precision: str = dataclasses.field(default="auto", metadata={"help": "'auto' (bf16), 'no', 'bf16', 'fp16'"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed for initialisation, shuffling and dropout"})
    eval_every: int | None = dataclasses.field(default=None, metadata={"help": "validate every N steps (default: each epoch)"})
    early_stopping_patience: int = dataclasses.field(default=2, metadata={"help": "validations without gain before stopping"})
    metric: str = dataclasses.field(default="ndcg@10", metadata={"help": "validation metric for early stopping and the best state"})
    eval_batch_size: int = dataclasses.field(default=4096, metadata={"help": "pairs handed to the scorer at once during validation"})
    log_with: str | None = dataclasses.field(default=None, metadata={"help": "Accelerate tracker: tensorboard, wandb, ..."})
    project_dir: str | None = dataclasses.field(default=None, metadata={"help": "where trackers write"})
    progress: bool = dataclasses.field(default=True, metadata={"help": "show a progress bar (main process only)"})
    checkpoint_dir: str | None = dataclasses.field(default=None, metadata={"help": "folder for resumable checkpoints (default: none written)"})
    checkpoint_every: int | None = dataclasses.field(default=None, metadata={"help": "write a checkpoint every N optimizer steps (needs checkpoint_dir)"})
    resume: bool = dataclasses.field(default=False, metadata={"help": "continue from the newest checkpoint in checkpoint_dir, if there is one"})

    def validate(self) -> None:
        """Raise :class:`ConfigError` on values that cannot train."""
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.grad_accum < 1:
            raise ConfigError(f"grad_accum must be at least 1, got {self.grad_accum}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if (self.lr is not None and not self.lr > 0) or (self.head_lr is not None and not self.head_lr > 0) or not self.prior_lr > 0:
            raise ConfigError(
                f"learning rates must be positive, got lr={self.lr}, head_lr={self.head_lr}, prior_lr={self.prior_lr}"
            )
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.mixed_precision not in PRECISIONS:
            raise ConfigError(f"mixed_precision must be one of {', '.join(PRECISIONS)}, got {self.mixed_precision!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if (self.checkpoint_every or self.resume) and not self.checkpoint_dir:
            raise ConfigError("checkpoint_every and resume need checkpoint_dir: the folder checkpoints are written to and read from")


@dataclasses.dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        steps: optimizer steps taken.
        seconds: wall-clock training time (validation included).
        train_pairs: (context, item) pairs seen, all processes together.
        trainable_params: parameters updated (method weights plus scorer head).
        total_params: all parameters of the scorer.
        history: one dict per validation (step, loss, metrics).
        best: the best validation summary (``None`` without validation data).
        stopped_early: early stopping or the time budget ended the run.
        calibration: prior weights refitted on validation cases after training
            (:func:`coldstart_peft.calibration.calibrate_priors`), if that ran.
    """

    steps: int
    seconds: float
    train_pairs: int
    trainable_params: int
    total_params: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    stopped_early: bool
    calibration: dict[str, list[float]] | None = None

    @property
    def pairs_per_second(self) -> float:
        """Training throughput in (context, item) pairs per second."""
        return self.train_pairs / self.seconds if self.seconds else 0.0


def resolve_precision(mixed_precision: str) -> str:
    """``auto`` → bf16 wherever the hardware supports it (every recent CPU, Ampere+ GPUs)."""
    if mixed_precision != "auto":
        return mixed_precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16"


def _param_groups(scorer: Scorer, config: TrainConfig, method: Method) -> list[dict[str, Any]]:
    backbone, head, prior = [], [], []
    for name, parameter in scorer.named_parameters():
        if parameter.requires_grad:
            if name in scorer.PRIOR_WEIGHTS:
                prior.append(parameter)
            else:
                (backbone if name.startswith("backbone.") else head).append(parameter)
    lr = config.lr or method.recommended_lr
    groups = [{"params": backbone, "lr": lr}, {"params": head, "lr": config.head_lr or lr},
              {"params": prior, "lr": config.prior_lr}]  # fmt: skip
    return [g for g in groups if g["params"]]


def _trainable_state(scorer: Scorer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in scorer.named_parameters() if p.requires_grad}


def plan_steps(n_groups: int, config: TrainConfig, num_processes: int = 1) -> int:
    """Optimizer steps the run will take (what schedule-aware methods are told)."""
    batches = math.ceil(n_groups / (config.batch_size * num_processes))
    steps = max(1, math.ceil(batches / config.grad_accum)) * config.epochs
    return min(steps, config.max_steps) if config.max_steps else steps


def _time_aware_schedule(optimizer, config: TrainConfig, total_steps: int, start: float):
    """Linear warm-up and decay over whichever ends first, the planned steps or the time budget.

    A step-based schedule planned for several epochs would still be warming up when a short
    time budget runs out; measuring progress in elapsed time as well keeps the schedule whole.
    """
    state = {"step": 0}

    def factor(_: int) -> float:
        progress = max(state["step"] / total_steps, (time.perf_counter() - start) / config.time_budget_s)
        state["step"] += 1
        if progress < config.warmup_ratio:
            return max(progress / config.warmup_ratio, 1e-3)
        return max(0.0, (1.0 - progress) / (1.0 - config.warmup_ratio)) if config.scheduler != "constant" else 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# Settings that change what a step computes; a checkpoint only resumes a run that agrees on all of them.
_RUN_FIELDS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "head_lr", "prior_lr", "weight_decay", "warmup_ratio",
               "scheduler", "max_grad_norm", "mixed_precision", "seed", "eval_every", "metric")


def _run_identity(config: TrainConfig, method: Method, train_groups: Sequence[TrainGroup]) -> dict[str, Any]:
    return {
        "method": method.name,
        "method_config": method.config.to_dict(),
        "train": {name: getattr(config, name) for name in _RUN_FIELDS},
        "data_fingerprint": groups_fingerprint(train_groups),
    }


def _open_checkpoint(config: TrainConfig, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The newest checkpoint to resume from, checked against this run; ``None`` starts afresh."""
    if not config.resume:
        return None
    folder = ckpt.latest_checkpoint(config.checkpoint_dir)
    if folder is None:
        return None  # resuming a run that never reached its first checkpoint is starting it
    state = ckpt.load_checkpoint(folder)
    recorded = json.loads(json.dumps(state["progress"].get("identity")))
    if recorded != json.loads(json.dumps(identity, default=str)):
        raise CheckpointError(
            f"checkpoint {folder} belongs to another run (method, settings or training data differ: "
            f"{recorded} vs {identity}); resume with the original settings, or use another checkpoint_dir"
        )
    return state


def _on_step(method: Method, model: torch.nn.Module, step: int) -> None:
    try:
        method.on_step(model, step)
    except ColdStartError:
        raise
    except Exception as exc:  # a plugin's own bug: say whose it is, not just where it surfaced
        raise PluginError(
            f"method {method.name!r} ({type(method).__module__}) failed in on_step at step {step}: "
            f"{type(exc).__name__}: {exc}; fix or update the plugin, or train with another method"
        ) from exc


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The Accelerator for a run: precision, accumulation, trackers, seedable shuffling."""
    return Accelerator(
        mixed_precision=resolve_precision(config.mixed_precision),
        gradient_accumulation_steps=config.grad_accum,
        cpu=not torch.cuda.is_available(),
        log_with=config.log_with,
        project_dir=config.project_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def train(
    scorer: Scorer,
    method: Method,
    train_groups: Sequence[TrainGroup],
    valid_cases: Sequence[RankingCase] | None = None,
    config: TrainConfig | None = None,
    accelerator: Accelerator | None = None,
) -> TrainResult:
    """Train ``scorer`` (its backbone already prepared by ``method``) on ``train_groups``.

    Validation runs each epoch (or every ``eval_every`` steps) on ``valid_cases``; the best
    state by ``config.metric`` is restored at the end, and training stops early after
    ``early_stopping_patience`` validations without improvement.

    Args:
        scorer: the scorer, after :func:`~coldstart_peft.assembly.apply_method`.
        method: the method that prepared it (its ``on_step`` runs after each optimizer step).
        train_groups: the training data.
        valid_cases: ranking cases for validation, or ``None``.
        config: engine settings.
        accelerator: reuse an Accelerator (one per process); built from ``config`` if ``None``.

    Returns:
        A :class:`TrainResult`.
    """
    config = config or TrainConfig()
    config.validate()
    if not train_groups:
        raise ConfigError("no training groups: the training data is empty")
    set_seed(config.seed)
    scorer.fit_prior(train_groups)
    accelerator = accelerator or make_accelerator(config)
    loader = DataLoader(
        list(train_groups),
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=scorer.collate,
        generator=torch.Generator().manual_seed(config.seed),
    )
    total_steps = plan_steps(len(train_groups), config, accelerator.num_processes)
    optimizer = torch.optim.AdamW(_param_groups(scorer, config, method), weight_decay=config.weight_decay)
    clock = time.perf_counter()
    if config.time_budget_s:
        scheduler = _time_aware_schedule(optimizer, config, total_steps, clock)
    else:
        scheduler = get_scheduler(
            config.scheduler, optimizer,
            num_warmup_steps=int(config.warmup_ratio * total_steps), num_training_steps=total_steps,
        )
    identity = _run_identity(config, method, train_groups) if config.checkpoint_dir else {}
    resumed = _open_checkpoint(config, identity)
    model, optimizer, loader, scheduler = accelerator.prepare(scorer, optimizer, loader, scheduler)
    if config.log_with:
        accelerator.init_trackers("coldstart-peft", config={k: str(v) for k, v in dataclasses.asdict(config).items()})

    trainable, total = count_parameters(scorer)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    stale, step, pairs, stopped = 0, 0, 0, False
    running = 0.0
    start = clock
    first_epoch, skip = 0, 0
    if resumed is not None:
        progress = resumed["progress"]
        with torch.no_grad():
            for name, parameter in scorer.named_parameters():
                if name in resumed["trainable"]:
                    parameter.copy_(resumed["trainable"][name])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        method.load_state_dict(scorer.backbone, resumed["method_state"])
        best_state, best, history = resumed["best"], progress["best"], progress["history"]
        stale, step, pairs, running = progress["stale"], progress["step"], progress["pairs"], progress["running"]
        first_epoch, skip = progress["epoch"], progress["batch"]
        accelerator.step = progress["accelerator_step"]
        start -= progress["seconds"]
        ckpt.restore_rng(resumed["rng"])
    # With a time budget the step count is unknown; a total would promise a false ETA.
    bar = tqdm(
        total=None if config.time_budget_s else total_steps, initial=step, desc=f"train {method.name}",
        disable=not (config.progress and accelerator.is_main_process),
    )

    def validate() -> bool:
        """Validate, keep the best state; return True when patience is exhausted."""
        nonlocal best, best_state, stale
        if not valid_cases:
            return False
        summary = evaluate_ranking(scorer.score, valid_cases, batch_size=config.eval_batch_size)
        value = summary[config.metric]["mean"]
        record = {"step": step, "loss": running, **{k: v["mean"] for k, v in summary.items()}}
        history.append(record)
        accelerator.log({f"valid/{k}": v for k, v in record.items() if k != "step"}, step=step)
        if best is None or value > best["value"]:
            best = {"step": step, "value": value, "metric": config.metric, "summary": summary}
            best_state, stale = _trainable_state(scorer), 0
        else:
            stale += 1
        bar.set_postfix({config.metric: f"{value:.4f}", "best": f"{best['value']:.4f}"})
        return stale >= config.early_stopping_patience

    def save_checkpoint(epoch: int, batch_index: int) -> None:
        if accelerator.is_main_process:
            ckpt.save_checkpoint(
                config.checkpoint_dir, step,
                trainable=_trainable_state(scorer), best=best_state,
                method_state=method.state_dict(scorer.backbone),
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                progress={
                    "identity": identity, "epoch": epoch, "batch": batch_index, "step": step, "pairs": pairs,
                    "running": running, "stale": stale, "best": best, "history": history,
                    "accelerator_step": accelerator.step, "seconds": time.perf_counter() - start,
                },
            )
        accelerator.wait_for_everyone()

    model.train()
    for epoch in range(first_epoch, config.epochs):
        loader.set_epoch(epoch)  # the shuffle order of an epoch depends only on the seed and its number
        offset = skip if epoch == first_epoch else 0
        # Resuming mid-epoch: the same order, minus the batches the checkpoint already trained on.
        batches = loader if not offset else skip_first_batches(loader, offset) if offset < len(loader) else []
        for batch_index, batch in enumerate(batches, start=offset + 1):
            with accelerator.accumulate(model):
                task_loss = model(batch)
                extra = method.regularization(scorer.backbone)
                loss = task_loss if extra is None else task_loss + extra
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                if accelerator.sync_gradients:
                    # Before zero_grad: AdaLoRA's rank allocator scores importance from the gradients.
                    _on_step(method, scorer.backbone, step + 1)
                optimizer.zero_grad()
            pairs += len(batch["labels"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            step += 1
            running = 0.9 * running + 0.1 * task_loss.item() if step > 1 else task_loss.item()
            bar.update(1)
            bar.set_description(f"train {method.name} loss {running:.4f}")
            accelerator.log({"train/loss": task_loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step=step)
            out_of_time = config.time_budget_s is not None and time.perf_counter() - start > config.time_budget_s
            if config.eval_every and step % config.eval_every == 0 and validate():
                stopped = True
            if out_of_time:
                stopped = True
            if stopped or (config.max_steps and step >= config.max_steps):
                break
            if config.checkpoint_every and step % config.checkpoint_every == 0:
                save_checkpoint(epoch, batch_index)
        if stopped or (config.max_steps and step >= config.max_steps):
            break
        if not config.eval_every and validate():
            stopped = True
            break
    if valid_cases and (not history or history[-1]["step"] != step):
        validate()
    bar.close()
    if best_state is not None:
        with torch.no_grad():
            for name, parameter in scorer.named_parameters():
                if name in best_state:
                    parameter.copy_(best_state[name])
    model.eval()
    accelerator.wait_for_everyone()
    if config.log_with:
        accelerator.end_training()
    return TrainResult(
        steps=step, seconds=time.perf_counter() - start, train_pairs=pairs,
        trainable_params=trainable, total_params=total, history=history, best=best, stopped_early=stopped,
    )
