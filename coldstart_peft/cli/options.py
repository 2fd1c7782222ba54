"""Command-line options shared by the commands that train."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from coldstart_peft.errors import ConfigError
from coldstart_peft.hardware import PRECISIONS
from coldstart_peft.option_check import check_train_options
from coldstart_peft.priors import DEFAULT_FEATURES, FEATURES, LEXICAL_UNITS, check_features, check_new_item_share
from coldstart_peft.recipes import FitSettings
from coldstart_peft.training import TrainConfig


def parse_key_values(items: list[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` strings; values are read as JSON when they parse, else as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} option {item!r} must look like key=value, e.g. r=16")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
        except RecursionError:
            raise ConfigError(f"{what} option {key.strip()!r} is nested too deeply to be a setting") from None
    return out


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """``--precision`` for commands that score: what ``auto`` means is decided by the hardware."""
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,
        help="scoring precision: auto (bf16 only where the hardware computes it natively and faster, else fp32), "
             "fp32, bf16, fp16 (GPU); default: auto",
    )  # fmt: skip


def add_prior_arguments(parser) -> None:
    """``--priors`` and ``--no-priors``: which prior features the scorer is composed with."""
    parser.add_argument("--priors", type=_feature_list, default=True, metavar="FEATURES",
                        help=f"prior features added to the scorer's logit, comma-separated from {','.join(FEATURES)} "
                             f"(default: {','.join(DEFAULT_FEATURES)})")  # fmt: skip
    parser.add_argument("--no-priors", dest="priors", action="store_false",
                        help="train the language model alone: no prior features")
    parser.add_argument("--lexical-units", choices=LEXICAL_UNITS, default=FitSettings.lexical_units,
                        help="what the lexical prior counts: whole words or the backbone's wordpieces (default: %(default)s)")
    parser.add_argument("--new-item-share", type=_share, default=FitSettings.new_item_share, metavar="SHARE",
                        help="share of each training batch's items the priors see as new, without popularity or "
                             "co-occurrence, so the model learns to rank new products (default: the share of "
                             "validation users' next items that training never saw)")


def _share(value: str) -> float:
    try:
        return check_new_item_share(float(value))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _feature_list(value: str) -> list[str]:
    features = [v.strip() for v in value.split(",") if v.strip()]
    try:
        check_features(features)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return features


def add_model_arguments(parser: argparse.ArgumentParser, method: str = "lora") -> None:
    """Options choosing the base model, scorer and method."""
    group = parser.add_argument_group("model")
    group.add_argument("--method", default=method, help=f"fine-tuning method (default: {method}); see `coldstart-peft plugins`")
    group.add_argument("--method-config", action="append", metavar="KEY=VALUE", help="a method setting, e.g. r=16 (repeatable)")
    group.add_argument("--scorer", default=FitSettings.scorer, help=f"scorer (default: {FitSettings.scorer})")
    group.add_argument("--scorer-config", action="append", metavar="KEY=VALUE",
                       help="a scorer setting, e.g. max_length=128")
    add_prior_arguments(group)
    group.add_argument("--base-model", default=None, help="HF model name or folder (default: bundled all-MiniLM-L6-v2)")
    group.add_argument("--load-option", action="append", metavar="KEY=VALUE",
                       help="a base-model load option, e.g. dtype=bfloat16 or device_map=auto (repeatable)")


def add_train_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig | None = None) -> None:
    """One option per :class:`TrainConfig` field, with the field's help text."""
    defaults = defaults or TrainConfig()
    group = parser.add_argument_group("training")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        help_text = field.metadata.get("help", "")
        if "default" not in help_text:  # a help that states its default already says it better
            help_text += f" (default: {'off' if default is None else default})"  # None: no cap, no tracker
        if field.type in ("bool", bool):
            group.add_argument(flag, dest=field.name, default=default, action=argparse.BooleanOptionalAction, help=help_text)
            continue
        kind = {"int": int, "float": float, "str": str}.get(str(field.type).split(" | ")[0], str)
        group.add_argument(flag, dest=field.name, type=kind, default=default, help=help_text)


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build and validate the :class:`TrainConfig` the options describe."""
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    config.validate()
    check_train_options(config)  # values the engine would read only after an epoch
    return config


def check_model_options(args: argparse.Namespace) -> None:
    """Resolve ``--method``, ``--scorer`` and their settings before any data or model is loaded.

    Raises:
        UnknownNameError: a name that is not registered (the message lists the known ones).
        ConfigError: a setting that is unknown, of the wrong type or out of range.
    """
    from coldstart_peft.host import default_host
    from coldstart_peft.method import build_config

    host = default_host()
    host.method(args.method)(parse_key_values(args.method_config, "--method-config"))
    build_config(host.scorer(args.scorer).config_class, parse_key_values(args.scorer_config, "--scorer-config"))


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    """Options for training on a dataset's split (``--dataset``): how many groups, negatives, validation users."""
    group = parser.add_argument_group("training data from --dataset")
    group.add_argument("--max-groups", type=int, default=None, help="cap on training groups (the global adapter's with --per-domain)")
    group.add_argument("--train-negatives", type=int, default=None,
                       help="sampled negatives per training group (default: the scorer's; bi-encoder 1, cross-encoder 7)")
    group.add_argument("--valid-users", type=int, default=100, help="validation users per adapter (default: 100)")
    group.add_argument("--calibration-users", type=int, default=None,
                       help=f"after training one adapter, refit the prior weights on this many validation users "
                            f"(default: {FitSettings.calibration_users}; 0 turns it off)")


def fit_settings_from_args(args: argparse.Namespace) -> FitSettings:
    """The :class:`FitSettings` the model and data flags describe; unset flags keep its defaults."""
    calibration = FitSettings.calibration_users if args.calibration_users is None else args.calibration_users
    return FitSettings(
        method=args.method, method_config=parse_key_values(args.method_config, "--method-config"),
        scorer=args.scorer, scorer_config=parse_key_values(args.scorer_config, "--scorer-config"),
        base_model=args.base_model, n_negatives=args.train_negatives, max_groups=args.max_groups,
        valid_users=args.valid_users, calibration_users=calibration, priors=args.priors,
        lexical_units=getattr(args, "lexical_units", FitSettings.lexical_units),
        new_item_share=getattr(args, "new_item_share", FitSettings.new_item_share),
        load_options=parse_key_values(getattr(args, "load_option", None), "--load-option") or None,
    )  # fmt: skip
