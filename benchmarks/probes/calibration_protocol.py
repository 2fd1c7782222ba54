"""Probe, not a library feature: which negatives should the prior weights be calibrated on?

The recipe refits the prior weights (popularity, lexical, co-occurrence) on validation users whose
target sits among 99 uniformly drawn negatives (:func:`~coldstart_peft.calibration.calibrate_priors`).
A full-catalog ranking's competition is the popular items, which uniform negatives rarely show, so
weights fitted there may under-rate popularity where issue #17's full-catalog bar is measured.
This script trains the default recipe once and fits its weights five ways on the first
``--calibration-users`` validation users: not at all (the weights training left), on uniform
negatives (the default), on popularity-sampled negatives, on both, and on each user's 99
highest-ranked catalog items under the default's weights (``top``: the very items a full-catalog
ranking puts above the target, mined from the model itself). Each is scored on the
validation users calibration never saw: 1 + 99 uniform, 1 + 99 popularity-sampled and the full
catalog. The hybrid + co-occurrence baseline, its λ and μ tuned on the same uniform, popularity and top cases,
is scored beside it, so a gain from the calibration protocol is not credited to the language model.
No test user is read. Uniform negatives, the default, gave the best full-catalog ranking on Beauty
(``benchmarks/README.md``); the top items are a trap, chosen for their high prior scores, so
among them every prior looks anti-correlated with the target and its weight turns negative.

Example:
    python benchmarks/probes/calibration_protocol.py --seconds 240 \\
        --out benchmarks/results/probe-calibration-cold-user
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402

from coldstart_peft.calibration import calibrate_priors  # noqa: E402
from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.data.text import TextSerializer  # noqa: E402
from coldstart_peft.evaluation import (  # noqa: E402
    evaluate_baseline,
    evaluate_baseline_full_pool,
    evaluate_full_catalog,
    evaluate_ranking,
)
from coldstart_peft.evaluation.baselines import HybridCooccurrenceBaseline  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402
from coldstart_peft.recipes import FitSettings, fit_on_split  # noqa: E402
from coldstart_peft.retrieval.catalog_prior import CatalogPrior  # noqa: E402
from coldstart_peft.retrieval.index import ItemIndex  # noqa: E402

PROTOCOLS = ("uniform", "popularity", "full catalog")
CALIBRATIONS = ("none", "uniform", "popularity", "both", "top")


def _ndcg(summary: dict) -> dict:
    return {k: summary["ndcg@10"][k] for k in ("mean", "low", "high")}


def splits(args):
    """The same cold-user split twice, its sampled negatives drawn uniformly and by popularity."""
    dataset = load_dataset(args.dataset)
    uniform = lever_choice.validation_split(dataset, "cold-user", args.seed)
    popular = lever_choice.validation_split(dataset, "cold-user", args.seed, negative_sampling="popularity")
    if [(r.user_id, r.target) for r in uniform.valid] != [(r.user_id, r.target) for r in popular.valid]:
        raise RuntimeError("the two splits disagree on their validation users; the comparison would not be paired")
    return uniform, popular


def _baseline_summary(baseline, cases, seed: int) -> dict:
    return evaluate_baseline(baseline, cases, seed=seed)["overall"]


def top_cases(scorer, split, records, index, serializer, n_negatives: int = 99):
    """``records`` again, each target among the catalog items the scorer ranks highest for its user.

    Ranked exactly as the full-catalog evaluation ranks (encoder plus priors at their current
    weights); the user's context items and the target itself are not negatives.
    """
    items, attributes = split.dataset.items, split.dataset.user_attributes
    user_texts = [serializer.user([items[i] for i in r.context], attributes=attributes.get(r.user_id)) for r in records]
    prior = CatalogPrior(scorer.priors, index, {i: serializer.item(items[i]) for i in index.ids})
    scores = index.scores(scorer.encode(user_texts)) + prior.scores(user_texts, [r.context for r in records])
    ranked = torch.topk(scores, n_negatives + 1 + max(len(r.context) for r in records), dim=1).indices.tolist()
    out = []
    for record, rows in zip(records, ranked):
        known = {record.target, *record.context}
        negatives = [index.item_id(row) for row in rows if index.item_id(row) not in known][:n_negatives]
        out.append(dataclasses.replace(record, candidates=[record.target, *negatives]))
    return dataclasses.replace(split, valid=out).ranking_cases("valid", serializer)


def scored(rank_uniform, rank_popular, full_report) -> dict:
    """NDCG@10 on the three protocols, from the two sampled summaries and a full-catalog report."""
    return {"uniform": _ndcg(rank_uniform), "popularity": _ndcg(rank_popular), "full catalog": _ndcg(full_report["retrieval"])}


def run(args) -> dict:
    uniform, popular = splits(args)
    n = args.calibration_users
    cases = {"uniform": uniform.ranking_cases("valid"), "popularity": popular.ranking_cases("valid")}
    fit_cases = {how: rendered[:n] for how, rendered in cases.items()}
    fit_cases["both"] = fit_cases["uniform"] + fit_cases["popularity"]
    held = {how: rendered[n:] for how, rendered in cases.items()}
    held_split = dataclasses.replace(uniform, valid=uniform.valid[n:])

    config = lever_choice.arm_train_config({}, args.seconds, args.seed)
    scorer, result = fit_on_split(uniform, FitSettings(calibration_users=0), config)
    trained = scorer.priors.weight.detach().clone()
    serializer = TextSerializer()
    arms = []
    with scorer.frozen():
        index = ItemIndex(scorer, "evaluation")
        index.add({i: serializer.item(uniform.dataset.items[i]) for i in uniform.candidate_pool()})
        for how in CALIBRATIONS:
            with torch.no_grad():
                scorer.priors.weight.copy_(trained)  # every fit starts where training left the weights
            weights = calibrate_priors(scorer, fit_cases[how]) if how != "none" else scorer.priors.named_weights()
            if how == "uniform":  # mined under the default's weights: the ranking a user would be shown
                fit_cases["top"] = top_cases(scorer, uniform, uniform.valid[:n], index, serializer)
            full = evaluate_full_catalog(scorer, held_split, which="valid", index=index, seed=args.seed)
            arms.append({"model": "lora", "calibration": how, "weights": weights,
                         "ndcg@10": scored(evaluate_ranking(scorer.score, held["uniform"], seed=args.seed),
                                           evaluate_ranking(scorer.score, held["popularity"], seed=args.seed), full)})  # fmt: skip
            print(f"lora, calibrated on {how}: " + ", ".join(f"{p} {arms[-1]['ndcg@10'][p]['mean']:.4f}" for p in PROTOCOLS), flush=True)
    for how in ("uniform", "popularity", "top"):
        baseline = HybridCooccurrenceBaseline(valid_cases=fit_cases[how]).fit(uniform)
        arms.append({"model": "hybrid+cooc", "calibration": how, "weights": {"lambda": baseline.lam, "mu": baseline.mu},
                     "ndcg@10": scored(_baseline_summary(baseline, held["uniform"], args.seed),
                                       _baseline_summary(baseline, held["popularity"], args.seed),
                                       evaluate_baseline_full_pool(baseline, held_split, which="valid", seed=args.seed))})  # fmt: skip
        print(f"hybrid+cooc, tuned on {how}: " + ", ".join(f"{p} {arms[-1]['ndcg@10'][p]['mean']:.4f}" for p in PROTOCOLS), flush=True)
    return {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": "cold-user",
            "seconds": args.seconds, "seed": args.seed, "precision": resolve_precision("auto").name, "steps": result.steps,
            "calibration_users": n, "arms": [{**arm, "held_out_users": len(held_split.valid)} for arm in arms]}  # fmt: skip


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# Which negatives to fit the prior weights on, {report['dataset']} cold-user, "
        f"{machine['cpu_model']} ({machine['cpu_capability']})",
        "",
        f"One LoRA run of the default recipe ({report['seconds']:.0f} s, {report['steps']} steps), its prior weights fitted "
        f"five ways on the first {report['calibration_users']} validation users; {lever_choice.validation_line(report)}",
        "",
        "| model | calibrated on | weights | 1 + 99 uniform | 1 + 99 popularity | full catalog |",
        "|---|---|---|---|---|---|",
    ]
    for arm in report["arms"]:
        weights = ", ".join(f"{k} {v:.2f}" for k, v in arm["weights"].items())
        cells = [lever_choice.interval(arm["ndcg@10"][p]) for p in PROTOCOLS]
        lines.append(f"| {arm['model']} | {arm['calibration']} | {weights} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split=None)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    check_report_files(args.out, "calibration_protocol")
    report = run(args)
    write_report_files(args.out, "calibration_protocol", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
