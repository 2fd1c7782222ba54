"""Probe, not a library feature: does distilling the no-LM hybrid's ranking into the bi-encoder help?

Issue #17 lists "distilling the hybrid's ranking into the encoder" among the levers. This script
measures it on validation users, the way ``lever_choice.py`` measures every lever, without adding
a teacher to the library: it patches the bi-encoder's loss at runtime for the length of the run.
It lost on every arm measured (``benchmarks/README.md``), so the library has no such option.

The teacher is the three priors (popularity, lexical, co-occurrence) with their weights fitted
alone, before training, on the first ``--calibration-users`` validation users (the model's logit
held at 0, by :func:`~coldstart_peft.calibration.calibrate_priors`). In each training batch the
loss gains ``--weight`` times the KL divergence from the teacher's softmax over the batch's items
to the encoder's own (``scale · cos``, without priors or logQ correction), per user, duplicates
of the positive masked on both sides. Scored on the validation users calibration never saw.

Example:
    python benchmarks/probes/distill_hybrid.py --split cold-user --priors off --weight 1 \\
        --out benchmarks/results/probe-distill-cold-user-no-priors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402

from coldstart_peft import recipes  # noqa: E402
from coldstart_peft.calibration import calibrate_priors  # noqa: E402
from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.priors import Priors  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402
from coldstart_peft.scorer import Scorer  # noqa: E402
from coldstart_peft_plugins.bi_encoder import BiEncoder  # noqa: E402


TEACHER_FEATURES = ("popularity", "lexical", "cooccurrence")
"""The teacher's features: the default priors when the probe ran (``neighbour_text`` joined them later)."""


class PriorsOnly:
    """What calibrate_priors needs of a scorer, with a model logit of 0: the teacher's weights are fitted alone."""

    def __init__(self, priors: Priors):
        self.priors = priors

    def score_texts(self, user_texts, item_texts, batch_size=None):
        return np.zeros(len(item_texts), dtype=np.float32)


def patch(calibration_cases) -> dict:
    """Patch the engine so that every bi-encoder trained from here on distils the teacher at ``state["weight"]``."""
    state: dict = {"weight": 0.0, "teacher": None, "teacher_weights": None}
    train, training_batch, softmax_loss = recipes.train, Scorer.training_batch, BiEncoder._softmax_loss

    def train_with_teacher(scorer, method, groups, valid, config, accelerator=None):
        teacher = Priors(TEACHER_FEATURES, tokenizer=scorer.tokenizer)
        teacher.fit(groups)
        state["teacher_weights"] = calibrate_priors(PriorsOnly(teacher), calibration_cases)
        state["teacher"] = teacher
        return train(scorer, method, groups, valid, config, accelerator=accelerator)

    def batch_with_teacher(self, groups):
        batch = training_batch(self, groups)
        with torch.no_grad():
            batch["teacher_logits"] = state["teacher"](state["teacher"].grid(groups))
        return batch

    def loss_with_distillation(self, batch, users, items, offsets, positive):
        loss = softmax_loss(self, batch, users, items, offsets, positive)
        keys = batch["text_key"].to(users.device)
        duplicate = keys[None, :] == keys[positive][:, None]
        duplicate[torch.arange(len(positive)), positive] = False
        teacher = F.log_softmax(batch["teacher_logits"].to(users.device).masked_fill(duplicate, float("-inf")), dim=1)
        student = F.log_softmax((self.scale * users @ items.T).float().masked_fill(duplicate, float("-inf")), dim=1)
        kl = (teacher.exp() * (teacher - student)).masked_fill(duplicate, 0.0).sum(1)
        return loss + state["weight"] * kl

    recipes.train = train_with_teacher
    Scorer.training_batch = batch_with_teacher
    BiEncoder._softmax_loss = loss_with_distillation
    return state


def run(split, weight: float, args, state: dict) -> dict:
    """One arm: the default recipe (priors on or off) trained with distillation at ``weight``."""
    state["weight"] = weight
    changes = {} if args.priors == "on" else {"priors": "off"}
    arm = lever_choice.run_arm(split, f"distill {weight:g}", changes, args)
    return {**arm, "weight": weight, "teacher_weights": state["teacher_weights"]}


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        f"# Distilling the priors' ranking into the bi-encoder ({report['seconds']:.0f} s per arm), "
        f"{report.get('dataset', 'beauty')} {report['split']}, priors {report['priors']}, {machine['cpu_model']} ({machine['cpu_capability']})",
        "",
        f"Default recipe with priors {report['priors']} and the KL weight shown, {lever_choice.validation_line(report)}",
        "",
        "| KL weight | teacher weights | steps | NDCG@10 [95% CI] | HR@10 | MRR |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for arm in report["arms"]:
        m = arm["metrics"]
        teacher = ", ".join(f"{k} {v:.2f}" for k, v in arm["teacher_weights"].items())
        lines.append(f"| {arm['weight']:g} | {teacher} | {arm['steps']} | {lever_choice.interval(m['ndcg@10'])} | "
                     f"{m['hr@10']['mean']:.4f} | {m['mrr']['mean']:.4f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser)
    parser.add_argument("--priors", default="on", choices=("on", "off"), help="the student's own priors")
    parser.add_argument("--weight", type=float, action="append", required=True, help="KL weight (repeatable: one arm each)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    check_report_files(args.out, "distill_hybrid")
    split = lever_choice.validation_split(load_dataset(args.dataset), args.split, args.seed)
    state = patch(split.ranking_cases("valid")[: args.calibration_users])
    arms = []
    for weight in args.weight:
        arms.append(run(split, weight, args, state))
        print(f"weight {weight:g}: {arms[-1]['steps']} steps, validation NDCG@10 {arms[-1]['metrics']['ndcg@10']['mean']:.4f}",
              flush=True)  # fmt: skip
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split, "priors": args.priors,
              "seconds": args.seconds, "seed": args.seed, "precision": resolve_precision("auto").name, "arms": arms}  # fmt: skip
    write_report_files(args.out, "distill_hybrid", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
