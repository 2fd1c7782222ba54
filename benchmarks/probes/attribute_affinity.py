"""Probe, not a library feature: does a user's affinity for a new item's brand or category add to the encoder?

On cold items the id co-occurrence prior is blind, but a new item arrives with a brand and a
category path, and training users bought brands and categories together. Co-occurrence read one
level up, at attributes, reaches every new item of a known brand:

* ``same_brand`` / ``same_leaf``: the share of the user's context items of the candidate's brand
  (full category path);
* ``brand_lift`` / ``leaf_lift``: ``log(1 + Σ_c lift(a_c, a_i))`` over the context items c, where
  ``lift(a, b) = n(a, b) · N / (n(a) · n(b) + 1)`` counts ordered pairs of distinct positions in
  training users' sequences whose items have attributes a and b (N: all attribute occurrences).

Each feature is added, with a weight, to the per-user z-scored score of three bases: ``hybrid+nbr``
(the no-LM twin of the default priors), TF-IDF, and the default recipe (LoRA with its priors)
trained ``--seconds``. The weight is chosen on the first ``--calibration-users`` validation users
(the ones the recipe calibrates its priors on) and scored on the validation users after them, as
``lever_choice.py`` scores its arms. No test user is read. A feature that lifted the encoder would
become a prior; one that lifts only the no-LM bases says the encoder already reads it from the text.

Example:
    python benchmarks/probes/attribute_affinity.py --split cold-item \\
        --out benchmarks/results/probe-attribute-affinity-cold-item
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402
from attribute_popularity import ndcg, table, zscore  # noqa: E402  (a sibling probe: the same scoring and table)

from coldstart_peft import TrainConfig  # noqa: E402
from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.evaluation.baselines import make_baseline  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402
from coldstart_peft.recipes import FitSettings, fit_on_split  # noqa: E402

ATTRIBUTES = ("brand", "leaf")
FEATURES = ("same_brand", "brand_lift", "same_leaf", "leaf_lift")
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
"""Grid for a feature's weight; the base score is z-scored per user."""


class AttributeAffinity:
    """Attribute counts and pair counts over a split's training sequences."""

    def __init__(self, split):
        items = split.dataset.items
        self.of = {
            "brand": lambda i: items[i].brand or None,  # an item without a brand matches nothing
            "leaf": lambda i: tuple(items[i].categories) or None,
        }
        self.single = {a: Counter() for a in ATTRIBUTES}
        self.pairs = {a: Counter() for a in ATTRIBUTES}
        for sequence in split.train_sequences().values():
            for a in ATTRIBUTES:
                values = [v for v in map(self.of[a], sequence) if v is not None]
                self.single[a].update(values)
                self.pairs[a].update((x, y) for p, x in enumerate(values) for q, y in enumerate(values) if p != q)
        self.total = {a: sum(self.single[a].values()) for a in ATTRIBUTES}

    def _lift(self, a: str, context: list, value) -> float:
        if value is None or not self.single[a][value]:
            return 0.0
        n, pairs, total = self.single[a], self.pairs[a], self.total[a]
        return math.log1p(sum(pairs[(v, value)] * total / (n[v] * n[value] + 1) for v in context if n[v]))

    def features(self, case) -> dict[str, np.ndarray]:
        out = {}
        for a in ATTRIBUTES:
            context = [v for v in map(self.of[a], case.context_ids or ()) if v is not None]
            values = [self.of[a](i) for i in case.candidate_ids]
            out[f"same_{a}"] = np.array([sum(v == c for v in context) / max(len(context), 1) for c in values], dtype=np.float64)
            out[f"{a}_lift"] = np.array([self._lift(a, context, c) for c in values])
        return out


def base_scores(split, name: str, valid, tune, seconds: float, seed: int) -> tuple[list[np.ndarray], dict]:
    """Per-user z-scored scores of every validation user under one base, and what the base ran."""
    if name == "lora":
        config = TrainConfig(epochs=1, batch_size=32, time_budget_s=seconds, seed=seed, progress=False, eval_every=10_000)
        _, result = fit_on_split(split, FitSettings(calibration_users=len(tune)), config, test_cases=valid)
        return [zscore(s) for s in result.test_scores], {"steps": result.steps, "train_seconds": result.seconds}
    options = {"valid_cases": tune} if name == "hybrid+nbr" else {}
    return [zscore(s) for s in make_baseline(name, **options).fit(split).score_cases(valid)], {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split="cold-item")
    parser.add_argument("--out", type=Path, default=Path("runs/probe-attribute-affinity"))
    args = parser.parse_args(argv)
    check_report_files(args.out, "attribute_affinity")
    split = lever_choice.validation_split(load_dataset(args.dataset), args.split, args.seed)
    valid = split.ranking_cases("valid")
    tune, held = valid[: args.calibration_users], valid[args.calibration_users :]
    if not held:
        parser.error(f"--calibration-users {args.calibration_users} leaves no validation users to score")
    affinity = AttributeAffinity(split)
    features = [affinity.features(c) for c in valid]
    cut = len(tune)
    rows, bases = [], {}
    for base in ("hybrid+nbr", "tfidf", "lora"):
        started = time.perf_counter()
        scores, ran = base_scores(split, base, valid, tune, args.seconds, args.seed)
        bases[base] = {**ran, "wall_seconds": time.perf_counter() - started}
        rows.append({"base": base, "feature": None, "weight": 0.0, "ndcg@10": ndcg(scores[cut:], held, args.seed)})
        for name in FEATURES:
            def combined(part: slice, weight: float, name=name):
                return [s + weight * f[name] for s, f in zip(scores[part], features[part])]

            weight = max(WEIGHTS, key=lambda w: ndcg(combined(slice(0, cut), w), tune, args.seed)["mean"])
            rows.append({"base": base, "feature": name, "weight": weight,
                         "ndcg@10": ndcg(combined(slice(cut, None), weight), held, args.seed)})  # fmt: skip
            print(f"{base} + {name} (weight {weight}): {rows[-1]['ndcg@10']['mean']:.4f}", flush=True)
    alone = [{"base": None, "feature": name, "weight": None, "ndcg@10": ndcg([f[name] for f in features[cut:]], held, args.seed)}
             for name in FEATURES]  # fmt: skip
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seed": args.seed, "seconds": args.seconds, "precision": resolve_precision("auto").name,
              "calibration_users": len(tune), "held_out_users": len(held), "bases": bases, "rows": rows + alone}  # fmt: skip
    machine = report["machine"]
    lora = bases["lora"]
    lines = [f"# Probe: affinity for a new item's brand and category, {args.dataset} {args.split}, "
             f"{machine['cpu_model']} ({machine['cpu_capability']})", "",
             f"Weights chosen on {len(tune)} validation users, scored on {len(held)} other validation users (no test users); "
             f"seed {args.seed}; LoRA is the default recipe trained {args.seconds:.0f} s ({lora['steps']} steps, "
             f"{report['precision']}). Commit {report['code']['commit']}{' (dirty tree)' if report['code']['dirty'] else ''}.", "",
             *table(report["rows"])]  # fmt: skip
    write_report_files(args.out, "attribute_affinity", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
