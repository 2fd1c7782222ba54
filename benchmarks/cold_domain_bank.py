"""A domain with no training data: the bank's weighted merge of its nearest domains vs its global adapter.

Beauty's ``cold-domain`` split holds one category out of training (``--domain``; default the
largest, Skin Care) and tests users on their first item in it, against 99 negatives from the
same category. A bank is trained on the other domains with the default recipe at a fixed total
budget (``--steps``: a global adapter for ``--global-share`` of them, then per-domain adapters
warm-started from it), and the held-out category's test users are scored once by each arm:

* ``base``: the bare base model (zero-shot encoder, no training, no priors);
* ``global``: the bank's global adapter (fallback chain ``global``);
* ``nearest k``: peft's ``add_weighted_adapter`` merge of the ``k`` trained domains whose names
  embed closest to the held-out one (fallback chain ``nearest``), for each ``--nearest-k``.

Every held-out item is cold, so popularity and co-occurrence add nothing here; only the text
and the lexical prior can rank. Results: <out>/cold_domain_bank.json and .md.

Example:
    python benchmarks/cold_domain_bank.py --steps 40 --out benchmarks/results/cold-domain-bank
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from coldstart_peft import build_scorer
from coldstart_peft.bank import AdapterBank, FallbackConfig, PerDomainSettings, train_per_domain
from coldstart_peft.data import cold_domain_split, load_dataset
from coldstart_peft.evaluation.ranking import score_cases, segment_report
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings
from coldstart_peft.training import TrainConfig


def routed(bank: AdapterBank, domain: str):
    """A pair scorer that serves every pair as ``domain`` through the bank's fallback chain."""

    def score(users, items, context_ids=None, item_ids=None):
        return bank.score(users, items, domains=domain, batch_size=128, context_ids=context_ids, item_ids=item_ids)

    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default=None, help="the held-out category (default: the largest)")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps of the whole bank")
    parser.add_argument("--global-share", type=float, default=0.5)
    parser.add_argument("--nearest-k", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--test-users", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/cold-domain-bank")
    args = parser.parse_args()
    out = Path(args.out)
    check_report_files(out, "cold_domain_bank")
    out.mkdir(parents=True, exist_ok=True)  # the bank is trained into it first
    started = time.perf_counter()
    dataset = load_dataset("beauty")
    split = cold_domain_split(dataset, domain=args.domain, k=3, n_negatives=99, seed=args.seed, max_test_users=args.test_users)
    held = split.config["domain"]
    cases = split.ranking_cases("test")
    print(f"{held} held out: {len(cases)} test users", flush=True)

    scores = {}
    zero = build_scorer("bi-encoder")
    zero.eval()
    scores["base"] = score_cases(zero.score, cases)

    config = TrainConfig(epochs=1, max_steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=False)
    per_domain = PerDomainSettings(domain_adapters=True, min_calibration_users=1, total_steps=args.steps,
                                   global_share=args.global_share, compare_global=False)  # fmt: skip
    manifest = train_per_domain(split, out / "bank", FitSettings(), per_domain, config)
    trained = [d["name"] for d in manifest["domains"] if d.get("status") == "trained"]
    steps = (manifest["global"] or {}).get("steps", 0) + sum(d.get("steps", 0) for d in manifest["domains"])
    print(f"bank: {steps} steps; domains {trained}", flush=True)

    bank = AdapterBank.load(out / "bank", fallback=FallbackConfig(chain=("global",)))
    assert held not in bank, f"{held} was trained on; the split did not hold it out"
    scores["global"] = score_cases(routed(bank, held), cases, batch_size=10**6)
    routes = {"global": bank.route(held)}
    for k in args.nearest_k:
        bank = AdapterBank.load(out / "bank", fallback=FallbackConfig(chain=("nearest",), nearest_k=k))
        routes[f"nearest {k}"] = bank.route(held)
        scores[f"nearest {k}"] = score_cases(routed(bank, held), cases, batch_size=10**6)

    reports = {name: segment_report(s, cases, seed=args.seed)["overall"] for name, s in scores.items()}
    result = {"dataset": "beauty", "split": "cold-domain", "held_out": held, "n_test_users": len(cases),
              "steps": steps, "trained_domains": trained, "split_fingerprint": split.fingerprint(),
              "routes": {name: {"key": r.key, "reason": r.reason, "parts": list(r.parts)} for name, r in routes.items()},
              "reports": reports, "hardware": hardware_facts(), "code": git_revision(__file__),
              "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    hw, code = result["hardware"], result["code"]
    lines = [f"# {held} held out of training ({len(cases)} test users, 99 same-category negatives): "
             f"weighted merge of the nearest domains vs the global adapter", "",
             f"Bank: default recipe, {steps} optimizer steps in all, trained on {', '.join(trained)}.", "",
             "| arm | served by | NDCG@10 [95% CI] | HR@10 | MRR |", "|---|---|---|---:|---:|"]  # fmt: skip
    for name, report in reports.items():
        route = routes.get(name)
        served = "no adapter" if route is None else (
            ", ".join(f"{d} {w:.2f}" for d, w in route.parts) if route.parts else route.reason)  # fmt: skip
        n = report["ndcg@10"]
        lines.append(f"| {name} | {served} | {n['mean']:.3f} [{n['low']:.3f}, {n['high']:.3f}] | "
                     f"{report['hr@10']['mean']:.3f} | {report['mrr']['mean']:.3f} |")  # fmt: skip
    lines += ["", f"Machine: {hw.get('cpu_model')} ({hw.get('cpu_capability')}); commit {code.get('commit')}"
              f"{' (dirty)' if code.get('dirty') else ''}; {result['seconds'] / 60:.0f} min."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    write_report_files(out, "cold_domain_bank", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
