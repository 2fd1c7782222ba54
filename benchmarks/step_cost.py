"""What the default recipe adds to a training step: a full step against a bare forward + backward on the same tokens.

The full step is what the engine runs per batch of Beauty cold-user training groups with the
default recipe (bi-encoder + LoRA + the default priors, logQ
correction): ``training_batch`` (tokenization and the priors' feature grid), ``compute_loss``
and ``backward``. The bare step is the same LoRA MiniLM run forward and backward on exactly the
token tensors that ``collate`` produced, with a sum of the pooled embeddings as its loss. The
ratio full / bare is the scorer's overhead. Steps alternate (full, bare) over the same batches,
and each figure is the median over ``--batches`` batches after one untimed warm-up batch.

Writes ``step_cost.json`` and ``step_cost.md`` under ``--out`` and prints the table.

Example:
    python benchmarks/step_cost.py --out benchmarks/results/step-cost
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from coldstart_peft import apply_method, build_scorer, make_method
from coldstart_peft.data import cold_user_split, load_dataset
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.priors import Priors
from coldstart_peft.hardware import autocast, hardware_facts, resolve_precision
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings


def _bare_step(scorer, batch) -> None:
    """Forward + backward of the backbone alone over every token tensor of the batch."""
    inputs = {}
    for key, value in batch.items():
        side, _, name = key.rpartition(":")
        if name in ("input_ids", "attention_mask", "token_type_ids"):
            inputs.setdefault(side, {})[name] = value
    total = 0.0
    for tensors in inputs.values():
        total = total + scorer.backbone(**tensors).last_hidden_state.float().mean(1).sum()
    total.backward()


def _full_step(scorer, groups) -> None:
    scorer(scorer.training_batch(groups)).backward()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--batch-size", type=int, default=32, help="training groups per batch (the recipe's default)")
    parser.add_argument("--batches", type=int, default=8, help="timed batches (default: 8)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out", type=Path, default=Path("runs/step-cost"))
    args = parser.parse_args(argv)
    check_report_files(args.out, "step_cost")
    torch.manual_seed(0)
    split = cold_user_split(load_dataset(args.dataset), k=3, n_negatives=99, seed=0, max_test_users=1000)
    settings = FitSettings()
    groups = training_groups(split, n_negatives=1, seed=0)
    scorer = build_scorer(settings.scorer, None, settings.scorer_config)
    scorer.attach_priors(Priors(settings.prior_features()))
    apply_method(scorer, make_method(settings.method))
    scorer.priors.fit(groups)
    scorer.fit_statistics(groups)
    scorer.train()
    precision = resolve_precision(args.precision, "cpu")
    batches = [groups[i * args.batch_size : (i + 1) * args.batch_size] for i in range(args.batches + 1)]
    full, bare = [], []
    for index, batch_groups in enumerate(batches):
        started = time.perf_counter()
        with autocast(precision.name, torch.device("cpu")):
            _full_step(scorer, batch_groups)
        middle = time.perf_counter()
        tokens = scorer.collate(batch_groups)  # untimed: the bare step gets the tokens for free
        resumed = time.perf_counter()
        with autocast(precision.name, torch.device("cpu")):
            _bare_step(scorer, tokens)
        ended = time.perf_counter()
        scorer.zero_grad()
        if index:  # the first batch pays for kernel selection and caches
            full.append(middle - started)
            bare.append(ended - resumed)
    report = {
        "machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "batch_size": args.batch_size,
        "batches": args.batches, "precision": precision.name, "precision_reason": precision.reason,
        "full_step_s": statistics.median(full), "bare_step_s": statistics.median(bare),
        "ratio": statistics.median(full) / statistics.median(bare), "full_all": full, "bare_all": bare,
    }  # fmt: skip
    machine = report["machine"]
    table = (
        f"# Default-recipe step vs bare forward + backward, {args.dataset}, {machine['cpu_model']} "
        f"({machine['cpu_capability']})\n\n"
        f"{args.batch_size} groups per batch, precision {precision.name} ({precision.reason}), medians of "
        f"{args.batches} batches; commit {report['code']['commit']}{' (dirty tree)' if report['code']['dirty'] else ''}.\n\n"
        "| step | seconds | ratio to bare |\n|---|---:|---:|\n"
        f"| full (collate + priors + loss + backward) | {report['full_step_s']:.3f} | {report['ratio']:.2f}x |\n"
        f"| bare forward + backward, same tokens | {report['bare_step_s']:.3f} | 1.00x |\n"
    )
    write_report_files(args.out, "step_cost", report, table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
