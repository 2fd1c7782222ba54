"""SASRec on the published warm-user protocol: checks benchmarks/peers/sasrec.py against the papers.

Beauty 2014 5-core, leave-one-out: every user trains on all but their last two items, the
second to last validates (early stopping), the last is the test target, ranked against 99
negatives drawn uniformly from the items the user never interacted with (the S3-Rec /
BERT4Rec protocol). Published SASRec on it: NDCG@10 0.316-0.367, HR@10 about 0.47-0.51.

Writes ``results.json`` and ``results.md`` to ``--out`` with the machine, the commit, the
epochs run and the seconds spent.

Example:
    python benchmarks/sasrec_warm.py --time-budget 720
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sasrec-warm"
PUBLISHED = {"ndcg@10": (0.316, 0.367), "hr@10": (0.47, 0.51)}
"""SASRec on this protocol in S3-Rec (CIKM 2020) and the papers that reuse its numbers."""
MD_HEADING = "# SASRec, warm users"


def leave_one_out(sequences: dict[str, list[str]], n_negatives: int, seed: int):
    """Training sequences and the validation and test cases of the leave-one-out protocol.

    Returns:
        ``(train, valid, test)``: user -> items before the last two; cases predicting the
        second to last from those; cases predicting the last from all before it.
    """
    from coldstart_peft.data.splits import sample_negatives
    from coldstart_peft.examples import RankingCase

    rng = np.random.default_rng(seed)
    pool = sorted({i for seq in sequences.values() for i in seq})
    train, valid, test = {}, [], []
    for user in sorted(sequences):
        seq = sequences[user]
        if len(seq) < 3:
            continue
        train[user] = seq[:-2]
        seen = set(seq)
        for context, target, out in ((seq[:-2], seq[-2], valid), (seq[:-1], seq[-1], test)):
            candidates = [target, *sample_negatives(rng, pool, seen, n_negatives)]
            out.append(RankingCase(user, candidates, target=0, user_id=user, candidate_ids=candidates, context_ids=context))
    return train, valid, test


def write_results(out: Path, report: dict) -> None:
    """Write results.json (replaceable on a rerun) and results.md, refusing to replace a file it did not write."""
    from coldstart_peft.outputs import write_report_files

    test, machine, code = report["test"], report["machine"], report["code"]
    rows = [f"| {name} | {test[name]['mean']:.3f} [{test[name]['low']:.3f}, {test[name]['high']:.3f}] | "
            f"{PUBLISHED[name][0]:.3f}-{PUBLISHED[name][1]:.3f} |" for name in ("ndcg@10", "hr@10")]  # fmt: skip
    training = report["training"]
    text = (f"{MD_HEADING}, {report['dataset']}\n\nLeave-one-out, {report['n_test_users']:,} users, 1 + {report['n_negatives']} uniformly "
            f"sampled negatives; test metrics with 95% bootstrap intervals. {training['epochs_run']} epochs "
            f"(best validation NDCG@10 {training['best_valid_ndcg@10']:.3f}) in {training['seconds']:.0f} s under a "
            f"{training['time_budget_s']:.0f} s budget on {machine['cpu_model']} ({machine['cpu_capability']}, "
            f"{report['threads']} torch thread(s)); commit {code.get('commit')}"
            f"{' (dirty)' if code.get('dirty') else ''}.\n\n| metric | this run | published SASRec |\n|---|---|---|\n"
            + "\n".join(rows) + "\n")  # fmt: skip
    write_report_files(out, "results", report, text)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="beauty", help="a name or path coldstart_peft.data.load_dataset reads")
    parser.add_argument("--time-budget", type=float, default=720.0, help="stop training after the epoch that passes this many seconds")
    parser.add_argument("--max-epochs", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=5, help="epochs between validation evaluations")
    parser.add_argument("--patience", type=int, default=4, help="evaluations without improvement before stopping")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (at most 2; one is faster on a busy CPU)")
    parser.add_argument("--n-negatives", type=int, default=99)
    parser.add_argument("--max-users", type=int, default=None, help="keep the first N users (smoke runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    from coldstart_peft.data import load_dataset
    from coldstart_peft.evaluation import metrics_from_scores, summarize
    from coldstart_peft.hardware import hardware_facts
    from coldstart_peft.outputs import check_report_files, check_writable_dir
    from coldstart_peft.provenance import git_revision

    if "peers" not in sys.modules:  # run as a script: the peers package sits next to it
        sys.path.insert(0, str(Path(__file__).resolve().parent))
    from peers import SASRecBaseline

    out = check_writable_dir(args.out, "--out")
    check_report_files(out, "results")
    started = time.monotonic()
    code = git_revision(ROOT)  # before training: an edit made while it runs is not this run's code
    sequences = load_dataset(args.dataset).sequences()
    if args.max_users is not None:
        sequences = {u: sequences[u] for u in sorted(sequences)[: args.max_users]}
    train, valid, test = leave_one_out(sequences, args.n_negatives, args.seed)
    sasrec = SASRecBaseline(time_budget_s=args.time_budget, max_epochs=args.max_epochs, eval_every=args.eval_every,
                            patience=args.patience, threads=args.threads, seed=args.seed)  # fmt: skip
    sasrec.train(train, valid)
    per_case = metrics_from_scores(sasrec.score_cases(test), test, ks=(10,))
    report = {
        "benchmark": "sasrec-warm", "dataset": args.dataset, "protocol": "leave-one-out, last item test, second to last valid",
        "n_test_users": len(test), "n_items": len({i for seq in sequences.values() for i in seq}),
        "n_negatives": args.n_negatives, "negatives": "uniform over items the user never interacted with",
        "config": vars(sasrec.config), "threads": args.threads, "seed": args.seed,
        "training": {"epochs_run": sasrec.epochs_run, "best_valid_ndcg@10": sasrec.best_valid_ndcg,
                     "seconds": sasrec.train_seconds, "time_budget_s": args.time_budget, "history": sasrec.history},
        "test": {k: v for k, v in summarize(per_case, seed=args.seed).items() if k in ("ndcg@10", "hr@10", "mrr")},
        "published": {k: list(v) for k, v in PUBLISHED.items()},
        "machine": hardware_facts(), "code": code, "seconds": time.monotonic() - started,
    }  # fmt: skip
    write_results(Path(out), report)
    print(json.dumps({k: report[k] for k in ("n_test_users", "test")} | {"epochs_run": sasrec.epochs_run}, indent=2))
    return report


if __name__ == "__main__":
    main()
