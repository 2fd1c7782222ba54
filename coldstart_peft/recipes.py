"""End-to-end recipes on a cold-start split: fit a scorer, evaluate it.

The ``train`` and ``demo`` commands and the benchmark scripts all go through these, so a
number in a benchmark table comes from exactly the code a user runs.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from accelerate import Accelerator
from accelerate.utils import set_seed

from coldstart_peft.assembly import apply_method, build_scorer, make_method
from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import ConfigError
from coldstart_peft.evaluation.ranking import score_cases
from coldstart_peft.examples import RankingCase, TrainGroup
from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.method import Method
from coldstart_peft.progress import phase
from coldstart_peft.priors import DEFAULT_FEATURES, Priors, check_features
from coldstart_peft.scorer import Scorer
from coldstart_peft.training import TrainConfig, TrainResult, make_accelerator, plan_steps, process_state, train

logger = logging.getLogger("coldstart_peft")


def plan_line(users: int, groups: int, valid_users: int, calibration_users: int, capped: bool = False) -> str:
    """The line logged before training: how much data each part of the run will use.

    Args:
        users: training users the groups come from (for a pairs file: distinct user texts).
        groups: training groups.
        valid_users: validation users scored during training.
        calibration_users: validation users the prior weights are refitted on afterwards (0: none).
        capped: ``groups`` was cut to the ``max_groups`` budget.

    Example:
        >>> plan_line(3000, 8000, 100, 500)
        'training on 8,000 groups from 3,000 users; validating on 100 users; calibrating on 500 users'
    """
    line = f"training on {groups:,} groups{' (max_groups)' if capped else ''} from {users:,} users; "
    line += f"validating on {valid_users:,} users; " if valid_users else "no validation; "
    return line + (f"calibrating on {calibration_users:,} users" if calibration_users else "no calibration")


def trim_candidates(cases: Sequence[RankingCase], n_candidates: int, seed: int = 0) -> list[RankingCase]:
    """Keep the positive and ``n_candidates - 1`` random negatives of each case.

    Validation during training uses this to stay cheap; test metrics never do.
    """
    rng = random.Random(seed)
    out = []
    for case in cases:
        if len(case.candidate_texts) <= n_candidates:
            out.append(case)
            continue
        negatives = [i for i in range(len(case.candidate_texts)) if i != case.target]
        keep = [case.target, *rng.sample(negatives, n_candidates - 1)]
        ids = [case.candidate_ids[i] for i in keep] if case.candidate_ids else None
        out.append(RankingCase(case.user_text, [case.candidate_texts[i] for i in keep], 0, case.domain,
                               case.user_id, ids, case.segment, dict(case.extra), case.context_ids))  # fmt: skip
    return out


@dataclass
class FitSettings:
    """What to train on a split, beyond the engine's :class:`TrainConfig`.

    The defaults are the recipe that ranked best on the Beauty cold-user benchmark
    (``benchmarks/results/beauty-cpu``): a bi-encoder, the priors (the four features of
    :data:`~coldstart_peft.priors.DEFAULT_FEATURES`), one sampled negative on top of the in-batch
    ones, and the prior weights recalibrated on validation users.

    Args:
        method: registered method name.
        method_config: fields of the method's config.
        scorer: registered scorer name.
        scorer_config: fields of the scorer's config.
        base_model: HF model name or folder; ``None`` for the bundled MiniLM.
        n_negatives: sampled negatives per training group; ``None`` for the scorer's
            ``default_negatives`` (1 for the bi-encoder, 7 for the cross-encoder).
        hard_negatives: share of the sampled negatives that are hard (harder than uniform ones:
            same kind of product, different item).
        hard_negatives_from: where hard negatives come from: ``"domain"`` (the positive's own
            domain), ``"text"`` (its nearest items by TF-IDF) or ``"cooccurrence"`` (what training
            users bought with the context's items; see :func:`training_groups`).
        train_k: most previous items in a training group's context; ``None`` for the split's own
            ``k``, so training sees contexts as long as the test users' (more items show the encoder
            more of each user at a text-length cost).
        max_groups: cap on training groups (a budget knob); ``None`` for all.
        max_positions: train on each user's first this many positions only (the cold-start
            regime: a context of the first items, the next one to find); the priors' tables still
            count every position. ``None`` for all positions. :func:`fit_on_split` only; the
            per-domain bank refuses it.
        valid_users: validation users scored during training.
        valid_candidates: candidates per validation user (positive included).
        calibration_users: after training, refit the prior weights on this many validation
            users with all their candidates (:func:`~coldstart_peft.calibration.calibrate_priors`);
            0 skips it, and so does a scorer without priors.
        priors: compose the scorer with priors (:mod:`coldstart_peft.priors`): ``True`` for
            :data:`~coldstart_peft.priors.DEFAULT_FEATURES`, ``False`` for none, or the feature names
            (any of :data:`~coldstart_peft.priors.FEATURES`).
        lexical_units: what the priors' lexical feature counts: ``"words"`` or the backbone's
            ``"wordpiece"`` (:data:`~coldstart_peft.priors.LEXICAL_UNITS`). Words won on Beauty's
            validation users (``benchmarks/results/levers-lexical-units-*``, ``lexical-choice-*``).
        new_item_share: share of each training batch's items shown to the priors as new items
            (no popularity, no co-occurrence; :class:`~coldstart_peft.priors.Priors`); ``None``
            for the share of validation users' next items that training never saw
            (:func:`new_target_share`). On Beauty's validation users that is 0.001 on the
            cold-user split, where 0 beat 0.7 and 1 (0.454 NDCG@10 against 0.440 and 0.436), and
            1 on the cold-item split, where 1 beat 0.7, 0.3 and 0 (0.292, 0.289, 0.287, 0.281).
            It is 1 on a held-out domain too, where 0 scored 0.182 against 0.178, inside the
            intervals (``benchmarks/results/levers-new-items-*``).
        load_options: passed to the base model's ``from_pretrained`` (``dtype``, ``device_map``;
            see :mod:`coldstart_peft.load_options`).
    """

    method: str = "lora"
    method_config: dict[str, Any] | None = None
    scorer: str = "bi-encoder"
    scorer_config: dict[str, Any] | None = None
    base_model: str | None = None
    n_negatives: int | None = None
    hard_negatives: float = 0.0
    hard_negatives_from: str = "domain"
    train_k: int | None = None
    max_groups: int | None = None
    max_positions: int | None = None
    valid_users: int = 100
    valid_candidates: int = 20
    calibration_users: int = 500
    priors: bool | Sequence[str] = True
    lexical_units: str = "words"
    new_item_share: float | None = None
    load_options: dict[str, Any] | None = None

    def prior_features(self) -> tuple[str, ...]:
        """The prior features ``priors`` asks for, in :data:`~coldstart_peft.priors.FEATURES` order
        (``True``: :data:`~coldstart_peft.priors.DEFAULT_FEATURES`)."""
        if isinstance(self.priors, bool):
            return DEFAULT_FEATURES if self.priors else ()
        return check_features(self.priors)


def new_target_share(cases: Sequence[RankingCase], groups: Sequence[TrainGroup]) -> float:
    """The share of the cases' targets that no training group has as a positive: items new to the priors.

    Cases without candidate ids are skipped; with none left the share is 0.

    Example:
        >>> groups = [TrainGroup("u", ["a", "b"], [1.0, 0.0], item_ids=["a", "b"])]
        >>> cases = [RankingCase("u", ["a", "c"], target, candidate_ids=["a", "c"]) for target in (0, 1, 1, 1)]
        >>> new_target_share(cases, groups)
        0.75
    """
    seen = {i for g in groups for i, label in zip(g.item_ids or (), g.labels) if label > 0}
    targets = [c.candidate_ids[c.target] for c in cases if c.candidate_ids]
    return sum(t not in seen for t in targets) / len(targets) if targets else 0.0


def with_new_item_share(settings: FitSettings, cases: Sequence[RankingCase], groups: Sequence[TrainGroup]) -> FitSettings:
    """``settings`` with an unset ``new_item_share`` resolved to the :func:`new_target_share` of ``cases``."""
    if settings.new_item_share is not None:
        return settings
    share = new_target_share(cases, groups)
    if process_state().is_main_process and settings.prior_features():
        logger.info(f"{share:.1%} of the validation users' next items were never bought in training: "
                    "training shows that share of each batch's items to the priors as new")
    return dataclasses.replace(settings, new_item_share=share)


def sampled_negatives(settings: FitSettings, host: PluginHost | None = None) -> int:
    """``settings.n_negatives``, or the scorer's ``default_negatives`` where it is unset."""
    if settings.n_negatives is not None:
        return settings.n_negatives
    return (host or default_host()).scorer(settings.scorer).default_negatives


def recipe_groups(
    split: ColdStartSplit,
    settings: FitSettings,
    seed: int,
    serializer: TextSerializer | None = None,
    host: PluginHost | None = None,
    max_groups: int | None = None,
    max_per_user: int | None = None,
) -> list[TrainGroup]:
    """The training groups ``settings`` describe: context length, sampled and hard negatives.

    One place for every recipe that trains on a split (:func:`fit_on_split`, the per-domain bank),
    so a setting that shapes the groups reaches all of them.

    Args:
        split: the cold-start split.
        settings: ``train_k``, ``n_negatives``, ``hard_negatives`` and ``hard_negatives_from`` are read.
        seed: seed of the sampling.
        serializer: how items and users become text.
        host: plugin host the scorer's default negatives are looked up in.
        max_groups: stop after this many groups; ``None`` for all.
        max_per_user: each user's first this many positions only; ``None`` for all.
    """
    return training_groups(
        split, k=settings.train_k, n_negatives=sampled_negatives(settings, host),
        hard_negative_fraction=settings.hard_negatives, hard_negatives_from=settings.hard_negatives_from,
        seed=seed, serializer=serializer, max_groups=max_groups, max_per_user=max_per_user,
    )


def build_for_training(
    settings: FitSettings, train_config: TrainConfig, n_groups: int, host: PluginHost | None = None
) -> tuple[Scorer, Method, Accelerator]:
    """The scorer with its priors attached (unfitted) and its method applied, and the Accelerator.

    The seed is set first, so ``train_config.seed`` also fixes the method's initial weights;
    every command that trains builds its model here.

    Args:
        settings: method, scorer and base model.
        train_config: engine settings (seed, precision, the run's length for the method's plan).
        n_groups: training groups, for schedule-aware methods' step plan.
        host: plugin host to resolve names in.
    """
    set_seed(train_config.seed)
    accelerator = make_accelerator(train_config)
    method = make_method(settings.method, settings.method_config, host)
    scorer = build_scorer(settings.scorer, settings.base_model, settings.scorer_config, host, load_options=settings.load_options)
    features = settings.prior_features()
    scorer.attach_priors(Priors(features, lexical_units=settings.lexical_units, new_item_share=settings.new_item_share or 0.0) if features else None)
    apply_method(scorer, method, total_steps=plan_steps(n_groups, train_config, accelerator.num_processes))
    return scorer, method, accelerator


def fit_on_split(
    split: ColdStartSplit,
    settings: FitSettings | None = None,
    train_config: TrainConfig | None = None,
    serializer: TextSerializer | None = None,
    host: PluginHost | None = None,
    before_training: Callable[[Scorer], None] | None = None,
    test_cases: Sequence[RankingCase] | None = None,
) -> tuple[Scorer, TrainResult]:
    """Train a scorer with a method on a split's training users, validating on its valid users.

    The seed is set before anything random is built (the adapter's initial weights included),
    so one ``train_config.seed`` reproduces the run. After training the weights no longer
    change: calibration and the scoring of ``test_cases`` share one embedding of each text.

    Args:
        split: the cold-start split.
        settings: method, scorer and data budget.
        train_config: engine settings.
        serializer: how items and users become text (the default serializer if ``None``).
        host: plugin host to resolve names in.
        before_training: called with the prepared scorer before the first step (e.g. to
            measure the model before any training step).
        test_cases: cases to score once training and calibration are done; their scores
            land in ``result.test_scores``. Pass test users once per reported run.

    Returns:
        The trained scorer (best validation state restored) and the :class:`TrainResult`.
    """
    settings = settings or FitSettings()
    train_config = train_config or TrainConfig()
    if settings.max_positions is not None and settings.max_positions < 1:
        raise ConfigError(f"max_positions must be at least 1 (or None for every position), got {settings.max_positions}")
    show = train_config.progress and process_state().is_main_process
    with phase(f"building training groups from {split.kind} split", enabled=show):
        groups = recipe_groups(split, settings, train_config.seed, serializer, host, max_groups=settings.max_groups)
        # The priors' tables count every position; training may take each user's first few only.
        train_groups = groups if settings.max_positions is None else recipe_groups(
            split, settings, train_config.seed, serializer, host, max_groups=settings.max_groups,
            max_per_user=settings.max_positions)  # fmt: skip
    all_valid = split.ranking_cases("valid", serializer)
    valid = trim_candidates(all_valid[: settings.valid_users], settings.valid_candidates, seed=train_config.seed)
    settings = with_new_item_share(settings, all_valid, groups)
    scorer, method, accelerator = build_for_training(settings, train_config, len(train_groups), host)
    # A scorer without priors has nothing to calibrate.
    calibration = all_valid[: settings.calibration_users] if settings.calibration_users and scorer.priors is not None else []
    if process_state().is_main_process:
        capped = settings.max_groups is not None and len(train_groups) >= settings.max_groups
        logger.info(plan_line(len(split.train_sequences()), len(train_groups), len(valid), len(calibration), capped))
    if scorer.priors is not None:  # fitted here, so before_training already sees the full model
        with phase(f"fitting priors on {len(groups):,} training groups", enabled=show):
            scorer.priors.fit(groups)
    if before_training is not None:
        before_training(scorer)
    result = train(scorer, method, train_groups, valid or None, train_config, accelerator=accelerator)
    after = time.perf_counter()
    with scorer.frozen():  # from here on the weights the texts are embedded with stay fixed
        if calibration:
            with phase(f"calibrating the prior weights on {len(calibration)} validation users", enabled=show):
                result.calibration = calibrate_priors(scorer, calibration, progress=show) or None
        if test_cases is not None:
            with phase(f"scoring {len(test_cases)} test users", enabled=show):
                result.test_scores = score_cases(scorer.score, test_cases, progress=show)
    result.after_seconds = time.perf_counter() - after
    return scorer, result
