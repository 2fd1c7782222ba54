"""Probe, not a library feature: would item-kNN's similarity, added to the fine-tuned encoder, lift it over the catalog?

Over the whole catalog the fine-tuned encoder with its priors is level with its peers on cold
users, and the best peer is hybrid + co-occurrence on some seeds and item-kNN on others. The
co-occurrence prior counts how often training users bought a candidate next to the user's
items (``log(1 + n)``, so popular items lead); item-kNN divides the same kind of count by both
items' buyer counts (a cosine) and keeps each item's ``k`` nearest. If the two rank differently
enough, item-kNN's cosine would be worth a prior feature.

Each base's scores over the split's whole candidate pool, z-scored per user, get item-kNN's,
z-scored the same way, added with a weight: bases are hybrid + co-occurrence, ``hybrid+nbr``
(the no-LM twin of the default priors), and the default recipe with LoRA and with full
fine-tuning, each trained ``--seconds`` with its priors. item-kNN's ``k`` and shrink, the
baselines' weights, the recipe's prior calibration and the added weight are all chosen on the
first ``--calibration-users`` validation users; every figure is NDCG@10 over the pool on the
validation users after them, as ``lever_choice.py --full-catalog`` scores its arms. No test user
is read.

Example:
    python benchmarks/probes/item_knn_prior.py --split cold-user \\
        --out benchmarks/results/probe-item-knn-prior-cold-user
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402
from attribute_popularity import zscore  # noqa: E402  (a sibling probe: the same standardisation)

from coldstart_peft import TrainConfig  # noqa: E402
from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.data.text import TextSerializer  # noqa: E402
from coldstart_peft.evaluation.baselines import make_baseline  # noqa: E402
from coldstart_peft.evaluation.full_pool import full_pool_summary, pool_ranks  # noqa: E402
from coldstart_peft.evaluation.metrics import metrics_from_ranks, paired_bootstrap  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402
from coldstart_peft.recipes import FitSettings, fit_on_split  # noqa: E402
from coldstart_peft.retrieval.catalog_prior import CatalogPrior  # noqa: E402
from coldstart_peft.retrieval.index import ItemIndex  # noqa: E402

WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)
"""Grid for item-kNN's weight; both scores are z-scored per user."""
TRAINED = ("lora", "full")
BATCH = 256


def encoder_pool_scores(scorer, split, pool: list[str], serializer: TextSerializer) -> np.ndarray:
    """The recipe's scores of every validation user against the pool, as ``evaluate_full_catalog`` ranks them."""
    items = split.dataset.items
    texts = {i: serializer.item(items[i]) for i in pool}
    index = ItemIndex(scorer, "probe")
    index.add(texts)
    prior = CatalogPrior(scorer.priors, index, texts)
    users = [serializer.user([items[i] for i in r.context], attributes=split.dataset.user_attributes.get(r.user_id))
             for r in split.valid]  # fmt: skip
    out = []
    with torch.no_grad():
        embedded = scorer.encode(users)
        for start in range(0, len(users), BATCH):
            stop = start + BATCH
            scores = index.scores(embedded[start:stop]) + prior.scores(users[start:stop], [r.context for r in split.valid[start:stop]])
            out.append(scores.numpy().astype(np.float64))
    return np.concatenate(out)


def baseline_pool_scores(baseline, cases, pool: list[str], texts: list[str]) -> np.ndarray:
    """A fitted baseline's scores of every case against the pool."""
    return np.concatenate([np.asarray(baseline.score_pool(cases[s : s + BATCH], pool, texts), dtype=np.float64)
                           for s in range(0, len(cases), BATCH)])  # fmt: skip


def standardised(scores: np.ndarray) -> np.ndarray:
    """Each row z-scored (:func:`attribute_popularity.zscore`), so one weight means the same for every user."""
    return np.stack([zscore(row) for row in scores])


def ranks(scores: np.ndarray, pool: list[str], records) -> tuple[np.ndarray, np.ndarray]:
    """``pool_ranks`` of a copy (it writes -inf over each user's known items in place)."""
    return pool_ranks(scores.copy(), pool, records)


def ndcg10(better: np.ndarray, tied: np.ndarray) -> float:
    return float(metrics_from_ranks(better, tied, (10,))["ndcg@10"].mean())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split="cold-user")
    parser.add_argument("--out", type=Path, default=Path("runs/probe-item-knn-prior"))
    args = parser.parse_args(argv)
    check_report_files(args.out, "item_knn_prior")
    split = lever_choice.validation_split(load_dataset(args.dataset), args.split, args.seed)
    serializer = TextSerializer()
    cases = split.ranking_cases("valid", serializer)
    cut = args.calibration_users
    tune, held = cases[:cut], cases[cut:]
    if not held:
        parser.error(f"--calibration-users {cut} leaves no validation users to score")
    pool = split.candidate_pool()
    texts = [serializer.item(split.dataset.items[i]) for i in pool]
    records = split.valid
    knn = make_baseline("item-knn", valid_cases=tune).fit(split)
    knn_z = standardised(baseline_pool_scores(knn, cases, pool, texts))
    bases, ran = {}, {}
    for name in ("hybrid+cooc", "hybrid+nbr"):
        bases[name] = standardised(baseline_pool_scores(make_baseline(name, valid_cases=tune).fit(split), cases, pool, texts))
    for method in TRAINED:
        started = time.perf_counter()
        config = TrainConfig(epochs=1, batch_size=32, time_budget_s=args.seconds, seed=args.seed, progress=False, eval_every=10_000)
        scorer, result = fit_on_split(split, FitSettings(method=method, calibration_users=cut), config, serializer=serializer)
        bases[method] = standardised(encoder_pool_scores(scorer, split, pool, serializer))
        ran[method] = {"steps": result.steps, "train_seconds": result.seconds, "precision": result.precision,
                       "prior_weights": scorer.priors.named_weights(), "wall_seconds": time.perf_counter() - started}  # fmt: skip
        print(f"{method}: {result.steps} steps", flush=True)
    knn_better, knn_tied = ranks(knn_z[cut:], pool, records[cut:])
    rows = [{"base": None, "weight": None, "ndcg@10": _summary(knn_better, knn_tied, args.seed)}]
    for name, base in bases.items():
        def combined(part: slice, weight: float, base=base):
            return base[part] + weight * knn_z[part]

        tuned = {w: ndcg10(*ranks(combined(slice(0, cut), w), pool, records[:cut])) for w in WEIGHTS}
        weight = max(tuned, key=tuned.get)
        alone = ranks(base[cut:], pool, records[cut:])
        with_knn = ranks(combined(slice(cut, None), weight), pool, records[cut:])
        rows.append({"base": name, "weight": 0.0, "ndcg@10": _summary(*alone, args.seed)})
        rows.append({"base": name, "weight": weight, "ndcg@10": _summary(*with_knn, args.seed), "tuned": tuned,
                     "against_base": _paired(with_knn, alone, args.seed)})  # fmt: skip
        print(f"{name}: {rows[-2]['ndcg@10']['mean']:.4f} -> {rows[-1]['ndcg@10']['mean']:.4f} with item-kNN at {weight}", flush=True)
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seed": args.seed, "seconds": args.seconds, "precision": resolve_precision("auto").name,
              "pool": len(pool), "calibration_users": cut, "held_out_users": len(held),
              "item_knn": {"k": knn.k, "shrink": knn.shrink}, "trained": ran, "rows": rows}  # fmt: skip
    write_report_files(args.out, "item_knn_prior", report, markdown(report))
    print(markdown(report))
    return 0


def _summary(better, tied, seed: int) -> dict:
    summary = full_pool_summary(better, tied, seed=seed)["ndcg@10"]
    return {k: summary[k] for k in ("mean", "low", "high")}


def _paired(new: tuple, old: tuple, seed: int) -> dict:
    """NDCG@10 of ``new`` less ``old``, user by user, with its 95% paired bootstrap interval."""
    a = metrics_from_ranks(*new, (10,))["ndcg@10"]
    b = metrics_from_ranks(*old, (10,))["ndcg@10"]
    return paired_bootstrap(a, b, seed=seed)["difference"]


def markdown(report: dict) -> str:
    machine, lines = report["machine"], []
    steps = ", ".join(f"{method} {ran['steps']} steps" for method, ran in report["trained"].items())
    lines += [f"# Probe: item-kNN's similarity added to each base over the full pool, {report['dataset']} {report['split']}, "
              f"{machine['cpu_model']} ({machine['cpu_capability']})", "",
              f"Pool {report['pool']:,} items, each user's known items excluded. item-kNN (k {report['item_knn']['k']}, "
              f"shrink {report['item_knn']['shrink']:g}), the baselines' weights, the recipe's calibration and the added weight "
              f"chosen on {report['calibration_users']} validation users; NDCG@10 over the pool on {report['held_out_users']} "
              f"other validation users (no test users); seed {report['seed']}; the recipe trained {report['seconds']:.0f} s "
              f"({steps}, {report['precision']}). "
              f"Commit {report['code']['commit']}{' (dirty tree)' if report['code']['dirty'] else ''}.", "",
              "| base | item-kNN weight | NDCG@10 [95% CI] | against the base alone, paired |", "|---|---:|---|---|"]
    for row in report["rows"]:
        weight = "—" if row["weight"] is None else f"{row['weight']:g}"
        cell = lever_choice.interval(row["against_base"], signed=True) if "against_base" in row else ""
        lines.append(f"| {row['base'] or 'item-kNN alone'} | {weight} | {lever_choice.interval(row['ndcg@10'])} | {cell} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
