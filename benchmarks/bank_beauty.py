"""Per-domain adapters on Beauty: cold-user NDCG@10 per domain of domain adapter vs global vs base.

Trains a global adapter and one adapter per Beauty domain (specialised from the global one)
with :func:`coldstart_peft.bank.train_per_domain`, loads them with ``AdapterBank``, and scores
each domain's cold-user test cases three ways: the domain's adapter, the global adapter, and
the bare base model (the scorer's zero-shot head). Budgets are small on purpose (CPU); the
script records them next to the numbers.

Example:
    python benchmarks/bank_beauty.py --out runs/bank-beauty
    python benchmarks/bank_beauty.py --global-groups 2000 --domain-groups 800 --test-users 1000 --out runs/b
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from coldstart_peft.bank import AdapterBank, FallbackConfig, PerDomainSettings, train_per_domain
from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.recipes import FitSettings
from coldstart_peft.training import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bank-beauty")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--scorer", default="bi-encoder")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--global-groups", type=int, default=512)
    parser.add_argument("--domain-groups", type=int, default=256)
    parser.add_argument("--min-groups", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--test-users", type=int, default=500)
    parser.add_argument("--valid-users", type=int, default=50)
    args = parser.parse_args()
    out = Path(args.out)
    check_report_files(out, "ndcg")
    out.mkdir(parents=True, exist_ok=True)  # the bank is trained into it first
    started = time.perf_counter()
    split = cold_user_split(load_dataset("beauty"), k=3, n_negatives=99, max_test_users=args.test_users,
                            max_valid_users=6 * args.valid_users)  # fmt: skip
    settings = FitSettings(method=args.method, scorer=args.scorer, scorer_config={"max_length": args.max_length},
                           max_groups=args.global_groups, valid_users=args.valid_users, valid_candidates=20)  # fmt: skip
    per_domain = PerDomainSettings(domain_adapters=True, min_calibration_users=1, from_global=True, min_groups=args.min_groups,
                                   max_groups_per_domain=args.domain_groups)  # fmt: skip
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, progress=False, seed=0)
    manifest = train_per_domain(split, out / "bank", settings, per_domain, config)
    train_seconds = time.perf_counter() - started

    bank = AdapterBank.load(out / "bank", fallback=FallbackConfig(chain=("global",)))
    cases = split.ranking_cases("test")
    rows = []
    for domain in split.dataset.domains:
        subset = [c for c in cases if c.domain == domain]
        if not subset:
            continue
        row = {"domain": domain, "n": len(subset)}
        for label, route in (("adapter", domain), ("global", "(global)"), ("base", "(base)")):
            if route == "(base)":
                bank.fallback = FallbackConfig(chain=("base",))
            # context_ids and item_ids: the evaluator passes each case's ids, which the priors read.
            summary = evaluate_ranking(lambda u, i, r=route, context_ids=None, item_ids=None: bank.score(
                u, i, domains=r, context_ids=context_ids, item_ids=item_ids), subset, batch_size=8192)  # fmt: skip
            row[label] = summary["ndcg@10"]
        bank.fallback = FallbackConfig(chain=("global",))
        row["route"] = bank.route(domain).reason
        rows.append(row)
        print(f"{domain:22s} n={len(subset):4d} adapter {row['adapter']['mean']:.4f} global {row['global']['mean']:.4f} "
              f"base {row['base']['mean']:.4f}", flush=True)  # fmt: skip
    result = {
        "budget": vars(args), "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": torch.get_num_threads()},
        "adapters": {d["name"]: {"bytes": d.get("bytes"), "train_groups": d.get("train_groups"), "status": d["status"]}
                     for d in manifest["domains"]},
        "rows": rows,
    }  # fmt: skip
    lines = ["| domain | test users | domain adapter | global adapter | base model |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [f"{row[k]['mean']:.4f} [{row[k]['low']:.3f}, {row[k]['high']:.3f}]" for k in ("adapter", "global", "base")]
        lines.append(f"| {row['domain']} | {row['n']} | " + " | ".join(cells) + " |")
    write_report_files(out, "ndcg", result, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
