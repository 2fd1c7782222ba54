"""Recipe levers at equal training time, chosen on validation users: how the library's defaults are picked.

Each ``--arm`` trains the default recipe (bi-encoder + LoRA + priors + calibration) with some
settings changed, for the same ``--seconds``, and scores it on validation users that
calibration never saw (``--calibration-users`` onwards), never on test users. No-fine-tuning
baselines are scored on the same users for reference (``--references``, TF-IDF and zero-shot
MiniLM by default; any weights they tune, tuned on the calibration users), with or without arms.
The library's default for a lever is whichever arm wins here; the test tables
(``compare_methods.py``) then run once.

An arm is ``NAME:KEY=VALUE,KEY=VALUE`` (``NAME`` alone is the default recipe). Keys:

* ``method``: the registered method to train (e.g. ``full``, the ceiling LoRA is held to).
* ``targets``: the layers LoRA adapts, name suffixes joined by ``+`` as peft matches them
  (``query+key+value`` by default; ``query+key+value+intermediate.dense+output.dense`` for every
  linear layer of a BERT block but not the unused pooler).
* ``rank``: LoRA's rank r, with alpha = 2r so the update's scale stays the default's.
* ``loraplus``: LoRA+'s ratio of the B matrices' learning rate to the A matrices' (1: plain LoRA).
* ``dropout``: LoRA dropout.
* ``lr``: the method's learning rate (its ``recommended_lr`` by default: 1e-3 for LoRA).
* ``backbone_dropout``: the backbone's own dropout while training (``ScorerConfig.backbone_dropout``);
  ``model`` for the rate in the model's config.
* ``scorer``: the registered scorer to train (e.g. ``cross-encoder``).
* ``item_tower``: the bi-encoder's item side, ``shared`` (the default) or ``frozen`` (a frozen copy of
  the base model embeds items, so a step trains the user side only; with priors on, the tower's
  memory negatives are off, as the priors have no features for them).
* ``hard_negatives``: share of sampled negatives that are hard (0 to 1).
* ``hard_from``: where hard negatives come from, ``domain`` (the positive's own, the default),
  ``text`` (its nearest items by TF-IDF) or ``cooccurrence`` (what training users bought with the
  context's items).
* ``negatives``: sampled negatives per training group.
* ``train_k``: most previous items in a training context (the split's ``k``, 3, by default).
* ``history_extras``: item fields after each title in the user context, joined by ``+``
  (e.g. ``brand+category``); ``none`` for titles only.
* ``priors``: ``on``, ``off``, or the features to keep joined by ``+`` (e.g. ``lexical``).
* ``new_item_share``: share of each batch's items the priors show as new (no popularity or co-occurrence);
  ``auto`` (the default) for the share of validation targets training never saw.
* ``lexical_units``: what the priors' lexical feature counts, ``wordpiece`` or ``words``.
* ``positions``: train on each user's first N positions only (``FitSettings.max_positions``; the
  priors' tables still count every position).

Every arm after the first is also compared with the first (by convention the default) on the same
users: the NDCG@10 difference with a 95% paired bootstrap interval, so a winner whose lead the
interval does not clear says so. Each arm keeps its users' ranks of the target (``ranks``).

With ``--full-catalog`` every arm and reference is also ranked against the split's whole
candidate pool (the catalog on cold users, as ``compare_methods.py`` ranks test users), the same
held-out users, paired with the first arm there too (``metrics_full``, ``ranks_full``,
``against_full``): a lever can win on 1 + 99 and lose over the catalog.

Writes ``lever_choice.json`` and ``lever_choice.md`` under ``--out`` and prints the table.

Example:
    python benchmarks/lever_choice.py --split cold-item \\
        --arm default --arm brand:history_extras=brand+category --arm hard:hard_negatives=1 \\
        --out benchmarks/results/levers-cold-item
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import time
from pathlib import Path

import numpy as np

from coldstart_peft import TrainConfig, make_method
from coldstart_peft.data import load_dataset, make_split
from coldstart_peft.data.pairs import HARD_NEGATIVE_SOURCES
from coldstart_peft.data.text import TextConfig, TextSerializer
from coldstart_peft.errors import ConfigError
from coldstart_peft.evaluation.baselines import BASELINES, evaluate_baseline, make_baseline
from coldstart_peft.evaluation.full_catalog import evaluate_full_catalog
from coldstart_peft.evaluation.full_pool import evaluate_baseline_full_pool, full_pool_summary
from coldstart_peft.evaluation.metrics import metrics_from_ranks, paired_bootstrap, summarize
from coldstart_peft.evaluation.ranking import ranks_from_scores
from coldstart_peft.hardware import hardware_facts, resolve_precision
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings, fit_on_split

KEYS = ("method", "targets", "rank", "loraplus", "dropout", "lr", "batch", "temperature", "backbone_dropout", "scorer", "item_tower", "hard_negatives", "hard_from", "negatives", "train_k", "history_extras", "priors",
        "lexical_units", "new_item_share", "positions")
REFERENCES = ("tfidf", "zero-shot")
SPLITS = ("cold-user", "cold-item", "cold-domain")
PRESET_SECONDS = 240.0
"""Training seconds per arm by default: what ``compare_methods.py``'s cpu preset gives each method.
A choice made at another length need not hold at this one: without priors, LoRA at 8e-3 won at
150 s and scored lowest of four rates at 240 s (``results/levers-time-cold-user-no-priors``,
``results/levers-lr-cold-user-no-priors-240s``)."""


def add_validation_options(parser: argparse.ArgumentParser, split: str | None = "cold-user", seconds: float | None = PRESET_SECONDS) -> None:
    """The options this script shares with the probes measured like it (``benchmarks/probes``).

    ``--dataset``, ``--split`` (left out where ``split`` is None), ``--seconds`` of training per
    arm (left out where ``seconds`` is None), ``--calibration-users`` and ``--seed``.
    """
    parser.add_argument("--dataset", default="beauty")
    if split is not None:
        parser.add_argument("--split", default=split, choices=SPLITS)
    if seconds is not None:
        parser.add_argument("--seconds", type=float, default=seconds, help=f"training time per arm (default: {seconds:g})")
    parser.add_argument("--calibration-users", type=int, default=500, help="validation users used by calibration")
    parser.add_argument("--seed", type=int, default=0)


def validation_split(dataset, kind: str, seed: int, **options):
    """The split whose validation users this script and the probes score: the cpu preset's, on ``seed``
    (``options`` such as ``negative_sampling`` go to :func:`~coldstart_peft.data.make_split`)."""
    return make_split(dataset, kind, k=3, n_negatives=99, seed=seed, max_test_users=1000, **options)


def parse_arm(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value,key=value"`` → ``(name, {key: value})``; unknown keys are refused."""
    name, _, rest = spec.partition(":")
    changes = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"arm {spec!r}: {part!r} is not KEY=VALUE with KEY one of {', '.join(KEYS)}")
        changes[key] = value
    if not name:
        raise ConfigError(f"arm {spec!r} has no name; write NAME or NAME:KEY=VALUE,...")
    return name, changes


def arm_setup(changes: dict[str, str], calibration_users: int) -> tuple[FitSettings, TextSerializer]:
    """The recipe settings and text serializer an arm's changes describe."""
    settings = FitSettings(calibration_users=calibration_users)
    text = TextConfig()
    method_config = {}
    if "method" in changes:
        settings.method = changes["method"]
    if "dropout" in changes:
        method_config["dropout"] = float(changes["dropout"])
    if "targets" in changes:
        # Layer-name suffixes joined by +, as peft matches them: query+key+value+output.dense
        method_config["target_modules"] = [name for name in changes["targets"].split("+") if name]
        if not method_config["target_modules"]:
            raise ConfigError("targets= needs layer names joined by +, e.g. targets=query+key+value+output.dense")
    if "rank" in changes:
        if not changes["rank"].isdigit():
            raise ConfigError(f"rank={changes['rank']!r}: write a whole rank of at least 1, e.g. rank=16")
        # alpha follows the rank so the update's scale alpha/r stays the default's 2; the method refuses 0.
        method_config.update(r=int(changes["rank"]), alpha=2 * int(changes["rank"]))
    if "loraplus" in changes:
        try:
            method_config["loraplus_lr_ratio"] = float(changes["loraplus"])
        except ValueError:
            raise ConfigError(f"loraplus={changes['loraplus']!r}: write the B matrices' learning-rate ratio, e.g. loraplus=16") from None
    settings.method_config = method_config or None
    # An unknown method, or a field it lacks (targets on full fine-tuning), is refused here, before any training.
    make_method(settings.method, settings.method_config)
    if "backbone_dropout" in changes:
        value = changes["backbone_dropout"]
        settings.scorer_config = {"backbone_dropout": None if value == "model" else float(value)}
    if "scorer" in changes:
        settings.scorer = changes["scorer"]
    if "temperature" in changes:
        try:
            temperature = float(changes["temperature"])
        except ValueError:
            temperature = 0.0
        if not temperature > 0:  # refused here, before any training, not when the scorer is built
            raise ConfigError(f"temperature={changes['temperature']!r}: write the bi-encoder's initial softmax "
                              "temperature, a positive number, e.g. temperature=0.02")
        settings.scorer_config = {**(settings.scorer_config or {}), "temperature": temperature}
    if "hard_negatives" in changes:
        settings.hard_negatives = float(changes["hard_negatives"])
    if "hard_from" in changes:
        if changes["hard_from"] not in HARD_NEGATIVE_SOURCES:
            raise ConfigError(f"hard_from={changes['hard_from']!r}: write one of {', '.join(HARD_NEGATIVE_SOURCES)}")
        settings.hard_negatives_from = changes["hard_from"]
    if "negatives" in changes:
        settings.n_negatives = int(changes["negatives"])
    if "train_k" in changes:
        settings.train_k = int(changes["train_k"])
    if "priors" in changes:
        value = changes["priors"]
        settings.priors = value == "on" if value in ("on", "off") else tuple(value.split("+"))
        try:
            settings.prior_features()  # an unknown feature is refused here, before any training
        except ConfigError:
            raise ConfigError(f"priors={value!r}: write priors=on, priors=off or features joined by + "
                              "(e.g. priors=lexical+popularity)") from None
    if "item_tower" in changes:
        tower = changes["item_tower"]
        if tower not in ("shared", "frozen"):
            raise ConfigError(f"item_tower={tower!r}: write item_tower=shared or item_tower=frozen")
        # Memory negatives are columns the priors have no features for (BiEncoder.priors_unsupported).
        memory = tower == "frozen" and not settings.prior_features()
        settings.scorer_config = {**(settings.scorer_config or {}), "item_tower": tower, "memory_negatives": memory}
    if "lexical_units" in changes:
        settings.lexical_units = changes["lexical_units"]
    if "new_item_share" in changes:
        value = changes["new_item_share"]
        settings.new_item_share = None if value == "auto" else float(value)
    if "positions" in changes:
        if not changes["positions"].isdigit() or int(changes["positions"]) < 1:
            raise ConfigError(f"positions={changes['positions']!r}: write how many of each user's first positions to train on, e.g. positions=3")
        settings.max_positions = int(changes["positions"])
    if "history_extras" in changes:
        extras = () if changes["history_extras"] == "none" else tuple(changes["history_extras"].split("+"))
        text = dataclasses.replace(text, history_extras=extras)
    return settings, TextSerializer(text)


def _summary(better, tied, seed: int) -> dict:
    summary = summarize(metrics_from_ranks(better, tied), seed=seed)
    return {k: summary[k] for k in ("ndcg@10", "hr@10", "mrr")}


def arm_train_config(changes: dict[str, str], seconds: float, seed: int) -> TrainConfig:
    """The engine settings of an arm: ``seconds`` of training, and the learning rate and batch it names.

    The batch is in user groups (the cpu preset's 32 by default); with in-batch negatives it is
    also how many other users' items each positive is ranked against, at a cost in steps.
    """
    lr = float(changes["lr"]) if "lr" in changes else None
    if lr is not None and not lr > 0:
        raise ConfigError(f"lr={changes['lr']!r}: write a positive learning rate, e.g. lr=2e-3")
    batch = changes.get("batch", "32")
    if not batch.isdigit() or int(batch) < 1:
        raise ConfigError(f"batch={batch!r}: write how many user groups a step trains on, e.g. batch=64")
    return TrainConfig(epochs=1, batch_size=int(batch), time_budget_s=seconds, seed=seed, progress=False,
                       eval_every=10_000, lr=lr)  # fmt: skip


def run_arm(split, name: str, changes: dict[str, str], args) -> dict:
    """Train one arm for ``args.seconds``; score the validation users calibration never saw."""
    settings, serializer = arm_setup(changes, args.calibration_users)
    config = arm_train_config(changes, args.seconds, args.seed)
    held_out = split.ranking_cases("valid", serializer)[args.calibration_users :]
    started = time.perf_counter()
    scorer, result = fit_on_split(split, settings, config, serializer=serializer, test_cases=held_out)
    better, tied = ranks_from_scores(result.test_scores, held_out)
    catalog = {}
    if getattr(args, "full_catalog", False):  # the probes that train arms here have no such option
        catalog = held_out_catalog(evaluate_full_catalog(scorer, split, which="valid", serializer=serializer,
                                                         items=split.candidate_pool(), seed=args.seed), args)  # fmt: skip
    return {
        "arm": name, "changes": changes, "steps": result.steps, "train_seconds": result.seconds,
        "train_pairs_per_s": result.pairs_per_second, "precision": result.precision,
        "wall_seconds": time.perf_counter() - started, "held_out_users": len(held_out),
        "metrics": _summary(better, tied, args.seed),
        "ranks": {"better": better.tolist(), "tied": tied.tolist()}, **catalog,
    }  # fmt: skip


def held_out_catalog(report: dict, args) -> dict:
    """The full-pool figures of the users calibration never saw, from a report over every validation user.

    Both evaluators rank ``split.valid`` in order, as ``ranking_cases("valid")`` lists it, so the
    held-out users are the same slice of either.
    """
    better = np.asarray(report["ranks"]["better"][args.calibration_users :])
    tied = np.asarray(report["ranks"]["tied"][args.calibration_users :])
    summary = full_pool_summary(better, tied, seed=args.seed)
    return {"metrics_full": {k: summary[k] for k in ("ndcg@10", "recall@10", "ndcg@20", "recall@20")},
            "ranks_full": {"better": better.tolist(), "tied": tied.tolist()}}  # fmt: skip


def pair_with_first(arms: list[dict], seed: int) -> None:
    """Give each trained arm after the first its NDCG@10 against the first's, user by user (``against``;
    ``against_full`` over the full pool, where the arms were ranked there).

    The arms score the same validation users, so most of what separates two arms' own intervals
    is which users were drawn; resampling users once for both leaves the difference's own noise.
    """
    for ranks, key in (("ranks", "against"), ("ranks_full", "against_full")):
        trained = [arm for arm in arms if ranks in arm and "baseline" not in arm]
        if not trained:
            continue

        def ndcg(arm, ranks=ranks):
            return metrics_from_ranks(arm[ranks]["better"], arm[ranks]["tied"], ks=(10,))["ndcg@10"]

        first = ndcg(trained[0])
        for arm in trained[1:]:
            arm[key] = {"arm": trained[0]["arm"], **paired_bootstrap(ndcg(arm), first, seed=seed)}


def _against_cell(arm: dict, key: str = "against") -> str:
    if key not in arm:
        return "—"
    return interval(arm[key]["difference"], signed=True)


def winner_line(report: dict) -> str:
    """Which arm won on validation and, when it is not the first, whether its paired lead is sure."""
    winner = next(arm for arm in report["arms"] if arm["arm"] == report["winner"])
    if "against" not in winner:
        return f"Winner on validation: {winner['arm']}."
    d = winner["against"]["difference"]
    verdict = "above 0" if d["low"] > 0 else "holding 0, so not a sure lead"
    return (f"Winner on validation: {winner['arm']}, {_against_cell(winner)} NDCG@10 against {winner['against']['arm']} "
            f"on the same users (95% paired interval, {verdict}).")  # fmt: skip


def run_reference(split, name: str, args) -> dict:
    """A baseline on the arms' users; one that tunes weights tunes them on the calibration users, as the arms do."""
    valid = split.ranking_cases("valid")
    held_out = valid[args.calibration_users :]
    options = {"valid_cases": valid[: args.calibration_users]} if "valid_cases" in inspect.signature(BASELINES[name]).parameters else {}
    baseline = make_baseline(name, **options).fit(split)
    report = evaluate_baseline(baseline, held_out, seed=args.seed)["overall"]
    catalog = {}
    if args.full_catalog:
        catalog = held_out_catalog(evaluate_baseline_full_pool(baseline, split, which="valid", seed=args.seed), args)
    return {"arm": name, "changes": {}, "baseline": True, "held_out_users": len(held_out),
            "metrics": {k: report[k] for k in ("ndcg@10", "hr@10", "mrr")}, **catalog}  # fmt: skip


def validation_line(report: dict) -> str:
    """Seed, precision, the validation users scored and the commit: what every arm of a report shares."""
    return (f"seed {report['seed']}, precision {report['precision']}; scored on {report['arms'][0]['held_out_users']} "
            f"validation users calibration never saw (no test users). Commit {report['code']['commit']}"
            f"{' (dirty tree)' if report['code']['dirty'] else ''}.")  # fmt: skip


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# Recipe levers at equal time ({report['seconds']:.0f} s per arm), {report['dataset']} {report['split']}, "
        f"{machine['cpu_model']} ({machine['cpu_capability']})",
        "",
        f"Default recipe with the changes shown, {validation_line(report)}",
        "",
        "| arm | changes | steps | train pairs/s | NDCG@10 [95% CI] | against the first arm, paired | HR@10 | MRR |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for arm in report["arms"]:
        m = arm["metrics"]
        lines.append(
            f"| {arm['arm']} | {_changes_cell(arm)} | {'—' if arm.get('baseline') else arm['steps']} | "
            f"{'—' if arm.get('baseline') else format(arm['train_pairs_per_s'], '.1f')} | "
            f"{interval(m['ndcg@10'])} | {_against_cell(arm)} | {m['hr@10']['mean']:.4f} | {m['mrr']['mean']:.4f} |"
        )  # fmt: skip
    if report["winner"] is not None:
        lines += ["", winner_line(report)]
    catalog = [arm for arm in report["arms"] if "metrics_full" in arm]
    if catalog:
        lines += ["", f"Over the full pool ({report['full_catalog_pool']:,} items, each user's known items excluded), "
                      "the same users:", "",
                  "| arm | changes | NDCG@10 [95% CI] | against the first arm, paired | Recall@10 | NDCG@20 | Recall@20 |",
                  "|---|---|---|---|---:|---:|---:|"]  # fmt: skip
        for arm in catalog:
            m = arm["metrics_full"]
            lines.append(f"| {arm['arm']} | {_changes_cell(arm)} | {interval(m['ndcg@10'])} | {_against_cell(arm, 'against_full')} | "
                         f"{m['recall@10']['mean']:.4f} | {m['ndcg@20']['mean']:.4f} | {m['recall@20']['mean']:.4f} |")  # fmt: skip
        trained = [arm for arm in catalog if not arm.get("baseline")]
        if trained:
            best = max(trained, key=lambda arm: arm["metrics_full"]["ndcg@10"]["mean"])
            lines += ["", f"Best arm over the full pool: {best['arm']}"
                          + (f", {_against_cell(best, 'against_full')} against {best['against_full']['arm']}." if "against_full" in best else ".")]  # fmt: skip
    return "\n".join(lines) + "\n"


def _changes_cell(arm: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in arm["changes"].items()) or ("baseline" if arm.get("baseline") else "—")


def interval(summary: dict, signed: bool = False) -> str:
    """``mean [low, high]`` to four places, signed for a paired difference; the probes' tables use it too."""
    form = "+.4f" if signed else ".4f"
    return f"{summary['mean']:{form}} [{summary['low']:{form}}, {summary['high']:{form}}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_validation_options(parser)
    parser.add_argument("--arm", action="append", default=[], help="NAME or NAME:KEY=VALUE,... (repeatable)")
    parser.add_argument("--references", default=",".join(REFERENCES),
                        help="no-fine-tuning baselines scored on the same users, comma-separated (default: %(default)s)")
    parser.add_argument("--no-references", action="store_true", help="skip the baseline rows")
    parser.add_argument("--full-catalog", action="store_true",
                        help="also rank the same users' targets against the split's whole candidate pool (the catalog on cold users)")
    parser.add_argument("--out", type=Path, default=Path("runs/lever-choice"))
    args = parser.parse_args(argv)
    references = [] if args.no_references else [name for name in args.references.split(",") if name]
    unknown = [name for name in references if name not in BASELINES]
    if unknown:
        parser.error(f"unknown baselines {unknown}; choose from {', '.join(BASELINES)}")
    if not args.arm and not references:
        parser.error("nothing to score: give an --arm, or baselines with --references")
    specs = [parse_arm(spec) for spec in args.arm]  # refuse a bad arm before any training
    for _, changes in specs:  # and a bad value
        arm_setup(changes, args.calibration_users)
        arm_train_config(changes, args.seconds, args.seed)
    check_report_files(args.out, "lever_choice")
    split = validation_split(load_dataset(args.dataset), args.split, args.seed)
    arms = []
    for index, (name, changes) in enumerate(specs, 1):
        print(f"arm {index}/{len(specs)} {name}: training for {args.seconds:.0f} s ...", flush=True)
        arms.append(run_arm(split, name, changes, args))
        done = arms[-1]
        print(f"arm {name}: {done['steps']} steps, validation NDCG@10 {done['metrics']['ndcg@10']['mean']:.4f}", flush=True)
    winner = max(arms, key=lambda arm: arm["metrics"]["ndcg@10"]["mean"])["arm"] if arms else None
    pair_with_first(arms, args.seed)
    references = [run_reference(split, name, args) for name in references]
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seconds": args.seconds, "seed": args.seed, "precision": resolve_precision("auto").name,
              "arms": arms + references, "winner": winner,
              "full_catalog_pool": len(split.candidate_pool()) if args.full_catalog else None}  # fmt: skip
    write_report_files(args.out, "lever_choice", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
