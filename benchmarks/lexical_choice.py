"""Which lexical feature the priors should use, chosen on validation users: wordpieces or whole words.

No language model is trained. Each arm is one lexical feature beside the same popularity and
co-occurrence features (``log(1 + purchases)`` and ``log(1 + co-occurrences)`` from the split's
training users), combined as ``lexical + λ·popularity + μ·co-occurrence``. The validation users
are cut into two halves; λ and μ are chosen on one half and scored on the other, both ways, so
no figure is measured on the users its weights were chosen on. Test users are never read.

Arms:

* ``wordpiece``: the priors' ``lexical`` feature over the backbone's wordpieces (TF-IDF cosine
  of the serialized user and item texts, idf from the training items' texts).
* ``words``: the same feature over whole words (``Priors(lexical_units="words")``).
* ``baseline``: the ``tfidf`` baseline's feature (the context items' titles against each
  candidate's title, brand and category path).

Writes ``lexical_choice.json`` and ``lexical_choice.md`` under ``--out`` and prints the table.

Example:
    python benchmarks/lexical_choice.py --dataset beauty --out benchmarks/results/lexical-choice
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from coldstart_peft.backbone import load_tokenizer
from coldstart_peft.data import load_dataset, make_split, training_groups
from coldstart_peft.evaluation.baselines import CooccurrenceBaseline, PopularityBaseline, TfidfBaseline
from coldstart_peft.evaluation.ranking import metrics_from_scores
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.priors import LEXICAL_UNITS, Priors
from coldstart_peft.provenance import git_revision

POPULARITY = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)
COOCCURRENCE = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
MD_HEADING = "# Lexical feature of the priors"


def lexical_arms(split, cases, base_model: str | None) -> dict[str, list[np.ndarray]]:
    """Per arm, one lexical score per candidate of each case."""
    groups = training_groups(split, n_negatives=1, seed=0)
    tokenizer = load_tokenizer(base_model)
    arms: dict[str, list[np.ndarray]] = {}
    for units in LEXICAL_UNITS:
        priors = Priors(("lexical",), tokenizer=tokenizer, lexical_units=units)
        priors.fit(groups)
        arms[units] = [priors.pairs([c.user_text] * len(c.candidate_texts), c.candidate_texts).numpy()[:, 0] for c in cases]
    baseline = TfidfBaseline().fit(split)
    arms["baseline"] = [baseline.score_case(case) for case in cases]
    return arms


def _ndcg(lexical, popularity, cooccurrence, weights, cases) -> float:
    lam, mu = weights
    scores = [text + lam * pop + mu * co for text, pop, co in zip(lexical, popularity, cooccurrence)]
    return float(metrics_from_scores(scores, cases, ks=(10,))["ndcg@10"].mean())


def cross_halves(lexical, popularity, cooccurrence, cases) -> dict:
    """λ, μ chosen on each half of the users and scored on the other."""
    half = len(cases) // 2
    halves = (slice(0, half), slice(half, len(cases)))
    out = {}
    for name, (fit, score) in (("first->second", halves), ("second->first", halves[::-1])):
        args = [lexical[fit], popularity[fit], cooccurrence[fit]]
        best = max(itertools.product(POPULARITY, COOCCURRENCE), key=lambda w: _ndcg(*args, w, cases[fit]))
        out[name] = {"weights": list(best), "ndcg@10": _ndcg(lexical[score], popularity[score], cooccurrence[score], best, cases[score])}
    out["mean"] = float(np.mean([out[k]["ndcg@10"] for k in ("first->second", "second->first")]))
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison, write ``lexical_choice.json`` and ``.md`` under ``--out``, and return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--split", default="cold-user", choices=["cold-user", "cold-item", "cold-domain"])
    parser.add_argument("--valid-users", type=int, default=1000, help="validation users, cut into two halves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-model", default=None, help="whose wordpieces the priors use (default: the bundled MiniLM)")
    parser.add_argument("--out", default="runs/lexical-choice")
    args = parser.parse_args(argv)
    out = Path(args.out)
    check_report_files(out, "lexical_choice")  # before the work, so a refused --out costs nothing
    split = make_split(load_dataset(args.dataset), args.split, seed=args.seed, max_test_users=args.valid_users)
    cases = split.ranking_cases("valid")[: args.valid_users]
    popularity, cooccurrence = PopularityBaseline().fit(split), CooccurrenceBaseline().fit(split)
    pop = [np.log1p(popularity.score_case(c)) for c in cases]
    co = [cooccurrence.score_case(c) for c in cases]
    arms = {name: cross_halves(lexical, pop, co, cases) for name, lexical in lexical_arms(split, cases, args.base_model).items()}
    report = {"dataset": args.dataset, "split": args.split, "seed": args.seed, "valid_users": len(cases),
              "machine": hardware_facts(), "code": git_revision(__file__), "arms": arms}  # fmt: skip
    write_report_files(out, "lexical_choice", report, markdown(report))
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The arms as a markdown table, best mean first."""
    code = report["code"]
    lines = [f"{MD_HEADING}: {report['dataset']} {report['split']}, {report['valid_users']} validation users",
             "", f"lexical + λ·popularity + μ·co-occurrence; λ, μ chosen on one half of the validation users and "
             f"scored on the other. Commit {code['commit']}{' (dirty)' if code['dirty'] else ''}; "
             f"{report['machine']['cpu_model']} ({report['machine']['cpu_capability']}). NDCG@10:", "",
             "| lexical feature | first → second half | second → first half | mean | (λ, μ) chosen |", "|---|---|---|---|---|"]  # fmt: skip
    for name, arm in sorted(report["arms"].items(), key=lambda kv: -kv[1]["mean"]):
        forward, backward = arm["first->second"], arm["second->first"]
        lines.append(f"| {name} | {forward['ndcg@10']:.4f} | {backward['ndcg@10']:.4f} | {arm['mean']:.4f} | "
                     f"{tuple(forward['weights'])}, {tuple(backward['weights'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
