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
from accelerate import Accelerator, PartialState
from accelerate.data_loader import skip_first_batches
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from coldstart_peft import checkpoint as ckpt
from coldstart_peft.batching import LengthGroupedBatchSampler
from coldstart_peft.errors import CheckpointError, ColdStartError, ConfigError, PluginError, TrainingDivergedError
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.examples import RankingCase, TrainGroup
from coldstart_peft.finite import non_finite
from coldstart_peft.hardware import PRECISIONS, announce, resolve_precision
from coldstart_peft.method import Method, count_parameters
from coldstart_peft.option_check import check_train_options
from coldstart_peft.progress import paused, phase
from coldstart_peft.provenance import groups_fingerprint
from coldstart_peft.run_log import check_trackers
from coldstart_peft.schedule import SCHEDULES, lr_factor, progress
from coldstart_peft.scorer import Scorer

clock = time.perf_counter
"""The engine's clock for time budgets and the schedule (tests substitute a fake one)."""


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
        metadata={"help": "learning rate of the scorer's prior weights (popularity, lexical, co-occurrence, neighbour text): they "
                          "start from a guess and must travel several units in a few hundred steps"},
    )
    weight_decay: float = dataclasses.field(default=0.0, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = dataclasses.field(default=0.06, metadata={"help": "share of steps with rising learning rate"})
    scheduler: str = dataclasses.field(
        default="linear", metadata={"help": f"learning-rate schedule after warm-up: {', '.join(SCHEDULES)}"}
    )
    max_grad_norm: float = dataclasses.field(default=1.0, metadata={"help": "gradient clipping (0: off)"})
    precision: str = dataclasses.field(
        default="auto",
        metadata={"help": "'auto' (bf16 where the hardware computes it natively and faster than fp32, else fp32 on a "
                          "CPU and fp16 on an old GPU; see coldstart_peft.hardware), 'fp32', 'bf16', 'fp16' (GPU); "
                          "scoring during training follows it"},
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "seed for initialisation, shuffling and dropout"})
    group_by_length: bool = dataclasses.field(
        default=True,
        metadata={"help": "batch training groups of similar length (sorted within shuffled windows of 50 batches, "
                          "as transformers' group_by_length): the same data with less padding"},
    )
    eval_every: int | None = dataclasses.field(default=None, metadata={"help": "validate every N steps (default: each epoch)"})
    early_stopping_patience: int = dataclasses.field(default=2, metadata={"help": "validations without gain before stopping"})
    metric: str = dataclasses.field(default="ndcg@10", metadata={"help": "validation metric for early stopping and the best state"})
    eval_batch_size: int = dataclasses.field(default=4096, metadata={"help": "pairs handed to the scorer at once during validation"})
    log_with: str | None = dataclasses.field(
        default=None, metadata={"help": "Accelerate tracker: tensorboard (pip install 'coldstart-peft[tensorboard]'), wandb, ..."}
    )
    project_dir: str | None = dataclasses.field(default=None, metadata={"help": "where trackers write (default: <--out>/logs on the command line)"})
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
        if self.precision not in (*PRECISIONS, "no"):
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.scheduler not in SCHEDULES:
            raise ConfigError(f"scheduler must be one of {', '.join(SCHEDULES)}, got {self.scheduler!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ConfigError(f"time_budget_s must be positive, got {self.time_budget_s}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if (self.checkpoint_every or self.resume) and not self.checkpoint_dir:
            raise ConfigError("checkpoint_every and resume need checkpoint_dir: the folder checkpoints are written to and read from")
        check_train_options(self)

    def method_lr(self, method: Method) -> float:
        """The learning rate of the method's parameters: ``lr``, or the method's ``recommended_lr`` when unset."""
        return self.lr or method.recommended_lr


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
        precision: the precision the run trained in (``auto`` resolved).
        setup_seconds: time before the first step (fitting the priors).
        after_seconds: time after the last step spent by the recipe (calibration, test scoring).
        test_scores: scores of the test cases a recipe was asked to evaluate, one array per case.
        losses: the training loss of every optimizer step (its last micro-batch).
    """

    steps: int
    seconds: float
    train_pairs: int
    trainable_params: int
    total_params: int
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    stopped_early: bool
    calibration: dict[str, float] | None = None
    precision: str = "fp32"
    setup_seconds: float = 0.0
    after_seconds: float = 0.0
    test_scores: list[Any] | None = None
    losses: list[float] = dataclasses.field(default_factory=list)

    @property
    def pairs_per_second(self) -> float:
        """Training throughput in (context, item) pairs per second."""
        return self.train_pairs / self.seconds if self.seconds else 0.0


def _param_groups(scorer: Scorer, config: TrainConfig, method: Method) -> list[dict[str, Any]]:
    backbone: dict[float, list] = {}  # by the method's scale of its learning rate, first seen first
    head, prior = [], []
    for name, parameter in scorer.named_parameters():
        if parameter.requires_grad:
            if name.startswith("priors."):
                prior.append(parameter)
            elif name.startswith("backbone."):
                scale = float(method.learning_rate_scale(name.removeprefix("backbone.")))
                if not scale > 0:
                    raise PluginError(f"method {method.name!r} gave {name} a learning-rate scale of {scale}; it must be positive")
                backbone.setdefault(scale, []).append(parameter)
            else:
                head.append(parameter)
    lr = config.method_lr(method)
    # "base_lr": the rate the schedule's factor multiplies at every step.
    groups = [{"params": params, "lr": lr * scale, "base_lr": lr * scale} for scale, params in backbone.items()]
    groups += [{"params": head, "lr": config.head_lr or lr, "base_lr": config.head_lr or lr},
               {"params": prior, "lr": config.prior_lr, "base_lr": config.prior_lr}]  # fmt: skip
    return [g for g in groups if g["params"]]


def _trainable_state(scorer: Scorer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in scorer.named_parameters() if p.requires_grad}


def plan_steps(n_groups: int, config: TrainConfig, num_processes: int = 1) -> int:
    """Optimizer steps the run will take (what schedule-aware methods are told)."""
    batches = math.ceil(n_groups / (config.batch_size * num_processes))
    steps = max(1, math.ceil(batches / config.grad_accum)) * config.epochs
    return min(steps, config.max_steps) if config.max_steps else steps


# Settings that change what a step computes; a checkpoint only resumes a run that agrees on all of them.
_RUN_FIELDS = ("epochs", "max_steps", "batch_size", "grad_accum", "lr", "head_lr", "prior_lr", "weight_decay", "warmup_ratio",
               "scheduler", "max_grad_norm", "precision", "seed", "group_by_length", "eval_every", "metric")


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
    broken = non_finite(state["trainable"]) + non_finite(state["best"] or {})
    if broken:
        raise TrainingDivergedError(
            f"checkpoint {folder} holds NaN or infinite weights ({broken[0]}): the run it saved had diverged. "
            f"Delete {folder} and resume from an earlier checkpoint, or train afresh with a lower learning rate"
        )
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


def process_state() -> PartialState:
    """This process's place in the run (rank, main or not), set up as :func:`make_accelerator` sets it.

    A ``PartialState()`` made with other arguments before the Accelerator exists would be
    replaced by it: under ``torchrun`` every rank then reads as the main process.
    """
    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The Accelerator for a run: precision, accumulation, trackers, seedable shuffling.

    ``config.precision`` is resolved here, from what the hardware computes natively
    (:func:`coldstart_peft.hardware.resolve_precision`), and the decision is logged once.
    """
    check_trackers(config.log_with, config.project_dir)  # Accelerate would warn and log nothing, or raise a bare ValueError
    choice = resolve_precision(config.precision, "cuda" if torch.cuda.is_available() else "cpu")
    accelerator = Accelerator(
        mixed_precision=choice.accelerate,
        gradient_accumulation_steps=config.grad_accum,
        cpu=not torch.cuda.is_available(),
        log_with=config.log_with,
        project_dir=config.project_dir,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if accelerator.is_main_process:
        announce(choice, "training")
    return accelerator


def training_summary(method: str, result: TrainResult) -> str:
    """One line on what a run did: steps, pairs/s, precision, time outside the loop, best validation."""
    line = (
        f"trained {method}: {result.steps} steps, {result.train_pairs:,} pairs in {result.seconds:.1f}s "
        f"({result.pairs_per_second:.1f} pairs/s, {result.precision}); "
        f"{result.trainable_params:,} trainable of {result.total_params:,} parameters; "
        f"setup {result.setup_seconds:.1f}s"
    )
    if len(result.losses) >= 2:
        tenth = max(1, len(result.losses) // 10)  # averages, one batch's loss is noisy
        first, last = (sum(part) / len(part) for part in (result.losses[:tenth], result.losses[-tenth:]))
        line += f"; loss {first:.3f} -> {last:.3f} (first and last tenth of steps)"
    if result.after_seconds:
        line += f", after training {result.after_seconds:.1f}s"
    best = result.best
    if best:
        line += (
            f"; best validation {best['metric']} {best['value']:.4f} at step {best['step']} "
            f"({best.get('candidates', '?')} candidates per user)"
        )
    return line


def _agree(accelerator: Accelerator, loss: float, elapsed: float) -> tuple[list[float], float]:
    """Every process's loss and the main process's clock, the same on every process.

    One collective per optimizer step: the time-budget stop, the schedule's progress and the
    divergence check are then decided identically everywhere, so no rank stops alone.
    """
    if accelerator.num_processes == 1:
        return [loss], elapsed
    shared = accelerator.gather(torch.tensor([[loss, elapsed]], dtype=torch.float64, device=accelerator.device)).cpu()
    return shared[:, 0].tolist(), float(shared[0, 1])


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
    ``early_stopping_patience`` validations without improvement. A loss that turns NaN or
    infinite stops the run at once with :class:`~coldstart_peft.errors.TrainingDivergedError`.

    Args:
        scorer: the scorer, after :func:`~coldstart_peft.assembly.apply_method`.
        method: the method that prepared it (its ``on_step`` runs after each optimizer step).
        train_groups: the training data.
        valid_cases: ranking cases for validation, or ``None``.
        config: engine settings.
        accelerator: reuse an Accelerator (one per process); built from ``config`` if ``None``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TrainingDivergedError: the loss became non-finite; the scorer is left as it was at
            that step and nothing has been written.
    """
    config = config or TrainConfig()
    config.validate()
    if not train_groups:
        raise ConfigError("no training groups: the training data is empty")
    if config.checkpoint_dir and (config.checkpoint_every or config.resume):
        ckpt.check_checkpoint_dir(config.checkpoint_dir)  # a read-only disk found now, not after the work
    set_seed(config.seed)
    accelerator = accelerator or make_accelerator(config)
    show = config.progress and accelerator.is_main_process
    setup_start = clock()
    # Tables given already fitted (a bank's, shared by its domains) are kept as they are.
    if scorer.priors is not None and not scorer.priors.fitted:
        with phase(f"fitting priors on {len(train_groups):,} training groups", enabled=show):
            scorer.priors.fit(train_groups)
    scorer.fit_statistics(train_groups)
    # What the accelerator runs, which a caller's own accelerator may have decided.
    precision = {"no": "fp32"}.get(str(accelerator.mixed_precision), str(accelerator.mixed_precision))
    scoring_precision, scorer.precision = scorer.precision, precision  # validation scores as training computes
    if config.group_by_length:
        sampler = LengthGroupedBatchSampler([scorer.padded_length(g) for g in train_groups], config.batch_size, config.seed)
        # The generator only keeps DataLoader from drawing its base seed from the global RNG
        # (which holds the dropout masks a resumed run must replay).
        loader = DataLoader(list(train_groups), batch_sampler=sampler, collate_fn=scorer.training_batch,
                            generator=torch.Generator().manual_seed(config.seed))  # fmt: skip
    else:
        sampler = None
        loader = DataLoader(
            list(train_groups), batch_size=config.batch_size, shuffle=True, collate_fn=scorer.training_batch,
            generator=torch.Generator().manual_seed(config.seed),
        )  # fmt: skip
    total_steps = plan_steps(len(train_groups), config, accelerator.num_processes)
    optimizer = torch.optim.AdamW(_param_groups(scorer, config, method), weight_decay=config.weight_decay)
    identity = _run_identity(config, method, train_groups) if config.checkpoint_dir else {}
    resumed = _open_checkpoint(config, identity)
    # The schedule is not handed to prepare(): a prepared scheduler steps once per process.
    model, optimizer, loader = accelerator.prepare(scorer, optimizer, loader)
    if config.log_with:
        accelerator.init_trackers("coldstart-peft", config={k: str(v) for k, v in dataclasses.asdict(config).items()})

    trainable, total = count_parameters(scorer)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    best_state: dict[str, torch.Tensor] | None = None
    stale, step, pairs, stopped = 0, 0, 0, False
    running = 0.0
    setup_seconds = clock() - setup_start
    start = clock()
    elapsed = 0.0  # the main process's, agreed on every step
    first_epoch, skip = 0, 0
    if resumed is not None:
        progress_state = resumed["progress"]
        with torch.no_grad():
            for name, parameter in scorer.named_parameters():
                if name in resumed["trainable"]:
                    parameter.copy_(resumed["trainable"][name])
        optimizer.load_state_dict(resumed["optimizer"])
        method.load_state_dict(scorer.backbone, resumed["method_state"])
        best_state, best, history = resumed["best"], progress_state["best"], progress_state["history"]
        stale, step, pairs, running = (progress_state[k] for k in ("stale", "step", "pairs", "running"))
        first_epoch, skip = progress_state["epoch"], progress_state["batch"]
        accelerator.step = progress_state["accelerator_step"]
        start -= progress_state["seconds"]
        elapsed = progress_state["seconds"]
        ckpt.restore_rng(resumed["rng"])
    # With a time budget the step count is unknown; a total would promise a false ETA.
    bar = tqdm(
        total=None if config.time_budget_s else total_steps, initial=step, desc=f"train {method.name}", disable=not show,
    )

    def validate() -> bool:
        """Validate, keep the best state; return True when patience is exhausted."""
        nonlocal best, best_state, stale
        if not valid_cases:
            return False
        with paused(bar):  # the training bar's rate and ETA count training steps only
            summary = evaluate_ranking(scorer.score, valid_cases, batch_size=config.eval_batch_size, progress=show)
        value = summary[config.metric]["mean"]
        record = {"step": step, "loss": running, **{k: v["mean"] for k, v in summary.items()}}
        history.append(record)
        accelerator.log({f"valid/{k}": v for k, v in record.items() if k != "step"}, step=step)
        if best is None or value > best["value"]:
            candidates = round(sum(len(c.candidate_texts) for c in valid_cases) / len(valid_cases))
            best = {"step": step, "value": value, "metric": config.metric, "candidates": candidates, "summary": summary}
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
                optimizer=optimizer.state_dict(), scheduler={"kind": config.scheduler, "step": step},
                progress={
                    "identity": identity, "epoch": epoch, "batch": batch_index, "step": step, "pairs": pairs,
                    "running": running, "stale": stale, "best": best, "history": history,
                    "accelerator_step": accelerator.step, "seconds": clock() - start,
                },
            )
        accelerator.wait_for_everyone()

    def set_learning_rate() -> float:
        """The same factor on every group and process: a function of progress alone."""
        factor = lr_factor(progress(step, total_steps, elapsed, config.time_budget_s), config.warmup_ratio, config.scheduler)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        return factor

    def diverged(losses: list[float]) -> TrainingDivergedError:
        lr = config.method_lr(method)
        return TrainingDivergedError(
            f"training diverged at step {step + 1}: the loss is {next(x for x in losses if not math.isfinite(x))}. "
            f"Nothing was saved. Train again with a lower learning rate (lr was {lr:g}; try {lr / 10:g}), "
            "a lower prior_lr, or max_grad_norm > 0"
        )

    model.train()
    worst = 0.0  # a non-finite micro-batch loss, kept until the step's collective
    losses_seen: list[float] = []
    for epoch in range(first_epoch, config.epochs):
        loader.set_epoch(epoch)  # the shuffle order of an epoch depends only on the seed and its number
        if sampler is not None:  # also where Accelerate's shard wrapper does not pass set_epoch on
            sampler.set_epoch(epoch)
        offset = skip if epoch == first_epoch else 0
        # Resuming mid-epoch: the same order, minus the batches the checkpoint already trained on.
        batches = loader if not offset else skip_first_batches(loader, offset) if offset < len(loader) else []
        for batch_index, batch in enumerate(batches, start=offset + 1):
            with accelerator.accumulate(model):
                task_loss = model(batch)
                extra = method.regularization(scorer.backbone)
                loss = task_loss if extra is None else task_loss + extra
                value = loss.item()
                if not math.isfinite(value):
                    worst = value
                if math.isfinite(worst):  # a NaN gradient would poison the weights and AdamW's moments
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                if accelerator.sync_gradients:
                    losses, elapsed = _agree(accelerator, worst if not math.isfinite(worst) else value, clock() - start)
                    if not all(math.isfinite(x) for x in losses):
                        optimizer.zero_grad()
                        bar.close()
                        raise diverged(losses)
                    factor = set_learning_rate()
                optimizer.step()
                if accelerator.sync_gradients:
                    # Before zero_grad: AdaLoRA's rank allocator scores importance from the gradients.
                    _on_step(method, scorer.backbone, step + 1)
                optimizer.zero_grad()
            pairs += len(batch["labels"]) * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            step += 1
            losses_seen.append(task_loss.item())
            running = 0.9 * running + 0.1 * losses_seen[-1] if step > 1 else losses_seen[-1]
            bar.update(1)
            bar.set_description(f"train {method.name} loss {running:.4f}")
            accelerator.log({"train/loss": task_loss.item(), "train/lr_factor": factor}, step=step)
            out_of_time = config.time_budget_s is not None and elapsed > config.time_budget_s
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
    scorer.precision = scoring_precision
    accelerator.wait_for_everyone()
    # The scorer leaves the engine as a plain module: no DDP wrapper, no autocast around forward.
    accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if config.log_with:
        accelerator.end_training()
    return TrainResult(
        steps=step, seconds=clock() - start, train_pairs=pairs,
        trainable_params=trainable, total_params=total, history=history, best=best, stopped_early=stopped,
        precision=precision, setup_seconds=setup_seconds, losses=losses_seen,
    )
