"""Probe, not a library feature: does the encoder gain from reading what the user's items are bought with?

The ``neighbour_text`` prior reads the co-occurrence neighbours of a user's context items as
words, and its no-LM twin ``hybrid+nbr`` matched the fine-tuned encoder on Beauty's cold items.
This probe asks whether the encoder itself can use the same signal better than TF-IDF does: each
user text gains the titles of the ``--neighbours`` items training users bought most often next
to the user's context items, so the encoder reads them and matches them with the candidate's
text. Measured like ``lever_choice.py``: the default recipe, ``--seconds`` of training per arm,
scored on the validation users calibration never saw; the arm with 0 neighbours is the control.

The neighbours come from the priors' co-occurrence tables fitted on the training groups. A
training group's own positive is never listed in its text: at scoring time a cold item is never
anyone's neighbour, and a listed positive would teach the encoder to copy.

Example:
    python benchmarks/probes/neighbour_history.py --split cold-item --neighbours 0 --neighbours 3 \\
        --out benchmarks/results/probe-neighbour-history-cold-item
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lever_choice  # noqa: E402

from coldstart_peft import recipes  # noqa: E402
from coldstart_peft.data import load_dataset  # noqa: E402
from coldstart_peft.hardware import hardware_facts, resolve_precision  # noqa: E402
from coldstart_peft.outputs import check_report_files, write_report_files  # noqa: E402
from coldstart_peft.priors import PriorTables, id_key  # noqa: E402
from coldstart_peft.priors.tables import positive_of  # noqa: E402
from coldstart_peft.provenance import git_revision  # noqa: E402

LABEL = " | Often bought with them: "
_CHUNK = 4096  # contexts whose neighbour rows are expanded at once


def top_neighbours(tables: PriorTables, contexts, positives, n: int) -> list[list[int]]:
    """Per user, the key indices of the ``n`` items most co-bought with its context, best first.

    Args:
        tables: fitted prior tables.
        contexts: context item ids per user.
        positives: per user, a training group's own positive (never listed), or ``None``.
        n: neighbours per user.
    """
    out: list[list[int]] = []
    for start in range(0, len(contexts), _CHUNK):
        block = tables.neighbours(contexts[start : start + _CHUNK])[:, : len(tables.keys)].tocsr()
        for row in range(block.shape[0]):
            context, positive = contexts[start + row], positives[start + row]
            banned = set(tables.columns([*context, *([positive] if positive is not None else [])]).tolist())
            span = slice(block.indptr[row], block.indptr[row + 1])
            cols, counts = block.indices[span], block.data[span]
            keep = [int(cols[j]) for j in np.argsort(-counts, kind="stable") if cols[j] not in banned]
            out.append(keep[:n])
    return out


def patch(split, n: int, seed: int) -> None:
    """Make the next ``fit_on_split`` on ``split`` read user texts that list each user's top ``n`` neighbours.

    The neighbours come from tables fitted on the default recipe's training groups, the ones the
    run itself trains on, so validation users see only what training users bought.
    """
    original_groups, original_cases = recipes.recipe_groups, type(split).ranking_cases
    tables = PriorTables.fit(original_groups(split, recipes.FitSettings(), seed), None, "words")
    row = {k: i for i, k in enumerate(tables.keys.tolist())}
    titles = {row[id_key(i)]: item.title for i, item in split.dataset.items.items() if id_key(i) in row}

    def expand(texts, contexts, positives):
        if n == 0:
            return list(texts)
        picks = top_neighbours(tables, contexts, positives, n)
        return [text + LABEL + "; ".join(titles[k] for k in keys if k in titles) if keys else text
                for text, keys in zip(texts, picks)]  # fmt: skip

    def groups_with_neighbours(*args, **kwargs):
        groups = original_groups(*args, **kwargs)
        texts = expand([g.user_text for g in groups], [list(g.context_ids or ()) for g in groups],
                       [positive_of(g) for g in groups])  # fmt: skip
        return [dataclasses.replace(g, user_text=t) for g, t in zip(groups, texts)]

    def cases_with_neighbours(self, which="test", serializer=None):
        cases = original_cases(self, which, serializer)
        texts = expand([c.user_text for c in cases], [list(c.context_ids or ()) for c in cases], [None] * len(cases))
        return [dataclasses.replace(c, user_text=t) for c, t in zip(cases, texts)]

    recipes.recipe_groups = groups_with_neighbours
    split.ranking_cases = cases_with_neighbours.__get__(split)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lever_choice.add_validation_options(parser, split="cold-item")
    parser.add_argument("--neighbours", type=int, action="append", required=True, help="titles appended per user (repeatable; 0 is the control)")
    parser.add_argument("--out", type=Path, default=Path("runs/probe-neighbour-history"))
    args = parser.parse_args(argv)
    if any(n < 0 for n in args.neighbours):
        parser.error("--neighbours counts titles per user: 0 or more")
    check_report_files(args.out, "neighbour_history")
    dataset = load_dataset(args.dataset)
    arms = []
    for n in args.neighbours:
        # A fresh split per arm, so each arm's patch wraps the split's own ranking_cases.
        split = lever_choice.validation_split(dataset, args.split, args.seed)
        original = recipes.recipe_groups
        patch(split, n, args.seed)
        try:
            print(f"arm neighbours={n}: training for {args.seconds:.0f} s ...", flush=True)
            arm = lever_choice.run_arm(split, f"neighbours={n}", {}, args)
        finally:
            recipes.recipe_groups = original
        arm["neighbours"] = n
        arms.append(arm)
        print(f"arm neighbours={n}: {arm['steps']} steps, validation NDCG@10 {arm['metrics']['ndcg@10']['mean']:.4f}", flush=True)
    report = {"machine": hardware_facts(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split,
              "seconds": args.seconds, "seed": args.seed, "precision": resolve_precision("auto").name, "arms": arms,
              "winner": max(arms, key=lambda a: a["metrics"]["ndcg@10"]["mean"])["arm"]}  # fmt: skip
    machine = report["machine"]
    lines = [f"# Probe: neighbour titles in the user text ({args.seconds:.0f} s per arm), {args.dataset} {args.split}, "
             f"{machine['cpu_model']} ({machine['cpu_capability']})", "",
             f"Default recipe, each user text listing its top co-bought items' titles; {lever_choice.validation_line(report)}", "",
             "| neighbours | steps | NDCG@10 [95% CI] | HR@10 | MRR |", "|---:|---:|---|---:|---:|"]  # fmt: skip
    for arm in arms:
        m = arm["metrics"]
        lines.append(f"| {arm['neighbours']} | {arm['steps']} | {m['ndcg@10']['mean']:.4f} [{m['ndcg@10']['low']:.4f}, "
                     f"{m['ndcg@10']['high']:.4f}] | {m['hr@10']['mean']:.4f} | {m['mrr']['mean']:.4f} |")  # fmt: skip
    write_report_files(args.out, "neighbour_history", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
