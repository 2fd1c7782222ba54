"""Train a bank for the domains of a split: one global adapter, specialised per domain.

The default recipe trains one global adapter on every domain's training groups and gives each
domain the global adapter's weights with **its own prior weights**, calibrated on that domain's
validation users. At equal training budget on Beauty cold users this beat one adapter per
domain and the global adapter alone (``benchmarks/results/bank-budget-60``): the domains differ
in how much popularity and co-occurrence say, while six adapters trained on a sixth of the data
each rank worse than one trained on all of it.

With ``domain_adapters``, each domain with at least ``min_groups`` training groups also trains
an adapter of its own on its groups alone, starting from the global adapter's weights
(``from_global``) or from scratch, and is calibrated the same way.

Either way, a domain with fewer than ``min_calibration_users`` validation users (or, with
``domain_adapters``, fewer than ``min_groups`` training groups) gets no entry of its own: the
manifest records it as ``"fallback"`` with the reason, and the bank serves it with the global
adapter and its weights. Prior weights fitted on a few dozen users overfit them (on Beauty,
Fragrance's 21 validation users gave negative popularity and co-occurrence weights).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coldstart_peft.bank.writer import BankWriter
from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.data.text import TextSerializer
from coldstart_peft.errors import ConfigError, UnknownNameError
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.host import PluginHost
from coldstart_peft.recipes import FitSettings, build_for_training, recipe_groups, trim_candidates, with_new_item_share
from coldstart_peft.training import TrainConfig, make_accelerator, train


@dataclasses.dataclass
class PerDomainSettings:
    """What the per-domain recipe trains, beyond :class:`~coldstart_peft.recipes.FitSettings`.

    Args:
        domain_adapters: train an adapter per domain on top of the global one; ``False`` (the
            default, the winner at equal budget) gives each domain the global adapter's weights
            with its own calibrated prior weights and spends the whole budget on the global run.
        min_calibration_users: a domain with fewer validation users to calibrate on is served by
            the global adapter and its prior weights. 50: on held-out halves of Beauty's validation
            users, a domain's own weights lost to the global ones when fitted on 10 or 24 users
            and won on three of four domains fitted on 68 to 168 (``benchmarks/results/calibration-floor``).
        from_global: with ``domain_adapters``, start each domain adapter from the trained global adapter.
        min_groups: with ``domain_adapters``, a domain with fewer training groups gets no adapter of its own.
        max_groups_per_domain: cap on each domain's training groups (a budget knob).
        domains: train only these domains (default: every domain with training data).
        compare_global: also score the global adapter on each domain's validation cases and
            record it next to the domain adapter's metrics.
        total_steps: a budget for the whole bank, so a bank is compared with one adapter at equal
            training cost: with ``domain_adapters`` the global run takes ``global_share`` of these
            optimizer steps and the domains share the rest in proportion to their training
            groups; without, the global run takes them all. ``None``: every run follows
            ``TrainConfig`` alone.
        global_share: with ``domain_adapters``, the global run's share of ``total_steps``.
    """

    domain_adapters: bool = False
    min_calibration_users: int = 50
    from_global: bool = True
    min_groups: int = 200
    max_groups_per_domain: int | None = None
    domains: list[str] | None = None
    compare_global: bool = True
    total_steps: int | None = None
    global_share: float = 0.5

    def validate(self) -> None:
        """Raise :class:`ConfigError` on impossible values."""
        if self.min_groups < 1:
            raise ConfigError(f"min_groups must be at least 1, got {self.min_groups}")
        if self.min_calibration_users < 1:
            raise ConfigError(f"min_calibration_users must be at least 1, got {self.min_calibration_users}")
        if self.max_groups_per_domain is not None and self.max_groups_per_domain < 1:
            raise ConfigError(f"max_groups_per_domain must be at least 1, got {self.max_groups_per_domain}")
        if self.total_steps is not None and self.total_steps < 2:
            raise ConfigError(f"total_steps must be at least 2 (one global, one per domain), got {self.total_steps}")
        if not 0.0 < self.global_share < 1.0:
            raise ConfigError(f"global_share must be in (0, 1), got {self.global_share}")


def _sample(groups: list, limit: int | None, seed: int) -> list:
    if limit is None or len(groups) <= limit:
        return list(groups)
    return random.Random(seed).sample(groups, limit)


def _share(steps: int, sizes: dict[str, int]) -> dict[str, int]:
    """``steps`` split in proportion to ``sizes`` (largest remainders), at least one step each."""
    if not sizes:
        return {}
    total = sum(sizes.values())
    exact = {d: steps * n / total for d, n in sizes.items()}
    out = {d: int(v) for d, v in exact.items()}
    for d in sorted(exact, key=lambda d: exact[d] - out[d], reverse=True)[: steps - sum(out.values())]:
        out[d] += 1
    return {d: max(1, n) for d, n in out.items()}


def _means(summary: dict[str, Any] | None) -> dict[str, float]:
    return {k: v["mean"] for k, v in (summary or {}).items() if isinstance(v, dict) and "mean" in v}


def train_per_domain(
    split: ColdStartSplit,
    root: str | Path,
    settings: FitSettings | None = None,
    per_domain: PerDomainSettings | None = None,
    train_config: TrainConfig | None = None,
    serializer: TextSerializer | None = None,
    host: PluginHost | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train a global adapter and specialise it per domain of ``split``; save them as a bank.

    By default each domain gets the global adapter with its own prior weights; with
    ``per_domain.domain_adapters`` each also trains an adapter of its own (see the module docstring).

    Args:
        split: the cold-start split; training groups and validation cases carry their domain.
        root: the bank folder to write (an existing bank is extended, its domains replaced).
        settings: method, scorer and the global budget (``max_groups`` caps the global run).
        per_domain: the per-domain recipe.
        train_config: engine settings, shared by every run.
        serializer: how items and users become text.
        host: plugin host to resolve names in.
        log: where one progress line per adapter goes.

    Returns:
        The bank manifest as written.

    Example:
        >>> split = cold_user_split(load_dataset("beauty"), k=3, max_test_users=1000)
        >>> train_per_domain(split, "runs/beauty-bank", FitSettings(max_groups=2000),
        ...                  PerDomainSettings(max_groups_per_domain=500))
    """
    settings = settings or FitSettings()
    per_domain = per_domain or PerDomainSettings()
    per_domain.validate()
    if settings.max_positions is not None:
        # The bank's priors fit on the groups its global run trains on, so the cut would reach them too.
        raise ConfigError("max_positions is a fit_on_split option; the per-domain bank trains on every position. "
                          "Leave it unset here, or cap the work with max_groups")
    train_config = dataclasses.replace(train_config or TrainConfig())
    groups = recipe_groups(split, settings, train_config.seed, serializer, host)  # settings.max_groups: sampled below
    by_domain: dict[str, list] = defaultdict(list)
    for group in groups:
        by_domain[group.domain].append(group)
    wanted = per_domain.domains or sorted(by_domain)
    stray = [d for d in wanted if d not in split.dataset.domains]
    if stray:
        raise UnknownNameError("domain", stray[0], split.dataset.domains)
    valid_all = trim_candidates(split.ranking_cases("valid", serializer), settings.valid_candidates, seed=train_config.seed)
    valid_by_domain: dict[str, list] = defaultdict(list)
    for case in valid_all:
        valid_by_domain[case.domain].append(case)

    calibration_all = split.ranking_cases("valid", serializer)
    settings = with_new_item_share(settings, calibration_all, groups)

    def fit(train_groups, valid, start=None, calibration=(), steps=None):
        config = train_config if steps is None else dataclasses.replace(train_config, max_steps=steps)
        if start is None:
            scorer, _, accelerator = build_for_training(settings, config, len(train_groups), host)
        else:
            accelerator = make_accelerator(config)
            # train() unwrapped the global run's model, so it prepares afresh. The copy keeps the
            # global prior tables (train() never refits fitted ones): every domain shares them
            # and learns its own prior weights.
            scorer = copy.deepcopy(start)
        result = train(scorer, scorer.method, train_groups, valid or None, config, accelerator=accelerator)
        if calibration and scorer.priors is not None:
            with scorer.frozen():
                result.calibration = calibrate_priors(scorer, calibration)
        return scorer, result

    started = time.perf_counter()
    global_groups = _sample(groups, settings.max_groups, train_config.seed)
    global_valid = valid_all[: settings.valid_users]
    budget = per_domain.total_steps
    share = per_domain.global_share if per_domain.domain_adapters else 1.0
    global_steps = None if budget is None else max(1, round(budget * share))
    trained = {d: len(by_domain.get(d, [])) for d in wanted if len(by_domain.get(d, [])) >= per_domain.min_groups}
    domain_steps = {} if budget is None or not per_domain.domain_adapters else _share(budget - global_steps, {
        d: min(n, per_domain.max_groups_per_domain or n) for d, n in trained.items()})  # fmt: skip
    global_scorer, result = fit(global_groups, global_valid, calibration=calibration_all[: settings.calibration_users],
                                steps=global_steps)  # fmt: skip
    writer = BankWriter(root, global_scorer, training={
        "split": split.kind, "split_fingerprint": split.fingerprint(), "dataset": split.dataset.name,
        # What evaluate checks before scoring the bank, as for one adapter (coldstart_peft.data.split_check).
        "data_fingerprint": split.dataset.fingerprint(), "partition_fingerprint": split.partition_fingerprint(),
        "seed": train_config.seed,
        "fit": dataclasses.asdict(settings), "per_domain": dataclasses.asdict(per_domain),
        "train_config": {k: v for k, v in dataclasses.asdict(train_config).items() if k != "progress"},
    })  # fmt: skip
    writer.save_global(global_scorer, _means(result.best and result.best["summary"]), train_groups=len(global_groups),
                       valid_cases=len(global_valid), train_seconds=round(result.seconds, 1), steps=result.steps,
                       calibration=result.calibration)  # fmt: skip
    log(f"global: {len(global_groups)} groups, {result.steps} steps, {result.seconds:.0f}s")

    def _one_domain(domain: str) -> None:
        available = by_domain.get(domain, [])
        valid = valid_by_domain.get(domain, [])[: settings.valid_users]
        # Calibrated on this domain's validation users only: the weights that rank its candidates.
        domain_calibration = [c for c in calibration_all if c.domain == domain][: settings.calibration_users]
        facts: dict[str, Any] = {"available_groups": len(available), "valid_cases": len(valid),
                                 "calibration_users": len(domain_calibration)}  # fmt: skip
        if per_domain.compare_global and valid:
            facts["global_metrics"] = _means(evaluate_ranking(global_scorer.score, valid, batch_size=train_config.eval_batch_size))
        reason = None
        if per_domain.domain_adapters and len(available) < per_domain.min_groups:
            reason = f"{len(available)} training groups, fewer than min_groups={per_domain.min_groups}"
        elif global_scorer.priors is None and not per_domain.domain_adapters:
            reason = "no priors to calibrate per domain (train with priors, or with domain_adapters)"
        elif len(domain_calibration) < per_domain.min_calibration_users:
            reason = (f"{len(domain_calibration)} validation users to calibrate on, fewer than "
                      f"min_calibration_users={per_domain.min_calibration_users}")  # fmt: skip
        if reason:
            writer.add_fallback(domain, reason=f"{reason}; served by the global adapter", **facts)
            log(f"{domain}: {reason}, falls back to the global adapter")
            return
        if not per_domain.domain_adapters:
            calibration = calibrate_priors(global_scorer, domain_calibration)
            writer.save_domain(domain, global_scorer, {}, train_groups=0, train_seconds=0.0, steps=0, from_global=True,
                               calibration=calibration, **facts)  # fmt: skip
            log(f"{domain}: the global adapter with prior weights calibrated on {len(domain_calibration)} users")
            return
        chosen = _sample(available, per_domain.max_groups_per_domain, train_config.seed)
        scorer, result = fit(chosen, valid, start=global_scorer if per_domain.from_global else None,
                             calibration=domain_calibration, steps=domain_steps.get(domain))  # fmt: skip
        metrics = _means(result.best and result.best["summary"])
        writer.save_domain(domain, scorer, metrics, train_groups=len(chosen), train_seconds=round(result.seconds, 1),
                           steps=result.steps,
                           from_global=per_domain.from_global, calibration=result.calibration, **facts)  # fmt: skip
        log(f"{domain}: {len(chosen)} groups, {result.steps} steps, {result.seconds:.0f}s, valid {metrics}")

    global_weights = None if global_scorer.priors is None else global_scorer.priors.weight.detach().clone()

    def restore_global_weights() -> None:  # a domain's calibration runs on the global scorer's priors
        if global_weights is not None:
            with torch.no_grad():
                global_scorer.priors.weight.copy_(global_weights)

    # Without domain adapters every domain scores with the global adapter: embed each text once.
    shared = contextlib.nullcontext() if per_domain.domain_adapters else global_scorer.frozen()
    try:
        with shared:
            for domain in wanted:
                restore_global_weights()
                _one_domain(domain)
    finally:
        restore_global_weights()
    writer.manifest["training"]["seconds"] = round(time.perf_counter() - started, 1)
    writer.save_manifest()
    return writer.manifest
