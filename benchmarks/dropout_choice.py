"""LoRA dropout on or off at equal training time: the default recipe's one dropout decision, made on validation users.

peft's LoRA applies its dropout separately to the input of every adapted projection (query,
key and value: three masks per layer), which costs about a fifth of a CPU training step. This
script trains the default recipe (bi-encoder + LoRA + priors + calibration) once per dropout
value for the same ``--seconds`` on Beauty cold users and scores each on validation users that
calibration never saw (``--calibration-users`` onwards), never on test users. The library's
default is whichever wins.

Writes ``dropout_choice.json`` and ``dropout_choice.md`` under ``--out`` and prints the table.

Example:
    python benchmarks/dropout_choice.py --seconds 150 --out benchmarks/results/dropout-choice
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from coldstart_peft import TrainConfig
from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.evaluation.metrics import summarize
from coldstart_peft.evaluation.ranking import metrics_from_scores
from coldstart_peft.hardware import hardware_facts, resolve_precision
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings, fit_on_split


def run_arm(split, dropout: float, args) -> dict:
    """Train the default recipe with LoRA ``dropout`` for ``args.seconds``; score held-out validation users."""
    held_out = split.ranking_cases("valid")[args.calibration_users :]
    settings = FitSettings(method_config={"dropout": dropout}, calibration_users=args.calibration_users)
    config = TrainConfig(epochs=1, batch_size=32, time_budget_s=args.seconds, seed=args.seed, progress=False,
                         eval_every=10_000)  # fmt: skip
    started = time.perf_counter()
    _, result = fit_on_split(split, settings, config, test_cases=held_out)
    summary = summarize(metrics_from_scores(result.test_scores, held_out), seed=args.seed)
    return {
        "dropout": dropout, "steps": result.steps, "train_seconds": result.seconds,
        "train_pairs_per_s": result.pairs_per_second, "precision": result.precision,
        "wall_seconds": time.perf_counter() - started, "held_out_users": len(held_out),
        "metrics": {k: summary[k] for k in ("ndcg@10", "hr@10", "mrr")},
    }  # fmt: skip


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# LoRA dropout at equal time ({report['seconds']:.0f} s per arm), Beauty cold users, "
        f"{machine['cpu_model']} ({machine['cpu_capability']})",
        "",
        f"Default recipe, seed {report['seed']}, precision {report['precision']}; scored on "
        f"{report['arms'][0]['held_out_users']} validation users calibration never saw. Commit "
        f"{report['code']['commit']}{' (dirty tree)' if report['code']['dirty'] else ''}.",
        "",
        "| LoRA dropout | steps | train pairs/s | NDCG@10 [95% CI] | HR@10 | MRR |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for arm in report["arms"]:
        m = arm["metrics"]
        lines.append(
            f"| {arm['dropout']} | {arm['steps']} | {arm['train_pairs_per_s']:.1f} | "
            f"{m['ndcg@10']['mean']:.4f} [{m['ndcg@10']['low']:.4f}, {m['ndcg@10']['high']:.4f}] | "
            f"{m['hr@10']['mean']:.4f} | {m['mrr']['mean']:.4f} |"
        )
    lines += ["", f"Winner on validation: dropout {report['winner']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--seconds", type=float, default=150.0, help="training time per arm (default: 150)")
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.05, 0.0], help="LoRA dropout values to compare")
    parser.add_argument("--calibration-users", type=int, default=500, help="validation users used by calibration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/dropout-choice"))
    args = parser.parse_args(argv)
    split = cold_user_split(load_dataset(args.dataset), k=3, n_negatives=99, seed=args.seed, max_test_users=1000)
    arms = [run_arm(split, dropout, args) for dropout in args.dropouts]
    winner = max(arms, key=lambda arm: arm["metrics"]["ndcg@10"]["mean"])["dropout"]
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "seconds": args.seconds,
              "seed": args.seed, "precision": resolve_precision("auto").name, "arms": arms, "winner": winner}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dropout_choice.json").write_text(json.dumps(report, indent=2))
    (args.out / "dropout_choice.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
