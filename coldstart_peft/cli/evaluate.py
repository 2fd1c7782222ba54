"""``coldstart-peft evaluate``: a baseline or a trained adapter on a cold-start split, or on
a labeled-pairs file (pointwise AUC and log-loss)."""

from __future__ import annotations

import time

from coldstart_peft.artifact import load_adapter, read_manifest
from coldstart_peft.cli.options import add_precision_argument
from coldstart_peft.data.commands import add_data_arguments, build_split_from_args, format_metric_table, run_baseline_evaluation
from coldstart_peft.data.split_check import check_evaluation_split
from coldstart_peft.errors import ConfigError
from coldstart_peft.evaluation.baselines import BASELINES
from coldstart_peft.evaluation.pointwise import evaluate_pointwise
from coldstart_peft.evaluation.ranking import evaluate_by_segment
from coldstart_peft.labeled_pairs import read_pairs
from coldstart_peft.outputs import check_output_file, is_report_file, write_json_report


def register(commands) -> None:
    parser = commands.add_parser(
        "evaluate", help="evaluate a baseline or an adapter on a cold-start split, or on a labeled-pairs file"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--method", choices=sorted(BASELINES), help="a no-fine-tuning baseline")
    source.add_argument("--adapter", help="a trained adapter folder")
    parser.add_argument("--pairs", help="labeled-pairs file (user_text, item_text, label): report AUC and log-loss")
    parser.add_argument("--json", dest="json_out", help="also write the report to this JSON file")
    parser.add_argument("--base-model", default=None,
                        help="base model to load the adapter onto (default: the recorded one, if it is on this machine; "
                             "never downloaded unless given here)")  # fmt: skip
    parser.add_argument("--allow-split-mismatch", action="store_true",
                        help="score an adapter on another split of the data it was trained on, with a warning, "
                             "instead of refusing")  # fmt: skip
    add_precision_argument(parser)
    add_data_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.json_out:  # before the evaluation, not after it
        check_output_file(args.json_out, is_report_file, "--json")
    if args.pairs:
        if not args.adapter:
            raise ConfigError("--pairs needs --adapter: pointwise evaluation scores pairs with a trained model")
        scorer = load_adapter(args.adapter, base_model=args.base_model)
        scorer.precision = args.precision
        pairs = read_pairs(args.pairs)
        report = evaluate_pointwise(
            scorer.score, [p.user_text for p in pairs], [p.item_text for p in pairs], [p.label for p in pairs]
        )
        print(f"{args.adapter} on {args.pairs} ({len(pairs)} pairs)")
        for key, value in report.items():
            print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    elif args.method:
        report = run_baseline_evaluation(args)
        print(format_metric_table(report))
    else:
        started = time.perf_counter()
        split = build_split_from_args(args)
        # Before the model loads: the manifest alone says which split the adapter trained on.
        matches = check_evaluation_split(read_manifest(args.adapter).get("extra"), split, args.adapter,
                                         allow_mismatch=args.allow_split_mismatch)  # fmt: skip
        scorer = load_adapter(args.adapter, base_model=args.base_model)
        scorer.precision = args.precision
        cases = split.ranking_cases("test")
        segments = evaluate_by_segment(scorer.score, cases, progress=True, seed=args.seed)
        report = {"method": f"{scorer.manifest['scorer']} + {scorer.manifest['method']}", "dataset": split.dataset.name,
                  "split": split.kind, "fingerprint": split.fingerprint(), "n_cases": len(cases),
                  "seconds": round(time.perf_counter() - started, 1), "report": segments}  # fmt: skip
        if not matches:
            report["split_mismatch"] = "evaluated on another split of the training data (--allow-split-mismatch)"
        print(format_metric_table(report))
    if args.json_out:
        write_json_report(args.json_out, report)
    return 0
