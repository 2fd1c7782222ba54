"""Probe, not a library feature: does item-to-item similarity in the trained tower add to the recipe?

The bi-encoder reads a user's clicks as one text and ranks candidates against that one vector.
Content-based item-kNN, the usual answer to cold items, instead compares the candidate with each
clicked item. This probe trains the default recipe once (``--seconds``, as ``lever_choice.py``
does), then adds to each candidate's calibrated score ``w`` times its cosine similarity, in the
trained item tower, to the user's clicked items: the closest one (``max``) or their mean
(``mean``), scaled by the scorer's learned inverse temperature so ``w = 1`` weighs it like the
user vector's own similarity. ``w`` is chosen on the calibration users (the validation users the
priors' weights were fitted on) and the result is scored on the validation users calibration
never saw, paired with ``w = 0`` (the recipe as it is). No test users are scored.

Example:
    python benchmarks/probes/item_similarity.py --split cold-item --out benchmarks/results/probe-item-similarity-cold-item
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402

from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.evaluation.metrics import metrics_from_ranks, paired_bootstrap, summarize  # noqa: E402
from coldstart_peft.evaluation.ranking import ranks_from_scores, score_cases  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402
from coldstart_peft.recipes import fit_on_split  # noqa: E402

WEIGHTS = (0.0, 0.125, 0.25, 0.5, 1.0, 2.0, 4.0)
POOLS = ("max", "mean")


def item_similarities(scorer, split, serializer, cases) -> dict[str, list[np.ndarray]]:
    """Per pool of :data:`POOLS`, per case, each candidate's cosine similarity to the user's clicked items."""
    items = split.dataset.items
    texts = {t for c in cases for t in c.candidate_texts} | {serializer.item(items[i]) for c in cases for i in c.context_ids or ()}
    texts = sorted(texts)
    with torch.no_grad():
        vectors = torch.nn.functional.normalize(scorer.encode_items(texts), dim=-1).numpy()
    row = {t: i for i, t in enumerate(texts)}
    out: dict[str, list[np.ndarray]] = {pool: [] for pool in POOLS}
    for case in cases:
        if not case.context_ids:  # nothing clicked to compare with: the recipe's score alone
            for pool in POOLS:
                out[pool].append(np.zeros(len(case.candidate_texts)))
            continue
        candidates = vectors[[row[t] for t in case.candidate_texts]]
        clicked = vectors[[row[serializer.item(items[i])] for i in case.context_ids]]
        sims = candidates @ clicked.T
        out["max"].append(sims.max(axis=1))
        out["mean"].append(sims.mean(axis=1))
    return out


def ndcg_per_user(scores, cases) -> np.ndarray:
    better, tied = ranks_from_scores(scores, cases)
    return metrics_from_ranks(better, tied, ks=(10,))["ndcg@10"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split="cold-item")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    check_report_files(args.out, "item_similarity")
    split = lever_choice.validation_split(load_dataset(args.dataset), args.split, args.seed)
    settings, serializer = lever_choice.arm_setup({}, args.calibration_users)
    config = lever_choice.arm_train_config({}, args.seconds, args.seed)
    valid = split.ranking_cases("valid", serializer)
    calibration, held_out = valid[: args.calibration_users], valid[args.calibration_users :]
    started = time.perf_counter()
    scorer, result = fit_on_split(split, settings, config, serializer=serializer, test_cases=held_out)
    print(f"trained {result.steps} steps in {result.seconds:.0f} s", flush=True)
    scale = float(scorer.scale.detach())
    with scorer.frozen():
        base = {"calibration": score_cases(scorer.score, calibration), "held_out": result.test_scores}
        arms = []
        control = ndcg_per_user(base["held_out"], held_out)
        similarities = {"calibration": item_similarities(scorer, split, serializer, calibration),
                        "held_out": item_similarities(scorer, split, serializer, held_out)}  # fmt: skip
        for pool in POOLS:
            sims = {part: by_pool[pool] for part, by_pool in similarities.items()}
            on_calibration = {w: float(ndcg_per_user([b + w * scale * s for b, s in zip(base["calibration"], sims["calibration"])],
                                                     calibration).mean()) for w in WEIGHTS}  # fmt: skip
            chosen = max(on_calibration, key=on_calibration.get)
            values = ndcg_per_user([b + chosen * scale * s for b, s in zip(base["held_out"], sims["held_out"])], held_out)
            arms.append({"pool": pool, "weight_chosen_on_calibration": chosen, "calibration_ndcg@10": on_calibration,
                         "held_out": summarize({"ndcg@10": values}, seed=args.seed)["ndcg@10"],
                         "against_recipe": paired_bootstrap(values, control, seed=args.seed)})  # fmt: skip
            print(f"{pool}: w={chosen} held-out NDCG@10 {values.mean():.4f} against {control.mean():.4f}", flush=True)
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seconds": args.seconds, "seed": args.seed, "precision": resolve_precision("auto").name, "steps": result.steps,
              "held_out_users": len(held_out), "calibration_users": len(calibration), "inverse_temperature": scale,
              "recipe": summarize({"ndcg@10": control}, seed=args.seed)["ndcg@10"], "arms": arms,
              "wall_seconds": time.perf_counter() - started}  # fmt: skip
    write_report_files(args.out, "item_similarity", report, markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict) -> str:
    machine, recipe = report["machine"], report["recipe"]
    lines = [
        f"# Item-to-item similarity beside the recipe, {report['dataset']} {report['split']}, {machine['cpu_model']} ({machine['cpu_capability']})",
        "",
        f"Default recipe trained {report['seconds']:.0f} s ({report['steps']} steps, {report['precision']}), seed {report['seed']}; "
        f"the weight chosen on {report['calibration_users']} calibration users, scored on {report['held_out_users']} validation "
        f"users calibration never saw (no test users). Commit {report['code']['commit']}{' (dirty tree)' if report['code']['dirty'] else ''}.",
        "",
        "| arm | weight (calibration) | NDCG@10 [95% CI] | against the recipe, paired |",
        "|---|---:|---|---|",
        f"| recipe | 0 | {lever_choice.interval(recipe)} | — |",
    ]
    for arm in report["arms"]:
        m, d = arm["held_out"], arm["against_recipe"]["difference"]
        lines.append(f"| + {arm['pool']} similarity to the clicked items | {arm['weight_chosen_on_calibration']:g} | "
                     f"{lever_choice.interval(m)} | {lever_choice.interval(d, signed=True)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
