"""Probe, not a library feature: can a new item borrow popularity from its brand, category or look-alikes?

On cold items popularity and co-occurrence are blind (every candidate was never bought), and
text is all the priors read. But an item arrives with a brand and a category path, and training
users bought other items of that brand and category, so a popularity can be estimated for it
from attributes alone, with no interaction of its own:

* ``brand``: ``log(1 + n)``, n = training purchases of the item's brand;
* ``brand_mean``: ``log(1 + n / m)``, per item of the brand (m = the brand's catalog items), so a
  large brand is not favoured for its size alone;
* ``leaf``: ``log(1 + n)`` of the item's full category path;
* ``look_alikes``: the mean ``log(1 + n)`` of the ``--neighbours`` training items nearest by
  TF-IDF, weighted by their cosine.

Each feature is added, with a weight, to the per-user z-scored score of ``hybrid+nbr`` (the no-LM
twin of the default priors) and of TF-IDF. The weight is chosen on the first
``--calibration-users`` validation users and scored on the validation users after them, as
``lever_choice.py`` scores its arms. No test user is read. Were a feature to lift ``hybrid+nbr``
by a margin, it would become a prior for the encoder to use.

Example:
    python benchmarks/probes/attribute_popularity.py --split cold-item \\
        --out benchmarks/results/probe-attribute-popularity-cold-item
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402  (the split and options every validation probe shares)

from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.evaluation.baselines import make_baseline  # noqa: E402
from coldstart_peft.evaluation.metrics import summarize  # noqa: E402
from coldstart_peft.evaluation.ranking import metrics_from_scores  # noqa: E402
from coldstart_peft.hardware import hardware_facts  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402

FEATURES = ("brand", "brand_mean", "leaf", "look_alikes")
BASES = ("hybrid+nbr", "tfidf")
WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
"""Grid for a feature's weight; the base score is z-scored per user, so 1.0 is one standard deviation per log unit."""


class AttributePopularity:
    """The four estimates of a candidate's popularity, fitted on a split's training purchases."""

    def __init__(self, split, neighbours: int):
        items, popularity = split.dataset.items, split.popularity()
        self.items, self.neighbours = items, neighbours
        self.brand, self.leaf = Counter(), Counter()
        for item_id, n in popularity.items():
            item = items[item_id]
            if item.brand:
                self.brand[item.brand] += n
            self.leaf[item.categories] += n
        self.brand_size = Counter(item.brand for item in items.values() if item.brand)
        ids = list(items)
        self.row = {item_id: row for row, item_id in enumerate(ids)}
        text = [" ".join([items[i].title, items[i].brand or "", " ".join(items[i].categories[1:])]) for i in ids]
        self.matrix = TfidfVectorizer().fit_transform(text)
        warm = [i for i in ids if popularity.get(i, 0) > 0]
        self.warm = self.matrix[[self.row[i] for i in warm]].T.tocsr()
        self.warm_log = np.log1p(np.array([popularity[i] for i in warm], dtype=np.float64))

    def _look_alikes(self, ids) -> np.ndarray:
        sims = (self.matrix[[self.row[i] for i in ids]] @ self.warm).toarray()
        top = np.argpartition(-sims, self.neighbours, axis=1)[:, : self.neighbours]
        weights = np.take_along_axis(sims, top, axis=1)
        return (weights * self.warm_log[top]).sum(1) / np.maximum(weights.sum(1), 1e-9)

    def features(self, ids) -> dict[str, np.ndarray]:
        items = [self.items[i] for i in ids]
        return {
            "brand": np.array([math.log1p(self.brand[it.brand]) if it.brand else 0.0 for it in items]),
            "brand_mean": np.array([math.log1p(self.brand[it.brand] / self.brand_size[it.brand]) if it.brand else 0.0 for it in items]),
            "leaf": np.array([math.log1p(self.leaf[it.categories]) for it in items]),
            "look_alikes": self._look_alikes(ids),
        }  # fmt: skip


def ndcg(scores, cases, seed: int) -> dict:
    """NDCG@10's mean and 95% interval over ``cases``."""
    summary = summarize(metrics_from_scores(scores, cases), seed=seed)["ndcg@10"]
    return {k: summary[k] for k in ("mean", "low", "high")}


def zscore(scores) -> np.ndarray:
    """``scores`` standardised per user, so one weight means the same for every user."""
    # Callers pass a baseline's rows or the recipe's float64 scores; one dtype makes a list or float32 row standardise the same.
    scores = np.asarray(scores, dtype=np.float64)
    return (scores - scores.mean()) / (scores.std() + 1e-12)


def table(rows: list[dict]) -> list[str]:
    """A probe's rows (base, feature, weight, NDCG@10) as a markdown table, its header first."""
    lines = ["| base | + feature | weight | NDCG@10 [95% CI] |", "|---|---|---:|---|"]
    for row in rows:
        weight = "—" if row["weight"] is None else f"{row['weight']:g}"
        lines.append(f"| {row['base'] or '(alone)'} | {row['feature'] or '—'} | {weight} | {lever_choice.interval(row['ndcg@10'])} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split="cold-item", seconds=None)
    parser.add_argument("--neighbours", type=int, default=20, help="look-alikes per item (default: 20)")
    parser.add_argument("--out", type=Path, default=Path("runs/probe-attribute-popularity"))
    args = parser.parse_args(argv)
    if args.neighbours < 1:
        parser.error("--neighbours must be at least 1")
    check_report_files(args.out, "attribute_popularity")
    split = lever_choice.validation_split(load_dataset(args.dataset), args.split, args.seed)
    valid = split.ranking_cases("valid")
    tune, held = valid[: args.calibration_users], valid[args.calibration_users :]
    estimates = AttributePopularity(split, args.neighbours)
    features = {"tune": [estimates.features(c.candidate_ids) for c in tune], "held": [estimates.features(c.candidate_ids) for c in held]}
    rows = []
    for base_name in BASES:
        options = {"valid_cases": tune} if base_name == "hybrid+nbr" else {}
        base = make_baseline(base_name, **options).fit(split)
        scores = {"tune": [zscore(s) for s in base.score_cases(tune)], "held": [zscore(s) for s in base.score_cases(held)]}
        rows.append({"base": base_name, "feature": None, "weight": 0.0, "ndcg@10": ndcg(scores["held"], held, args.seed)})
        for name in FEATURES:
            def combined(part, weight, name=name):
                return [s + weight * f[name] for s, f in zip(scores[part], features[part])]

            weight = max(WEIGHTS, key=lambda w: ndcg(combined("tune", w), tune, args.seed)["mean"])
            rows.append({"base": base_name, "feature": name, "weight": weight, "ndcg@10": ndcg(combined("held", weight), held, args.seed)})
            print(f"{base_name} + {name} (weight {weight}): {rows[-1]['ndcg@10']['mean']:.4f}", flush=True)
    alone = [{"base": None, "feature": name, "weight": None, "ndcg@10": ndcg([f[name] for f in features["held"]], held, args.seed)}
             for name in FEATURES]  # fmt: skip
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seed": args.seed, "neighbours": args.neighbours, "calibration_users": args.calibration_users,
              "held_out_users": len(held), "rows": rows + alone}  # fmt: skip
    machine = report["machine"]
    lines = [f"# Probe: popularity borrowed from attributes, {args.dataset} {args.split}, {machine['cpu_model']} ({machine['cpu_capability']})", "",
             f"Weights chosen on {len(tune)} validation users, scored on {len(held)} other validation users (no test users); "
             f"seed {args.seed}, {args.neighbours} look-alikes. Commit {report['code']['commit']}"
             f"{' (dirty tree)' if report['code']['dirty'] else ''}.", "",
             *table(report["rows"])]  # fmt: skip
    write_report_files(args.out, "attribute_popularity", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
