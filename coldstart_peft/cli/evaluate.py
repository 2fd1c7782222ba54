"""``coldstart-peft evaluate``: a baseline, a trained adapter or a bank folder on a cold-start
split, or an adapter on a labeled-pairs file (pointwise AUC and log-loss)."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from coldstart_peft.cli.options import add_precision_argument
from coldstart_peft.data.commands import add_data_arguments, build_split_from_args, format_metric_table, run_baseline_evaluation
from coldstart_peft.errors import ConfigError
from coldstart_peft.evaluation.baselines import BASELINES
from coldstart_peft.outputs import check_output_file, is_report_file, write_json_report

HELP = "evaluate a baseline, an adapter or a bank folder on a cold-start split, or on a labeled-pairs file"


class _DeprecatedMethod(argparse.Action):
    """``--method`` as ``evaluate`` spelled ``--baseline`` before 0.2 (``train --method`` is a fine-tuning method)."""

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn("evaluate --method is deprecated and will be removed in 0.2; use --baseline", FutureWarning,
                      stacklevel=2)  # fmt: skip
        setattr(namespace, self.dest, values)


def register(commands) -> None:
    parser = commands.add_parser("evaluate", help=HELP)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--baseline", choices=sorted(BASELINES), help="a no-fine-tuning baseline")
    source.add_argument("--method", dest="baseline", choices=sorted(BASELINES), action=_DeprecatedMethod,
                        help=argparse.SUPPRESS)  # fmt: skip
    source.add_argument("--adapter", help="a trained adapter folder, or a bank folder (coldstart-peft train --per-domain)")
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
        report = _evaluate_pairs(args)
    elif args.baseline:
        report = run_baseline_evaluation(args)
        print(format_metric_table(report))
    else:
        report = _evaluate_on_split(args)
        print(format_metric_table(report))
    if args.json_out:
        write_json_report(args.json_out, report)
    return 0


def _is_bank(folder: str) -> bool:
    from coldstart_peft.artifact import MANIFEST
    from coldstart_peft.bank.layout import BANK_MANIFEST

    return (Path(folder) / BANK_MANIFEST).is_file() and not (Path(folder) / MANIFEST).is_file()


def _evaluate_pairs(args) -> dict:
    from coldstart_peft.artifact import load_adapter
    from coldstart_peft.evaluation.pointwise import evaluate_pointwise
    from coldstart_peft.labeled_pairs import read_pairs

    if not args.adapter:
        raise ConfigError("--pairs needs --adapter: pointwise evaluation scores pairs with a trained model")
    if _is_bank(args.adapter):
        raise ConfigError(f"{args.adapter} is a bank folder; --pairs scores one adapter: pass one of its domain folders")
    scorer = load_adapter(args.adapter, base_model=args.base_model, merge=True)
    scorer.precision = args.precision
    pairs = read_pairs(args.pairs)
    report = evaluate_pointwise(
        scorer.score, [p.user_text for p in pairs], [p.item_text for p in pairs], [p.label for p in pairs]
    )
    print(f"{args.adapter} on {args.pairs} ({len(pairs)} pairs)")
    for key, value in report.items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    return report


def _evaluate_on_split(args) -> dict:
    from coldstart_peft.artifact import load_adapter, read_manifest
    from coldstart_peft.data.split_check import check_evaluation_split
    from coldstart_peft.evaluation.ranking import evaluate_by_segment, score_cases, segment_report

    started = time.perf_counter()
    bank = _is_bank(args.adapter)
    split = build_split_from_args(args)
    # Before the model loads: the manifest alone says which split the adapter trained on.
    if bank:
        from coldstart_peft.bank import AdapterBank
        from coldstart_peft.bank import read_manifest as read_bank_manifest

        facts = read_bank_manifest(args.adapter).get("training")
    else:
        facts = read_manifest(args.adapter).get("extra")
    matches = check_evaluation_split(facts, split, args.adapter, allow_mismatch=args.allow_split_mismatch)
    cases = split.ranking_cases("test")
    if bank:
        loaded = AdapterBank.load(args.adapter, base_model=args.base_model)
        loaded.scorer.precision = args.precision
        domain_of = {item_id: item.domain for item_id, item in split.dataset.items.items()}
        scores = score_cases(loaded.pair_scorer(domain_of), cases, progress=True)
        segments = segment_report(scores, cases, seed=args.seed)
        manifest = loaded.manifest
        what = f"bank of {len(loaded.domains)} domain adapters"
    else:
        scorer = load_adapter(args.adapter, base_model=args.base_model, merge=True)
        scorer.precision = args.precision
        segments = evaluate_by_segment(scorer.score, cases, progress=True, seed=args.seed)
        manifest, what = scorer.manifest, None
    report = {"method": f"{manifest['scorer']} + {manifest['method']}" + (f" ({what})" if what else ""),
              "dataset": split.dataset.name, "split": split.kind, "fingerprint": split.fingerprint(),
              "n_cases": len(cases), "seconds": round(time.perf_counter() - started, 1), "report": segments}  # fmt: skip
    if not matches:
        report["split_mismatch"] = "evaluated on another split of the training data (--allow-split-mismatch)"
    return report
