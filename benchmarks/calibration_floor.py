"""How many validation users a domain needs before its own prior weights beat the global ones.

The default bank (``coldstart_peft.bank.train_per_domain``) gives each domain the global adapter
with prior weights calibrated on that domain's validation users, and serves a domain with fewer
than ``min_calibration_users`` of them with the global weights. This picks that floor on
validation users only: one default-recipe adapter is trained on Beauty cold users (``--steps``
optimizer steps, calibration skipped), each domain's validation users are split in two halves,
and for every domain

* ``global``: every candidate scored with weights calibrated on the first halves of all domains;
* ``own``: that domain's candidates scored with weights calibrated on its own first half, the
  other candidates with the global weights (a bank's per-candidate routing);

are compared on the second halves (NDCG@10 of the users whose positive is in the domain,
95% bootstrap CI). No test user is scored.

Results: <out>/calibration_floor.json and <out>/calibration_floor.md.

Example:
    python benchmarks/calibration_floor.py --steps 60 --out benchmarks/results/calibration-floor
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.evaluation.metrics import summarize
from coldstart_peft.evaluation.ranking import metrics_from_scores, score_cases
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings, fit_on_split
from coldstart_peft.training import TrainConfig


def weighted(text_scores, features, cases, weight_of) -> list[np.ndarray]:
    """Per case: the model's score plus each candidate's features times ``weight_of(candidate id)``."""
    rows, offset = [], 0
    for case, model in zip(cases, text_scores):
        n = len(case.candidate_texts)
        w = np.stack([weight_of(i) for i in case.candidate_ids])
        rows.append(model + (features[offset : offset + n] * w).sum(1))
        offset += n
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps of the adapter")
    parser.add_argument("--users", type=int, default=1000, help="validation users (and test users kept out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/calibration-floor"))
    args = parser.parse_args()
    check_report_files(args.out, "calibration_floor")
    started = time.perf_counter()
    dataset = load_dataset("beauty")
    split = cold_user_split(dataset, k=3, n_negatives=99, seed=args.seed, max_test_users=args.users)
    valid = split.ranking_cases("valid")
    domain_of = {i: item.domain for i, item in dataset.items.items()}
    config = TrainConfig(epochs=1, max_steps=args.steps, batch_size=32, seed=args.seed, progress=False)
    scorer, result = fit_on_split(split, FitSettings(calibration_users=0), config)
    print(f"trained {result.steps} steps", flush=True)

    halves: dict[str, tuple[list, list]] = {}
    for domain in dataset.domains:
        mine = [c for c in valid if c.domain == domain]
        halves[domain] = (mine[: len(mine) // 2], mine[len(mine) // 2 :])
    first = [c for a, _ in halves.values() for c in a]
    second = [c for _, b in halves.values() for c in b]
    with scorer.frozen():
        global_w = calibrate_priors(scorer, first)
        own_w = {d: calibrate_priors(scorer, a) for d, (a, _) in halves.items() if a}
        text = score_cases(scorer.score_texts, second)
    flat = [(c, j) for c in second for j in range(len(c.candidate_texts))]
    features = scorer.priors.pairs([c.user_text for c, _ in flat], [c.candidate_texts[j] for c, j in flat],
                                   [c.context_ids for c, _ in flat], [c.candidate_ids[j] for c, j in flat]).numpy()  # fmt: skip
    vector = lambda w: np.array(list(w.values()), dtype=np.float32)  # noqa: E731
    g = vector(global_w)
    base = weighted(text, features, second, lambda i: g)

    rows = []
    for domain, (a, b) in halves.items():
        if not b:
            continue
        mask = [c.domain == domain for c in second]
        mine = [c for c, m in zip(second, mask) if m]
        own = vector(own_w[domain]) if domain in own_w else g
        routed = weighted(text, features, second, lambda i, d=domain, w=own: w if domain_of[i] == d else g)
        report = {}
        for arm, scores in (("global", base), ("own", routed)):
            picked = [s for s, m in zip(scores, mask) if m]
            report[arm] = summarize(metrics_from_scores(picked, mine), seed=args.seed)["ndcg@10"]
        rows.append({"domain": domain, "calibration_users": len(a), "eval_users": len(b), "ndcg@10": report,
                     "own_weights": own_w.get(domain), "gain": report["own"]["mean"] - report["global"]["mean"]})  # fmt: skip
    rows.sort(key=lambda r: r["calibration_users"])
    helps = [r["calibration_users"] for r in rows if r["gain"] > 0]
    hurts = [r["calibration_users"] for r in rows if r["gain"] <= 0]
    report = {"dataset": "beauty", "split": "cold-user", "steps": result.steps, "global_weights": global_w, "rows": rows,
              "smallest_helped": min(helps) if helps else None, "largest_hurt": max(hurts) if hurts else None,
              "hardware": hardware_facts(), "code": git_revision(__file__),
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    lines = [f"# Own prior weights vs the global ones per domain, Beauty cold-user validation users ({result.steps}-step adapter)",
             "", "Calibrated on the first half of each domain's validation users, scored on the second half "
             "(NDCG@10 [95% CI] of the users whose positive is in the domain). No test user is scored.", "",
             "| domain | calibration users | scored users | global weights | own weights | gain |",
             "|---|---:|---:|---|---|---:|"]  # fmt: skip
    for r in rows:
        cell = lambda m: f"{m['mean']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"  # noqa: E731
        lines.append(f"| {r['domain']} | {r['calibration_users']} | {r['eval_users']} | {cell(r['ndcg@10']['global'])} | "
                     f"{cell(r['ndcg@10']['own'])} | {r['gain']:+.3f} |")  # fmt: skip
    hw = report["hardware"]
    lines += ["", f"Own weights helped from {report['smallest_helped']} calibration users; the largest domain they did not "
              f"help had {report['largest_hurt']}.",
              "", f"Machine: {hw.get('cpu_model')} ({hw.get('cpu_capability')}); commit {report['code'].get('commit')}"
              f"{' (dirty)' if report['code'].get('dirty') else ''}; {report['seconds'] / 60:.0f} min."]  # fmt: skip
    write_report_files(args.out, "calibration_floor", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
