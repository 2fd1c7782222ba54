"""``coldstart-peft train``: fine-tune a scorer with a method and save the adapter folder."""

from __future__ import annotations

from pathlib import Path

from coldstart_peft.artifact import adapter_bytes, save_adapter
from coldstart_peft.assembly import apply_method, build_scorer, make_method
from coldstart_peft.bank.commands import add_per_domain_arguments, run_per_domain
from coldstart_peft.cli.options import add_model_arguments, add_train_arguments, parse_key_values, train_config_from_args
from coldstart_peft.data.commands import add_data_arguments
from coldstart_peft.errors import ConfigError
from coldstart_peft.labeled_pairs import group_pairs, read_pairs
from coldstart_peft.provenance import file_fingerprint, groups_fingerprint
from coldstart_peft.training import make_accelerator, plan_steps, train


def register(commands) -> None:
    # "resolve": the data flags' --seed replaces the engine's, so one --seed seeds split and training.
    parser = commands.add_parser(
        "train", help="fine-tune on a labeled-pairs file, or per domain of a dataset, and save adapters",
        conflict_handler="resolve",
    )
    parser.add_argument("--pairs", help="JSONL or CSV with user_text, item_text, label[, domain]")
    parser.add_argument("--valid-pairs", help="optional held-out pairs file for validation")
    parser.add_argument("--out", required=True, help="adapter folder to write (replaced atomically)")
    add_model_arguments(parser)
    add_train_arguments(parser)
    add_data_arguments(parser)
    add_per_domain_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.per_domain:
        if args.pairs:
            raise ConfigError("--per-domain trains on --dataset; drop --pairs")
        return run_per_domain(args)
    if not args.pairs:
        raise ConfigError("give --pairs FILE to train one adapter, or --per-domain (with --dataset) to train a bank")
    config = train_config_from_args(args)
    groups = group_pairs(read_pairs(args.pairs))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder; choose another path")
    if config.checkpoint_dir and Path(config.checkpoint_dir).resolve().is_relative_to(out.resolve()):
        # Saving replaces the --out folder as a whole, which would take the checkpoints with it.
        raise ConfigError(f"--checkpoint-dir {config.checkpoint_dir} lies inside --out {out}; put it beside the adapter folder")
    method = make_method(args.method, parse_key_values(args.method_config, "--method-config"))
    accelerator = make_accelerator(config)
    scorer = build_scorer(args.scorer, args.base_model, parse_key_values(args.scorer_config, "--scorer-config"))
    apply_method(scorer, method, total_steps=plan_steps(len(groups), config, accelerator.num_processes))
    result = train(scorer, method, groups, None, config, accelerator=accelerator)
    if accelerator.is_main_process:
        facts = {"train_seconds": result.seconds, "train_pairs": result.train_pairs, "seed": config.seed,
                 "data_fingerprint": file_fingerprint(args.pairs), "groups_fingerprint": groups_fingerprint(groups)}
        save_adapter(scorer, out, extra=facts)
        accelerator.print(
            f"trained {args.method} on {result.train_pairs} pairs in {result.seconds:.1f}s "
            f"({result.trainable_params:,} trainable of {result.total_params:,} parameters); "
            f"adapter: {out} ({adapter_bytes(out):,} bytes)"
        )
    accelerator.wait_for_everyone()
    return 0
