"""``coldstart-peft train``: fine-tune a scorer with a method and save the adapter folder.

Three sources of training data: a labeled-pairs file (``--pairs``), a dataset's cold-start
split (``--dataset``, the default: one adapter from the split's training users, validated on
its validation users), or the same split per domain (``--per-domain``: a bank folder).
"""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState

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
from coldstart_peft.labeled_pairs import group_pairs, ranking_cases_from_pairs, read_pairs
from coldstart_peft.outputs import check_writable_dir
from coldstart_peft.provenance import file_fingerprint, groups_fingerprint
from coldstart_peft.recipes import build_for_training, fit_on_split
from coldstart_peft.training import TrainConfig, train, training_summary


def register(commands) -> None:
    # "resolve": the data flags' --seed replaces the engine's, so one --seed seeds split and training.
    parser = commands.add_parser(
        "train", help="fine-tune on a dataset's cold-start split (one adapter or one per domain) or a labeled-pairs file",
        conflict_handler="resolve",
    )
    parser.add_argument("--pairs", help="JSONL or CSV with user_text, item_text, label[, domain] (instead of --dataset)")
    parser.add_argument("--valid-pairs", help="held-out labeled pairs for validation and early stopping (with --pairs): "
                                              "each user's positives ranked against that user's negatives")
    parser.add_argument("--out", required=True, help="adapter folder to write (replaced atomically)")
    add_model_arguments(parser)
    add_train_arguments(parser)
    add_data_arguments(parser)
    add_fit_arguments(parser)
    add_per_domain_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.per_domain:
        if args.pairs:
            raise ConfigError("--per-domain trains on --dataset; drop --pairs")
        if args.calibration_users:
            raise ConfigError("--calibration-users is not applied to per-domain adapters; drop it or train one adapter")
        return run_per_domain(args)
    if args.pairs and args.calibration_users:
        raise ConfigError("--calibration-users reads validation users of a --dataset split; drop it with --pairs")
    if args.valid_pairs and not args.pairs:
        raise ConfigError("--valid-pairs validates a --pairs run; a --dataset run validates on its split's validation users")
    config = train_config_from_args(args)
    check_model_options(args)
    out = Path(args.out)
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
    groups = group_pairs(read_pairs(args.pairs))
    valid = ranking_cases_from_pairs(read_pairs(args.valid_pairs)) if args.valid_pairs else None
    if args.valid_pairs and not valid:
        raise ConfigError(f"--valid-pairs {args.valid_pairs} has no user with both a positive and a negative pair to rank")
    scorer, method, accelerator = build_for_training(fit_settings_from_args(args), config, len(groups))
    result = train(scorer, method, groups, valid, config, accelerator=accelerator)
    facts = {"train_seconds": result.seconds, "train_pairs": result.train_pairs, "seed": config.seed,
             "precision": result.precision, "data_fingerprint": file_fingerprint(args.pairs),
             "groups_fingerprint": groups_fingerprint(groups),
             "validation": {k: v for k, v in (result.best or {}).items() if k != "summary"}}  # fmt: skip
    return _save(scorer, result, out, facts, args.method)


def _save(scorer, result, out: Path, facts: dict, method: str) -> int:
    """Write the adapter on the main process only, then report what was trained."""
    state = PartialState()  # the state the training run set up (one process, or each of torchrun's)
    if state.is_main_process:
        save_adapter(scorer, out, extra=facts)
        print(f"{training_summary(method, result)}; adapter: {out} ({adapter_bytes(out):,} bytes)", flush=True)
    state.wait_for_everyone()
    return 0
