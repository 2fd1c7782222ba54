"""Training options that the engine would only read after an epoch of work, checked at start-up.

``TrainConfig.validate`` checks what the engine needs before its first step. A misspelled
validation metric is read at the first validation, a misspelled tracker when the trackers
start, so both are checked here, each with the names it accepts.
"""

from __future__ import annotations

from functools import lru_cache

from coldstart_peft.errors import ConfigError


@lru_cache(maxsize=1)
def validation_metrics() -> tuple[str, ...]:
    """Every metric name validation reports (``ndcg@10``, ``mrr``, ``auc``...), read off a one-case run."""
    import torch

    from coldstart_peft.evaluation.ranking import evaluate_ranking
    from coldstart_peft.examples import RankingCase

    summary = evaluate_ranking(lambda users, items: torch.zeros(len(items)), [RankingCase("u", ["a", "b"], 0)])
    return tuple(sorted(summary))


def trackers() -> tuple[str, ...]:
    """The tracker names Accelerate knows (``tensorboard``, ``wandb``...), plus ``all``."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return (*sorted(LOGGER_TYPE_TO_CLASS), "all")


def check_train_options(config) -> None:
    """Raise for values of a :class:`~coldstart_peft.training.TrainConfig` that would fail only mid-run.

    Raises:
        ConfigError: naming the option and the values it accepts.
    """
    if config.metric not in validation_metrics():
        raise ConfigError(f"metric {config.metric!r} is not a validation metric; choose one of {', '.join(validation_metrics())}")
    if config.log_with is not None and config.log_with not in trackers():
        raise ConfigError(f"log_with {config.log_with!r} is not a tracker Accelerate knows; choose one of {', '.join(trackers())}")
    for name in ("eval_every", "eval_batch_size"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    for name in ("early_stopping_patience", "weight_decay", "max_grad_norm"):
        if not getattr(config, name) >= 0:
            raise ConfigError(f"{name} must be zero or more, got {getattr(config, name)}")
