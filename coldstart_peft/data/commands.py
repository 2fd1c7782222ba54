"""Command-line pieces for data and baselines, for the CLI to wire into ``train`` and ``evaluate``.

Kept apart from the CLI module so ``train`` and ``evaluate`` share one definition of the
data flags, and so tests can build a split from parsed flags without running a command.
"""

from __future__ import annotations

import argparse
import time

from coldstart_peft.data.cold_start import make_split
from coldstart_peft.data.columns import MAPPING_FIELDS, mapping_from_options
from coldstart_peft.data.registry import DATASETS, GENERATED_DATASETS, load_dataset
from coldstart_peft.data.schema import Dataset
from coldstart_peft.data.splits import SPLIT_KINDS, ColdStartSplit, is_split_file
from coldstart_peft.data.tabular import load_tabular
from coldstart_peft.errors import ConfigError
from coldstart_peft.outputs import check_output_file

REPORT_METRICS = ("ndcg@10", "hr@10", "mrr", "auc")
"""Columns of :func:`format_metric_table`."""


def add_data_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the data flags: ``--dataset`` (or ``--items``/``--interactions``/``--column``), ``--split``, ``--k-context``...

    Args:
        parser: the parser (or subparser) of ``train`` or ``evaluate``.

    Returns:
        The same parser, for chaining.
    """
    group = parser.add_argument_group("data")
    add_dataset_arguments(group)
    group.add_argument("--split", default="cold-user", choices=SPLIT_KINDS, help="cold-start protocol (default: cold-user)")
    group.add_argument("--k-context", type=int, default=3, help="known items per cold user: 0, 1, 3 or 5 (default: 3)")
    group.add_argument("--n-negatives", type=int, default=99, help="negatives per test case (default: 99)")
    group.add_argument("--full-catalog", action="store_true", help="rank against every item the user never touched")
    group.add_argument("--seed", type=int, default=0, help="seed of the split and negative sampling (default: 0)")
    group.add_argument("--max-test-users", type=int, default=1000,
                       help="evaluate at most this many test (and validation) users; 0 for all (default: 1000)")  # fmt: skip
    group.add_argument("--domain", default=None, help="held-out domain for --split cold-domain (default: the largest)")
    group.add_argument("--few-shot", type=int, default=0, help="held-out-domain training cases for cold-domain: 0/16/64/256")
    group.add_argument("--save-split", default=None, help="write the split (ids only, JSON) to this path")
    return parser


def add_dataset_arguments(parser, what: str = "") -> None:
    """Add ``--dataset`` and the flags that read the user's own tables: ``--items``, ``--interactions``, ``--column``.

    Args:
        parser: the parser or argument group of a command that loads a dataset.
        what: what the dataset is for, to start the help of ``--dataset`` (``"catalog: "``).
    """
    parser.add_argument("--dataset", default="beauty",
                        help=f"{what}{' | '.join([*DATASETS, *GENERATED_DATASETS])} | a dataset folder (RecBole NAME.inter + "
                             "NAME.item, items.csv + interactions.csv ...) | a RecBole .inter file (default: beauty)")
    parser.add_argument("--items", metavar="FILE", help="your item table (CSV, TSV, JSONL or Parquet), with --interactions")
    parser.add_argument("--interactions", metavar="FILE", help="your interaction table (user, item, timestamp), with --items")
    parser.add_argument("--column", action="append", metavar="FIELD=COLUMN",
                        help="which of your columns holds a field, e.g. title=product_name, categories=path, "
                             "order= (no timestamp: file order); fields: " + ", ".join(MAPPING_FIELDS) + " (repeatable)")  # fmt: skip


def dataset_argument(args: argparse.Namespace) -> str | Dataset:
    """What ``--dataset`` names, or the dataset ``--items``/``--interactions``/``--column`` describe, loaded.

    Raises:
        ConfigError: only one of ``--items`` and ``--interactions``, both with another ``--dataset``, or
            ``--column`` with a named dataset.
    """
    items, interactions = getattr(args, "items", None), getattr(args, "interactions", None)
    mapping = mapping_from_options(getattr(args, "column", None))
    if items or interactions:
        if not (items and interactions):
            raise ConfigError("--items and --interactions go together: pass both files (or a folder as --dataset)")
        if args.dataset not in ("beauty", None):  # beauty is the default, so it cannot tell us it was asked for
            raise ConfigError(f"give either --dataset {args.dataset} or --items/--interactions, not both")
        return load_tabular(items, interactions, mapping)
    if mapping is not None:
        if str(args.dataset).lower() in {*DATASETS, *GENERATED_DATASETS}:
            raise ConfigError(
                f"--column maps the columns of your own files; {args.dataset!r} is a named dataset with its own loader. "
                "Pass a folder or a RecBole .inter file as --dataset, or --items FILE --interactions FILE"
            )
        return load_dataset(args.dataset, mapping)
    return args.dataset


def load_dataset_from_args(args: argparse.Namespace) -> Dataset:
    """Load the dataset the data flags describe (see :func:`dataset_argument`)."""
    dataset = dataset_argument(args)
    return dataset if isinstance(dataset, Dataset) else load_dataset(dataset)


def build_split_from_args(args: argparse.Namespace) -> ColdStartSplit:
    """Load ``args.dataset`` and build the split the flags describe (saving it with ``--save-split``).

    Returns:
        The :class:`ColdStartSplit`.

    Raises:
        OverwriteRefusedError: ``--save-split`` names a file that is not a saved split (checked
            before the dataset is read).
    """
    if getattr(args, "save_split", None):
        check_output_file(args.save_split, is_split_file, "--save-split")
    dataset = load_dataset_from_args(args)
    limit = args.max_test_users or None
    options = {"k": args.k_context, "seed": args.seed, "n_negatives": None if args.full_catalog else args.n_negatives,
               "max_test_users": limit}  # fmt: skip
    if args.split == "cold-domain":
        options.update(domain=getattr(args, "domain", None), few_shot=getattr(args, "few_shot", 0))
    split = make_split(dataset, args.split, **options)
    if getattr(args, "save_split", None):
        split.save(args.save_split)
    return split


def run_baseline_evaluation(args: argparse.Namespace) -> dict:
    """Fit the baseline ``args.baseline`` on the split the flags describe and evaluate its test users.

    Args:
        args: data flags plus ``baseline`` (a name in ``coldstart_peft.evaluation.baselines.BASELINES``;
            ``method``, its name before 0.2, is read where ``baseline`` is absent).

    Returns:
        ``{"method", "dataset", "split", "fingerprint", "n_cases", "seconds", "config", "report"}``;
        ``report`` is overall / per-segment / per-domain metrics with 95% intervals, plus
        ``"lambda"`` for the hybrids and ``"mu"`` for ``hybrid+cooc``.
    """
    from coldstart_peft.evaluation.baselines import evaluate_baseline, make_baseline

    started = time.perf_counter()
    split = build_split_from_args(args)
    cases = split.ranking_cases("test")
    name = getattr(args, "baseline", None) or args.method
    baseline = make_baseline(name).fit(split)
    report = evaluate_baseline(baseline, cases, seed=args.seed)
    summary = {
        "method": name,
        "dataset": split.dataset.name,
        "split": split.kind,
        "fingerprint": split.fingerprint(),
        "n_cases": len(cases),
        "seconds": round(time.perf_counter() - started, 1),
        "config": split.config,
        "report": report,
    }
    if getattr(baseline, "lam", None) is not None:
        summary["lambda"] = baseline.lam
    if getattr(baseline, "mu", None) is not None:
        summary["mu"] = baseline.mu
    return summary


def format_metric_table(summary: dict, metrics=REPORT_METRICS) -> str:
    """Render a summary as a plain-text table: one row per group, ``mean [low, high]`` per metric.

    Args:
        summary: from :func:`run_baseline_evaluation`, a segment report, or a flat
            ``evaluate_ranking`` summary.
        metrics: the columns.

    Example:
        >>> print(format_metric_table(run_baseline_evaluation(args)))
    """
    report = summary.get("report", summary)
    if "overall" not in report:
        report = {"overall": report}
    header = ["group", "n", *metrics]
    rows = []
    for group in sorted(report, key=lambda g: (g != "overall", not g.startswith("segment="), g)):
        values = report[group]
        n = values.get("n", {}).get("mean")
        cells = [f"{values[m]['mean']:.4f} [{values[m]['low']:.3f}, {values[m]['high']:.3f}]" if m in values else "-"
                 for m in metrics]  # fmt: skip
        rows.append([group, str(int(n)) if n is not None else "-", *cells])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    title = ""
    if "method" in summary:
        extra = f", λ={summary['lambda']}" if "lambda" in summary else ""
        title = (f"{summary['method']} on {summary['dataset']} {summary['split']} "
                 f"({summary['n_cases']} cases, split {summary['fingerprint']}, {summary['seconds']}s{extra})\n")  # fmt: skip
    return title + "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])
