"""Per-domain adapters against one global adapter at equal training budget, on the same cold users.

Beauty cold users (the cpu preset's 1,000 test users and 99 uniform negatives), the default
recipe (bi-encoder + LoRA + priors, calibrated on validation users), every arm trained for the
same total number of optimizer steps:

* ``base``: the bare base model (zero-shot encoder, no training, no priors);
* ``global``: one adapter, all ``--steps`` steps, priors calibrated on all validation users;
* ``global + domain prior weights``: that adapter, each domain's prior weights recalibrated on
  its own validation users (no extra training);
* ``bank, default recipe``: what ``train_per_domain`` builds by default: one global adapter for
  all the steps, each domain with ``--fallback-users`` validation users or more getting its own
  prior weights calibrated on them, the rest served by the global adapter; routed per candidate;
* ``bank``: with ``domain_adapters``, a global adapter for ``--global-share`` of the steps, then one adapter per domain
  warm-started from it, the rest of the steps split in proportion to the domains' training
  groups, each calibrated on its domain's validation users; routed **per candidate** (each
  candidate scored by its own domain's adapter) and, as a second row, **by context** (every
  candidate by the adapter of the domain of the user's most recent click);
* ``bank + fallback``: that bank, with domains under ``--fallback-users`` validation users served
  by its global adapter.

Test users are scored once per arm. Results: <out>/bank_budget.json and <out>/bank_budget.md
(per-domain NDCG@10 with 95% bootstrap intervals and the overall row).

Example:
    python benchmarks/bank_budget.py --steps 120 --out benchmarks/results/bank-budget
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from coldstart_peft import build_scorer
from coldstart_peft.bank import AdapterBank, FallbackConfig, PerDomainSettings, train_per_domain
from coldstart_peft.calibration import calibrate_priors
from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.evaluation.ranking import score_cases, segment_report
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings, fit_on_split
from coldstart_peft.training import TrainConfig


def last_click_scorer(bank: AdapterBank, domain_of: dict[str, str]):
    """A pair scorer over ``bank`` that routes every candidate by the domain of the user's last click."""

    def score(users, items, context_ids=None, item_ids=None):
        domains = [domain_of[c[-1]] if c else None for c in context_ids]
        return bank.score(users, items, domains=domains, batch_size=128, context_ids=context_ids, item_ids=item_ids)

    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps of every arm in all")
    parser.add_argument("--global-share", type=float, default=0.5)
    parser.add_argument("--min-groups", type=int, default=200, help="a domain with fewer training groups gets no adapter")
    parser.add_argument("--fallback-users", type=int, default=50,
                        help="domains with fewer validation users are served by the global adapter (default: 50)")
    parser.add_argument("--test-users", type=int, default=1000)
    parser.add_argument("--calibration-users", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bank-budget")
    args = parser.parse_args()
    out = Path(args.out)
    check_report_files(out, "bank_budget")
    out.mkdir(parents=True, exist_ok=True)  # the banks are trained into it first
    started = time.perf_counter()
    dataset = load_dataset("beauty")
    split = cold_user_split(dataset, k=3, n_negatives=99, seed=args.seed, max_test_users=args.test_users)
    cases = split.ranking_cases("test")
    valid = split.ranking_cases("valid")
    domain_of = {i: item.domain for i, item in dataset.items.items()}
    settings = FitSettings(calibration_users=args.calibration_users)
    config = TrainConfig(epochs=1, max_steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=False)
    scores: dict[str, list[np.ndarray]] = {}
    facts: dict[str, dict] = {}

    zero = build_scorer("bi-encoder")
    zero.eval()
    scores["base"] = score_cases(zero.score, cases)

    scorer, result = fit_on_split(split, settings, config, test_cases=cases)
    scores["global"] = result.test_scores
    facts["global"] = {"steps": result.steps, "train_seconds": round(result.seconds, 1), "calibration": result.calibration}
    print(f"global: {result.steps} steps", flush=True)

    text = score_cases(scorer.score_texts, cases)
    flat = [(c, j) for c in cases for j in range(len(c.candidate_texts))]
    features = scorer.priors.pairs([c.user_text for c, _ in flat], [c.candidate_texts[j] for c, j in flat],
                                   [c.context_ids for c, _ in flat], [c.candidate_ids[j] for c, j in flat])  # fmt: skip
    weights = {}
    with scorer.frozen():  # one embedding of each validation text for all six calibrations
        for domain in dataset.domains:
            mine = [c for c in valid if c.domain == domain][: args.calibration_users]
            if mine:
                weights[domain] = calibrate_priors(scorer, mine)
    default = np.array(list(result.calibration.values()))
    rows, offset = [], 0
    for case, model in zip(cases, text):
        n = len(case.candidate_texts)
        w = np.array([list(weights.get(domain_of[i], {}).values()) or default for i in case.candidate_ids])
        rows.append(model + (features[offset : offset + n].numpy() * w).sum(1))
        offset += n
    scores["global + domain prior weights"] = rows
    facts["global + domain prior weights"] = {"steps": result.steps, "weights": weights}

    default_bank = PerDomainSettings(total_steps=args.steps, compare_global=False, min_calibration_users=args.fallback_users)
    manifest = train_per_domain(split, out / "bank-default", settings, default_bank, config)
    facts["bank, default recipe"] = {"steps": manifest["global"].get("steps"), "domains": {
        d["name"]: {k: d.get(k) for k in ("status", "calibration_users", "calibration", "reason")} for d in manifest["domains"]}}  # fmt: skip
    bank = AdapterBank.load(out / "bank-default", fallback=FallbackConfig(chain=("global",)))
    scores["bank, default recipe (per-candidate domain)"] = score_cases(
        bank.pair_scorer(domain_of), cases, batch_size=10**6)  # fmt: skip
    print("bank, default recipe: scored", flush=True)

    per_domain = PerDomainSettings(domain_adapters=True, min_calibration_users=1, min_groups=args.min_groups,
                                   total_steps=args.steps, global_share=args.global_share, compare_global=False)  # fmt: skip
    manifest = train_per_domain(split, out / "bank", settings, per_domain, config)
    steps = (manifest["global"] or {}).get("steps", 0) + sum(d.get("steps", 0) for d in manifest["domains"])
    facts["bank"] = {"steps": steps, "global_steps": manifest["global"].get("steps"),
                     "domains": {d["name"]: {k: d.get(k) for k in ("status", "steps", "train_groups", "available_groups",
                                                                     "calibration")} for d in manifest["domains"]}}  # fmt: skip
    print(f"bank: {steps} steps in all", flush=True)
    bank = AdapterBank.load(out / "bank", fallback=FallbackConfig(chain=("global",)))
    scores["bank (per-candidate domain)"] = score_cases(bank.pair_scorer(domain_of), cases, batch_size=10**6)
    scores["bank (domain of the last click)"] = score_cases(last_click_scorer(bank, domain_of), cases, batch_size=10**6)
    small = [d["name"] for d in manifest["domains"] if d.get("calibration_users", 0) < args.fallback_users]
    for domain in small:
        if domain in bank:
            bank.remove(domain)
    scores[f"bank + fallback (< {args.fallback_users} validation users: global)"] = score_cases(
        bank.pair_scorer(domain_of), cases, batch_size=10**6)
    facts["bank + fallback"] = {"global_for": small}

    reports = {name: segment_report(s, cases, seed=args.seed) for name, s in scores.items()}
    result_file = {"dataset": "beauty", "split": "cold-user", "n_test_users": len(cases), "steps": args.steps,
                   "global_share": args.global_share, "split_fingerprint": split.fingerprint(), "facts": facts,
                   "reports": reports, "hardware": hardware_facts(), "code": git_revision(__file__),
                   "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    groups = ["overall", *sorted(k for k in reports["base"] if k.startswith("domain="))]
    lines = [f"# Per-domain adapters vs one global adapter, {args.steps} optimizer steps each, Beauty cold users", "",
             "NDCG@10 [95% CI]; n = test users whose positive is in the domain.", "",
             "| arm | " + " | ".join(f"{g.removeprefix('domain=')} (n={int(reports['base'][g]['n']['mean'])})" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]  # fmt: skip
    for name, report in reports.items():
        cells = [f"{report[g]['ndcg@10']['mean']:.3f} [{report[g]['ndcg@10']['low']:.3f}, {report[g]['ndcg@10']['high']:.3f}]"
                 for g in groups]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    hw = result_file["hardware"]
    lines += ["", f"Machine: {hw.get('cpu_model')} ({hw.get('cpu_capability')}); commit {result_file['code'].get('commit')}"
              f"{' (dirty)' if result_file['code'].get('dirty') else ''}; {result_file['seconds'] / 60:.0f} min.",
              f"Steps: {json.dumps({k: v.get('steps') for k, v in facts.items() if 'steps' in v})}"]  # fmt: skip
    text_out = "\n".join(lines) + "\n"
    write_report_files(out, "bank_budget", result_file, text_out)
    print(text_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
