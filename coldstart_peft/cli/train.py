"""``coldstart-peft train``: fine-tune a scorer with a method and save the adapter folder.

Three sources of training data: a labeled-pairs file (``--pairs``), a dataset's cold-start
split (``--dataset``, the default: one adapter from the split's training users, validated on
its validation users), or the same split per domain (``--per-domain``: a bank folder).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path


from coldstart_peft.artifact import adapter_bytes, check_replaceable, save_adapter
from coldstart_peft.bank.commands import add_per_domain_arguments, run_per_domain
from coldstart_peft.checkpoint import check_checkpoint_dir
from coldstart_peft.cli.options import (
    add_fit_arguments,
    add_model_arguments,
    add_train_arguments,
    check_model_options,
    fit_settings_from_args,
    train_config_from_args,
)
from coldstart_peft.data.commands import add_data_arguments, build_split_from_args
from coldstart_peft.errors import ConfigError
from coldstart_peft.few_shot import (
    AUTO_CV_PAIRS,
    auc_line,
    cross_validated_auc,
    held_out_auc,
    is_pointwise,
    plan_steps_for_pairs,
    pointwise_scorer_config,
)
from coldstart_peft.labeled_pairs import group_pairs, ranking_cases_from_pairs, read_pairs
from coldstart_peft.outputs import check_writable_dir
from coldstart_peft.provenance import file_fingerprint, groups_fingerprint
from coldstart_peft.recipes import build_for_training, fit_on_split, plan_line
from coldstart_peft.run_log import LOGS_FOLDER, check_trackers, save_history
from coldstart_peft.training import TrainConfig, process_state, train, training_summary


def register(commands) -> None:
    # "resolve": the data flags' --seed replaces the engine's, so one --seed seeds split and training.
    parser = commands.add_parser(
        "train", help="fine-tune on a dataset's cold-start split (one adapter or one per domain) or a labeled-pairs file",
        conflict_handler="resolve",
    )
    parser.add_argument("--pairs", help="JSONL or CSV with user_text, item_text, label[, domain] (instead of --dataset)")
    parser.add_argument("--valid-pairs", help="held-out labeled pairs for validation and early stopping (with --pairs): "
                                              "each user's positives ranked against that user's negatives")
    parser.add_argument("--cv-folds", type=int, default=None,
                        help="with --pairs: estimate the AUC by k-fold cross-validation before training on every pair "
                             f"(default: 5 for a pointwise file of up to {AUTO_CV_PAIRS} pairs without --valid-pairs, "
                             "else 0: off)")
    parser.add_argument("--out", required=True, help="adapter folder to write (replaced atomically)")
    add_model_arguments(parser)
    add_train_arguments(parser)
    # None marks "not given": a --pairs run sizes batches and epochs to a small file (coldstart_peft.few_shot).
    parser.set_defaults(epochs=None, batch_size=None)
    add_data_arguments(parser)
    add_fit_arguments(parser)
    add_per_domain_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    args.epochs_given, args.batch_size_given = args.epochs is not None, args.batch_size is not None
    args.epochs = TrainConfig.epochs if args.epochs is None else args.epochs
    args.batch_size = TrainConfig.batch_size if args.batch_size is None else args.batch_size
    if args.per_domain:
        if args.pairs:
            raise ConfigError("--per-domain trains on --dataset; drop --pairs")
        if args.calibration_users:
            raise ConfigError("--calibration-users is not applied to per-domain adapters; drop it or train one adapter")
        if args.log_with and not args.project_dir:
            # <out>/logs would hold one run per domain under one name; a folder of their own keeps them apart.
            raise ConfigError("--log-with with --per-domain needs --project-dir: a folder for the logs of the bank's runs")
        return run_per_domain(args)
    if args.pairs and args.calibration_users:
        raise ConfigError("--calibration-users reads validation users of a --dataset split; drop it with --pairs")
    if args.pairs and (getattr(args, "items", None) or getattr(args, "interactions", None) or getattr(args, "column", None)):
        raise ConfigError("--pairs trains on a labeled-pairs file; --items, --interactions and --column describe a "
                          "dataset: pass one or the other")
    if args.valid_pairs and not args.pairs:
        raise ConfigError("--valid-pairs validates a --pairs run; a --dataset run validates on its split's validation users")
    config = train_config_from_args(args)
    check_model_options(args)
    out = Path(args.out)
    if config.log_with and not config.project_dir:
        # Saving replaces --out as a whole, so the tracker writes beside it and the folder moves in afterwards.
        config.project_dir = str(_staged_logs(out))
        if process_state().is_main_process and _staged_logs(out).is_dir():
            shutil.rmtree(_staged_logs(out))  # an earlier run's, left by a failure: only this command makes that folder
    check_trackers(config.log_with, config.project_dir)
    check_replaceable(out)  # before training, not after hours of it
    check_writable_dir(out.parent, "the folder of --out")
    if config.checkpoint_dir and Path(config.checkpoint_dir).resolve().is_relative_to(out.resolve()):
        # Saving replaces the --out folder as a whole, which would take the checkpoints with it.
        raise ConfigError(f"--checkpoint-dir {config.checkpoint_dir} lies inside --out {out}; put it beside the adapter folder")
    if config.checkpoint_dir and (config.checkpoint_every or config.resume):
        check_checkpoint_dir(config.checkpoint_dir)
    return _train_on_pairs(args, config, out) if args.pairs else _train_on_split(args, config, out)


def _train_on_split(args, config: TrainConfig, out: Path) -> int:
    if args.split == "cold-domain" and not args.few_shot:
        print(f"note: --split cold-domain without --few-shot trains without any {args.domain or 'held-out'} domain data")
    split = build_split_from_args(args)
    scorer, result = fit_on_split(split, fit_settings_from_args(args), config)
    facts = {"train_seconds": result.seconds, "train_pairs": result.train_pairs, "seed": config.seed,
             "precision": result.precision, "dataset": split.dataset.name, "split": split.kind, "data_fingerprint": split.dataset.fingerprint(),
             "split_fingerprint": split.fingerprint(), "partition_fingerprint": split.partition_fingerprint(),
             "validation": {k: v for k, v in (result.best or {}).items() if k != "summary"},
             "calibration": result.calibration}  # fmt: skip
    return _save(scorer, result, out, facts, args.method)


def _train_on_pairs(args, config: TrainConfig, out: Path) -> int:
    pairs = read_pairs(args.pairs)
    groups = group_pairs(pairs)
    valid_pairs = read_pairs(args.valid_pairs) if args.valid_pairs else None
    # A pointwise validation file has no user to rank: it is scored by AUC after training instead.
    valid = ranking_cases_from_pairs(valid_pairs) if valid_pairs else None
    settings = fit_settings_from_args(args)
    if is_pointwise(groups):
        settings.scorer_config = pointwise_scorer_config(settings.scorer, settings.scorer_config)
    config = plan_steps_for_pairs(config, len(groups), args.batch_size_given, args.epochs_given)
    both_labels = len({p.label > 0.5 for p in pairs}) == 2
    # By default only few-shot like/dislike files are cross-validated: a file that ranks has --valid-pairs.
    auto = not valid_pairs and is_pointwise(groups) and len(pairs) <= AUTO_CV_PAIRS and both_labels
    folds = args.cv_folds if args.cv_folds is not None else 5 if auto else 0
    if process_state().is_main_process:  # a pairs file's groups are its distinct user texts
        logging.getLogger("coldstart_peft").info(plan_line(len(groups), len(groups), len(valid or ()), 0))
    cv = None
    if folds:
        cv = cross_validated_auc(lambda train_groups: _fit(settings, config, train_groups, None)[0], pairs, folds, config.seed)
    scorer, result = _fit(settings, config, groups, valid or None)
    held_out = held_out_auc(scorer, valid_pairs, config.seed) if valid_pairs and len({p.label > 0.5 for p in valid_pairs}) == 2 else None
    facts = {"train_seconds": result.seconds, "train_pairs": result.train_pairs, "seed": config.seed,
             "precision": result.precision, "data_fingerprint": file_fingerprint(args.pairs),
             "groups_fingerprint": groups_fingerprint(groups),
             "plan": {"epochs": config.epochs, "batch_size": config.batch_size, "steps": result.steps,
                      "scorer_config": settings.scorer_config},
             "validation": {k: v for k, v in (result.best or {}).items() if k != "summary"}}  # fmt: skip
    if cv is not None:
        facts["cross_validation"] = cv
        print(auc_line(cv, f"by {folds}-fold cross-validation"), flush=True)
    if held_out is not None:
        facts["held_out"] = held_out
        print(auc_line(held_out, f"on {args.valid_pairs}"), flush=True)
    return _save(scorer, result, out, facts, args.method)


def _fit(settings, config: TrainConfig, groups, valid):
    """Build a fresh seeded model and train it on ``groups``; (scorer, result)."""
    scorer, method, accelerator = build_for_training(settings, config, len(groups))
    return scorer, train(scorer, method, groups, valid, config, accelerator=accelerator)


def _staged_logs(out: Path) -> Path:
    """The hidden sibling of ``--out`` a tracker writes to during training (moved to ``<out>/logs`` once saved)."""
    return out.with_name(f".{out.name}.{LOGS_FOLDER}-tmp")


def _save(scorer, result, out: Path, facts: dict, method: str) -> int:
    """Write the adapter and its history on the main process only, then report what was trained."""
    state = process_state()  # the state the training run set up (one process, or each of torchrun's)
    if state.is_main_process:
        save_adapter(scorer, out, extra=facts)
        size = adapter_bytes(out)  # the adapter itself, before the history and logs join it
        save_history(result, out, method)
        staged = _staged_logs(out)
        if staged.is_dir():
            os.replace(staged, out / LOGS_FOLDER)
        print(f"{training_summary(method, result)}; adapter: {out} ({size:,} bytes)", flush=True)
    state.wait_for_everyone()
    return 0
