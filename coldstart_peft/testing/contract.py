"""The steps of the method contract, shared by this repository's suite and a plugin's own test.

One scorer x method pair is trained on the toy task, its trainable weights are moved away from
their initial values (so a tensor that is not saved shows), and it is saved. Reloading happens
in a fresh process, onto a fresh base model, for many pairs at once (:func:`reload_in_fresh_process`).
The ``assert_*`` functions check one clause each and raise :class:`ContractFailure` saying what broke.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from coldstart_peft.artifact import HEAD, save_adapter
from coldstart_peft.assembly import apply_method, build_scorer
from coldstart_peft.examples import RankingCase, TrainGroup
from coldstart_peft.host import PluginHost
from coldstart_peft.method import count_parameters
from coldstart_peft.training import TrainConfig, TrainResult, plan_steps, train

EPOCHS = {"cross-encoder": 2, "bi-encoder": 3, "generative": 2}
"""Epochs per scorer: the bi-encoder's in-batch softmax over 8 groups learns the toy task more slowly
per step (AdaLoRA moved its loss by only 0.048 in 2 epochs with AVX2 kernels); 3 keep the margin clear."""
SCORER_CONFIG = {"cross-encoder": {"max_length": 48, "dropout": 0.0}, "bi-encoder": {"max_length": 48},
                 "generative": {"max_length": 64}}  # fmt: skip
MIN_LOSS_DROP = 0.05
MIN_SCORE_CHANGE = 1e-3


class ContractFailure(AssertionError):
    """A method broke a clause of the contract; the message names the pair and the clause."""


@dataclasses.dataclass
class ContractSettings:
    """How one pair trains.

    Attributes:
        scorer: registered scorer name.
        scorer_config: the scorer's settings; ``None`` for :data:`SCORER_CONFIG`'s.
        epochs: passes over the training groups; ``None`` for :data:`EPOCHS`' of the scorer.
        batch_size: groups per step.
        min_lr: a floor under the method's ``recommended_lr`` (random models need larger steps);
            ``None`` trains at the method's own rate.
        max_groups: train on the first this many groups only.
    """

    scorer: str = "bi-encoder"
    scorer_config: dict[str, Any] | None = None
    epochs: int | None = None
    batch_size: int = 8
    min_lr: float | None = None
    max_groups: int | None = None

    def config(self) -> dict[str, Any] | None:
        """The scorer config to build with."""
        return self.scorer_config if self.scorer_config is not None else SCORER_CONFIG.get(self.scorer)

    def train_config(self, lr: float | None = None) -> TrainConfig:
        """The engine's config: fp32, seeded, no progress bars."""
        epochs = self.epochs or EPOCHS.get(self.scorer, 2)
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=lr, seed=0, progress=False, precision="fp32")


@dataclasses.dataclass
class PairOutcome:
    """What training, saving and reloading one pair produced; the ``assert_*`` functions read it."""

    name: str
    method: str
    base_model: str
    settings: ContractSettings
    groups: int
    before: float
    after: float
    result: TrainResult
    counted: tuple[int, int]
    scores: list[float]
    folder: Path
    reloaded: list[float] | None = None
    reload_error: str = ""


def probe_pairs(cases: list[RankingCase]) -> tuple[list[str], list[str]]:
    """Every (user, candidate) pair of the ranking cases, as two aligned lists."""
    return [c.user_text for c in cases for _ in c.candidate_texts], [t for c in cases for t in c.candidate_texts]


def _fixed_batch_loss(scorer, groups: list[TrainGroup]) -> float:
    scorer.eval()
    with torch.no_grad():
        return float(scorer.compute_loss(scorer.collate(groups)))


def train_and_save(
    name: str, method: str, base_model: str, task: tuple[list[TrainGroup], list[RankingCase]], folder: Path,
    host: PluginHost, settings: ContractSettings | None = None,
) -> PairOutcome:  # fmt: skip
    """Train one pair on the toy task, perturb its trainable weights, score the probe pairs and save it.

    Args:
        name: the pair's name in messages.
        method: registered method name in ``host``.
        base_model: base-model folder or name.
        task: ``(training groups, ranking cases)``, e.g. :func:`~coldstart_peft.testing.toy_task`.
        folder: where to save the adapter.
        host: the plugin host holding the method and the scorer.
        settings: how to train; defaults of :class:`ContractSettings` if ``None``.

    Returns:
        The outcome, not yet reloaded.
    """
    settings = settings or ContractSettings()
    train_groups, cases = task
    train_groups = train_groups[: settings.max_groups]
    torch.manual_seed(0)
    scorer = build_scorer(settings.scorer, base_model, settings.config(), host=host)
    instance = host.method(method)()
    lr = None if settings.min_lr is None else max(instance.recommended_lr, settings.min_lr)
    config = settings.train_config(lr)
    apply_method(scorer, instance, total_steps=plan_steps(len(train_groups), config))
    before = _fixed_batch_loss(scorer, train_groups[:32])
    result = train(scorer, instance, train_groups, None, config)
    after = _fixed_batch_loss(scorer, train_groups[:32])
    with torch.no_grad():  # move every trainable weight away from its initial value
        generator = torch.Generator().manual_seed(1)
        for parameter in scorer.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)
    scorer.precision = "fp32"
    scores = scorer.score(*probe_pairs(cases)).tolist()
    saved = save_adapter(scorer, folder)
    return PairOutcome(name, method, str(base_model), settings, len(train_groups), before, after, result,
                       count_parameters(scorer), scores, saved)  # fmt: skip


def reload_in_fresh_process(
    outcomes: list[PairOutcome], users: list[str], items: list[str], method_classes: list[type] | None = None,
    timeout: float = 900,
) -> None:  # fmt: skip
    """Load every outcome's folder in one new Python process onto a fresh base model; fill ``reloaded``.

    Args:
        outcomes: the saved pairs.
        users: probe user texts (as scored before saving).
        items: probe item texts.
        method_classes: method classes to register there (each importable as ``module.QualName``);
            ``None`` resolves names through the installed plugins, as ``load_adapter`` does.
        timeout: seconds before the process is given up.
    """
    plugins = None if method_classes is None else [[c.__module__, c.__qualname__] for c in method_classes]
    request = {"users": users, "items": items, "plugins": plugins, "folders": {o.name: str(o.folder) for o in outcomes}}
    # The child must import what this process imported (a test module defining the method).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        proc = subprocess.run([sys.executable, "-m", "coldstart_peft.testing.reload"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
    except subprocess.TimeoutExpired as exc:  # reported by each pair's reload check, not raised here
        partial = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        stdout, error = "", f"the fresh process did not finish loading within {timeout:.0f} s:\n{partial}"
    else:
        stdout, error = proc.stdout, proc.stderr
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT")]
    reloaded = json.loads(lines[0][len("RESULT"):]) if lines else {}
    for outcome in outcomes:
        outcome.reloaded = reloaded.get(outcome.name)
        outcome.reload_error = str(error)[-3000:]


def assert_loss_lowered(outcome: PairOutcome, min_drop: float = MIN_LOSS_DROP) -> None:
    """Training took steps and lowered the loss on a fixed batch by at least ``min_drop``."""
    if outcome.result.steps <= 0:
        raise ContractFailure(f"{outcome.name}: training took no steps")
    if not outcome.after < outcome.before - min_drop:
        raise ContractFailure(f"{outcome.name}: loss {outcome.before:.4f} -> {outcome.after:.4f}, "
                              f"not lowered by {min_drop}; is anything trainable after prepare()?")  # fmt: skip


def assert_parameters_reported(outcome: PairOutcome) -> None:
    """The training result reports the trainable and total counts the model has, trainable > 0."""
    trainable, total = outcome.counted
    reported = (outcome.result.trainable_params, outcome.result.total_params)
    if reported != (trainable, total) or not 0 < trainable <= total:
        raise ContractFailure(f"{outcome.name}: reported (trainable, total) {reported}, the model has {(trainable, total)}")


def assert_reload_identical(outcome: PairOutcome) -> None:
    """The adapter reloaded in a fresh process scores every probe pair exactly as before saving."""
    if outcome.reloaded is None:
        raise ContractFailure(f"{outcome.name}: loading the saved adapter failed in a fresh process:\n{outcome.reload_error}")
    if outcome.reloaded != outcome.scores:
        moved = max(abs(a - b) for a, b in zip(outcome.reloaded, outcome.scores))
        raise ContractFailure(f"{outcome.name}: scores after reload differ by up to {moved:.3e}; "
                              "save() or load() loses or changes a weight")  # fmt: skip


def assert_method_weights_saved(outcome: PairOutcome, host: PluginHost, cases: list[RankingCase],
                                min_change: float = MIN_SCORE_CHANGE) -> None:  # fmt: skip
    """The saved head on a base with freshly initialised method weights scores differently.

    That is the adapter minus exactly the method's tensors; if its scores did not move, the
    round trip could not show a method weight that is never saved.
    """
    stripped = build_scorer(outcome.settings.scorer, outcome.base_model, outcome.settings.config(), host=host)
    torch.manual_seed(123)  # other initial method weights than training drew
    planned = plan_steps(outcome.groups, outcome.settings.train_config())
    apply_method(stripped, host.method(outcome.method)(), total_steps=planned)
    stripped.load_head_state_dict(load_file(str(outcome.folder / HEAD)))
    stripped.precision = "fp32"
    scores = torch.as_tensor(stripped.score(*probe_pairs(cases)))
    moved = (scores - torch.tensor(outcome.scores)).abs().max().item()
    if not moved > min_change:
        raise ContractFailure(f"{outcome.name}: scores without the method's tensors moved only {moved:.2e}; "
                              "the method's trained weights make no difference to the scores")  # fmt: skip
