"""``coldstart-peft demo``: train a LoRA adapter on a generated shop, compare with popularity.

Runs offline on a fresh machine: the world is generated from a seed, the backbone ships with
the package. It prints cold-user metrics for popularity, the backbone without fine-tuning,
and the fine-tuned adapter, then where the adapter was saved and how big it is.
"""

from __future__ import annotations

from pathlib import Path

from coldstart_peft.artifact import adapter_bytes, check_replaceable, save_adapter
from coldstart_peft.cli.options import add_prior_arguments
from coldstart_peft.cli.table import print_table
from coldstart_peft.data.cold_start import cold_user_split
from coldstart_peft.data.splits import is_split_file
from coldstart_peft.demo import demo_dataset
from coldstart_peft.evaluation.baselines import PopularityBaseline
from coldstart_peft.evaluation.metrics import summarize
from coldstart_peft.evaluation.ranking import metrics_from_scores, score_cases
from coldstart_peft.recipes import FitSettings, fit_on_split
from coldstart_peft.hardware import PRECISIONS
from coldstart_peft.outputs import check_output_file
from coldstart_peft.training import TrainConfig, training_summary

METRICS = ("hr@10", "ndcg@10", "mrr", "auc")


def register(commands) -> None:
    parser = commands.add_parser("demo", help="train LoRA on a generated shop and compare with popularity")
    parser.add_argument("--out", default="runs/demo", help="where the adapter and split go (default: runs/demo)")
    parser.add_argument("--method", default="lora", help="fine-tuning method (default: lora)")
    parser.add_argument("--scorer", default="bi-encoder", help="scorer (default: bi-encoder)")
    parser.add_argument("--base-model", default=None, help="HF model name or folder (default: bundled MiniLM)")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time budget (default: 120)")
    parser.add_argument("--users", type=int, default=3000, help="users in the generated shop (default: 3000)")
    parser.add_argument("--items", type=int, default=600, help="items in the generated shop (default: 600)")
    parser.add_argument("--k-context", type=int, default=3, help="clicks known per cold user (default: 3)")
    add_prior_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the world, split and training (default: 0)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="training and scoring precision: auto (bf16 only where the hardware computes it "
                             "natively and faster, else fp32), fp32, bf16, fp16 (GPU); default: auto")
    parser.set_defaults(func=run)


def _summary(scores, cases) -> dict:
    return summarize(metrics_from_scores(scores, cases))


def run(args) -> int:
    out = Path(args.out)
    check_replaceable(out / "adapter")  # before two minutes of training, not after
    check_output_file(out / "split.json", is_split_file, "--out")
    dataset = demo_dataset(n_items=args.items, n_users=args.users, seed=args.seed)
    split = cold_user_split(dataset, k=args.k_context, n_negatives=99, seed=args.seed)
    test = split.ranking_cases("test")
    print(f"demo shop: {len(dataset.items)} items, {len(dataset.sequences())} users; "
          f"cold users know {args.k_context} clicks and rank the next among 100 items ({len(test)} test users)")  # fmt: skip
    rows = {"popularity": _summary(PopularityBaseline().fit(split).score_cases(test), test)}

    settings = FitSettings(method=args.method, scorer=args.scorer, base_model=args.base_model, priors=args.priors)
    config = TrainConfig(epochs=3, batch_size=16, lr=2e-3, time_budget_s=args.seconds, seed=args.seed,
                         eval_every=50, early_stopping_patience=4, precision=args.precision)  # fmt: skip

    def zero_shot(scorer) -> None:
        scorer.precision = args.precision
        rows[f"{args.scorer} without fine-tuning"] = _summary(score_cases(scorer.score, test), test)

    scorer, result = fit_on_split(split, settings, config, before_training=zero_shot, test_cases=test)
    rows[f"{args.scorer} + {args.method}"] = _summary(result.test_scores, test)
    adapter = save_adapter(scorer, out / "adapter", metrics={k: v["mean"] for k, v in rows[f"{args.scorer} + {args.method}"].items()})
    split.save(out / "split.json")

    print()
    print_table(
        ["cold-user ranking", *METRICS],
        [[name, *(f"{summary[m]['mean']:.3f} [{summary[m]['low']:.3f}, {summary[m]['high']:.3f}]" for m in METRICS)]
         for name, summary in rows.items()],
    )  # fmt: skip
    print(
        f"\n{training_summary(args.method, result)}\n"
        f"adapter saved to {adapter} ({adapter_bytes(adapter) / 1024:.0f} KiB); "
        f"load it with coldstart_peft.load_adapter({str(adapter)!r})"
    )
    return 0
