"""TALLRec's Movie task (MovieLens-100K) with few-shot training: AUC of each scorer at 16, 64 and 256 shots.

TALLRec (Bao et al., RecSys 2023) asks an LLM "will the user like the target movie?" after
listing the movies the user liked and disliked, and reports AUC on 1,000 test prompts after
LoRA-tuning LLaMA-7B on 16, 64 or 256 training prompts: 67.24 / 67.48 / 71.98. This script
trains the library's scorers on the bundled MiniLM the same way, through the same code path as
``coldstart-peft train --pairs`` (:func:`coldstart_peft.recipes.build_for_training` and
:func:`coldstart_peft.training.train` with the few-shot step plan), and scores the test prompts.

Data (``--data``, default ``../shared/data/tallrec``): ``data/movie/{valid,test}.json.gz``
as published. TALLRec's ``train.json`` is not in the snapshot, so training prompts are rebuilt
from ``baseline/movielens/train.csv.gz`` and MovieLens' ``u.item`` titles in the exact layout of
the published prompts; :func:`check_rebuild` asserts that the same rebuild of
``baseline/movielens/valid.csv.gz`` equals ``valid.json`` row for row before anything runs.

Each prompt becomes one labeled pair: the user text is the history, the item text the target
title, the label Yes/No. ``--style`` decides how the history reads (``prompt``: TALLRec's two
lines verbatim; ``counted``: the same lists headed by how many of the ten the user liked; ``tagged``: each title
preceded by "liked" or "disliked").

Commands:
    ``valid``: train one configuration on n sampled training prompts per seed and report AUC on
    the validation prompts (settings are chosen here; each run is appended to ``validation.jsonl``).
    ``test``: the configurations in ``--configs`` (a JSON file), each scored on the test prompts
    once, plus every scorer untrained (zero-shot); writes ``results.json`` and ``results.md``.

Example:
    python benchmarks/tallrec.py valid --scorer cross-encoder --shots 64 --seeds 0 --style counted
    python benchmarks/tallrec.py test --configs benchmarks/results/tallrec/chosen.json
"""

from __future__ import annotations

import argparse
import ast
import csv
import dataclasses
import gzip
import io
import json
import os
import random
import re
import statistics
from pathlib import Path
from coldstart_peft.outputs import check_report_files, write_report_files

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tallrec"
DEFAULT_ITEMS = ROOT.parent / "shared" / "data" / "movielens-100k" / "ml-100k" / "u.item"
RESULTS = ROOT / "benchmarks" / "results" / "tallrec"
SHOTS = (16, 64, 256)
PUBLISHED = {16: 67.24, 64: 67.48, 256: 71.98}
"""TALLRec (LLaMA-7B + LoRA) Movie AUC x100 from the paper's repository README."""
INSTRUCTION = ('Given the user\'s preference and unpreference, identify whether the user will like the target movie '
               'by answering "Yes." or "No.".')  # fmt: skip
QUESTION = "Whether the user will like the target movie {item}?"
PROMPT = re.compile(r'User Preference: (.*)\nUser Unpreference: (.*)\nWhether the user will like the target movie (".*")\?\Z', re.S)
TITLES = re.compile(r'"(.*?)"(?:, |$)')


def read_json_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def titles(u_item: Path) -> dict[str, str]:
    """MovieLens-100K item id -> title (``u.item`` is Latin-1)."""
    out = {}
    with open(u_item, encoding="latin-1") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("|")
            out[fields[0]] = fields[1]
    return out


def rebuild(csv_path: Path, names: dict[str, str]) -> list[dict]:
    """TALLRec prompts from a baseline CSV: liked and disliked history titles in history order, then the target."""
    with gzip.open(csv_path, "rb") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    out = []
    for row in rows:
        history, ratings = ast.literal_eval(row["history_movie_id"]), ast.literal_eval(row["history_rating"])
        liked = ", ".join(f'"{names[i]}"' for i, r in zip(history, ratings) if r == 1)
        disliked = ", ".join(f'"{names[i]}"' for i, r in zip(history, ratings) if r == 0)
        target = QUESTION.format(item=f'"{names[row["movie_id"]]}"')
        out.append({"instruction": INSTRUCTION, "input": f"User Preference: {liked}\nUser Unpreference: {disliked}\n{target}",
                    "output": "Yes." if int(row["rating"]) == 1 else "No."})  # fmt: skip
    return out


def check_rebuild(data: Path, names: dict[str, str]) -> int:
    """Assert the CSV rebuild of the validation prompts equals ``valid.json``; returns the rows checked."""
    published = read_json_gz(data / "data" / "movie" / "valid.json.gz")
    rebuilt = rebuild(data / "baseline" / "movielens" / "valid.csv.gz", names)
    assert len(rebuilt) == len(published), (len(rebuilt), len(published))
    for number, (mine, theirs) in enumerate(zip(rebuilt, published)):
        assert mine == theirs, f"valid row {number}: rebuilt {mine!r} != published {theirs!r}"
    return len(published)


def to_pair(prompt: dict, style: str):
    """One TALLRec prompt as a :class:`~coldstart_peft.labeled_pairs.LabeledPair` (user history, target title, label)."""
    from coldstart_peft.labeled_pairs import LabeledPair

    match = PROMPT.match(prompt["input"])
    assert match, prompt["input"]
    liked_line, disliked_line, target = match.groups()
    label = {"Yes.": 1.0, "No.": 0.0}[prompt["output"]]
    if style == "prompt":
        user = f"User Preference: {liked_line}\nUser Unpreference: {disliked_line}"
    elif style == "counted":
        liked, disliked = TITLES.findall(liked_line), TITLES.findall(disliked_line)
        user = (f"The user liked {len(liked)} of {len(liked) + len(disliked)} movies.\n"
                f"Liked: {liked_line}\nDisliked: {disliked_line}")  # fmt: skip
    elif style == "tagged":  # every title carries its own label: a mean over tokens then holds the share liked
        from coldstart_peft.prompts import tagged_history

        user = tagged_history(TITLES.findall(liked_line), TITLES.findall(disliked_line))
    else:
        raise ValueError(f"unknown style {style!r}")
    return LabeledPair(user, target, label)


def sample(prompts: list[dict], n: int, seed: int, balanced: bool) -> list[dict]:
    """``n`` training prompts drawn without replacement; ``balanced``: half Yes, half No."""
    rng = random.Random(seed)
    if not balanced:
        return rng.sample(prompts, n)
    yes = [p for p in prompts if p["output"] == "Yes."]
    no = [p for p in prompts if p["output"] == "No."]
    picked = rng.sample(yes, n // 2) + rng.sample(no, n - n // 2)
    rng.shuffle(picked)
    return picked


@dataclasses.dataclass
class RunConfig:
    """One trained configuration: what ``valid`` tries and ``test`` reports."""

    scorer: str = "bi-encoder"
    scorer_config: dict = dataclasses.field(default_factory=dict)
    method: str = "lora"
    method_config: dict = dataclasses.field(default_factory=dict)
    style: str = "prompt"
    balanced: bool = False
    lr: float | None = None
    head_lr: float | None = None
    weight_decay: float = 0.0
    max_steps: int | None = None
    epochs: int | None = None

    def tag(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def fit(config: RunConfig, train_prompts: list[dict], seed: int):
    """Train a fresh scorer on ``train_prompts`` the way ``coldstart-peft train --pairs`` does; (scorer, result, plan)."""
    from coldstart_peft.few_shot import is_pointwise, plan_steps_for_pairs, pointwise_scorer_config
    from coldstart_peft.labeled_pairs import group_pairs
    from coldstart_peft.recipes import FitSettings, build_for_training
    from coldstart_peft.training import TrainConfig, train

    groups = group_pairs([to_pair(p, config.style) for p in train_prompts])
    settings = FitSettings(method=config.method, method_config=dict(config.method_config), scorer=config.scorer,
                           scorer_config=dict(config.scorer_config), priors=False)  # fmt: skip
    if is_pointwise(groups):
        settings.scorer_config = pointwise_scorer_config(settings.scorer, settings.scorer_config)
    train_config = TrainConfig(seed=seed, lr=config.lr, head_lr=config.head_lr, weight_decay=config.weight_decay,
                               max_steps=config.max_steps, progress=False,
                               epochs=config.epochs or TrainConfig.epochs)  # fmt: skip
    train_config = plan_steps_for_pairs(train_config, len(groups), epochs_given=config.epochs is not None)
    scorer, method, accelerator = build_for_training(settings, train_config, len(groups))
    result = train(scorer, method, groups, None, train_config, accelerator=accelerator)
    plan = {"epochs": train_config.epochs, "batch_size": train_config.batch_size, "steps": result.steps,
            "scorer_config": settings.scorer_config, "lr": train_config.lr,
            "head_lr": train_config.head_lr}  # fmt: skip
    return scorer, result, plan


def untrained(config: RunConfig):
    """The scorer with its method applied and no training step: the zero-shot model."""
    from coldstart_peft.recipes import FitSettings, build_for_training
    from coldstart_peft.training import TrainConfig

    settings = FitSettings(method=config.method, scorer=config.scorer, scorer_config=dict(config.scorer_config), priors=False)
    return build_for_training(settings, TrainConfig(progress=False), 1)[0]


def auc_of(scorer, prompts: list[dict], style: str, seed: int = 0) -> dict:
    from coldstart_peft.few_shot import held_out_auc

    scorer.eval()
    return held_out_auc(scorer, [to_pair(p, style) for p in prompts], seed=seed)


def facts() -> dict:
    import peft
    import torch
    import transformers

    from coldstart_peft.hardware import cpu_model
    from coldstart_peft.provenance import git_revision

    return {"cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "code": git_revision(ROOT)}  # fmt: skip


def load_all(args) -> tuple[list[dict], list[dict], list[dict]]:
    names = titles(Path(args.items))
    checked = check_rebuild(Path(args.data), names)
    print(f"rebuilt validation prompts equal valid.json ({checked} rows)", flush=True)
    train_prompts = rebuild(Path(args.data) / "baseline" / "movielens" / "train.csv.gz", names)
    valid = read_json_gz(Path(args.data) / "data" / "movie" / "valid.json.gz")
    test = read_json_gz(Path(args.data) / "data" / "movie" / "test.json.gz")
    return train_prompts, valid, test


def cmd_valid(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    train_prompts, valid, _ = load_all(args)
    config = RunConfig(scorer=args.scorer, scorer_config=json.loads(args.scorer_config), method=args.method,
                       method_config=json.loads(args.method_config), style=args.style, balanced=args.balanced,
                       lr=args.lr, head_lr=args.head_lr, weight_decay=args.weight_decay, max_steps=args.max_steps, epochs=args.epochs)  # fmt: skip
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        scorer, result, plan = fit(config, sample(train_prompts, args.shots, seed, config.balanced), seed)
        report = auc_of(scorer, valid, config.style, seed)
        row = {"config": dataclasses.asdict(config), "shots": args.shots, "seed": seed, "plan": plan,
               "final_loss": result.losses[-1] if getattr(result, "losses", None) else None,
               "valid": {k: report[k] for k in ("auc", "auc_low", "auc_high", "log_loss")}}  # fmt: skip
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{config.scorer} {config.style} shots={args.shots} seed={seed} steps={plan['steps']}: "
              f"valid AUC {report['auc']:.4f} [{report['auc_low']:.4f}, {report['auc_high']:.4f}]", flush=True)  # fmt: skip


def cmd_test(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    train_prompts, _, test = load_all(args)
    chosen = json.loads(Path(args.configs).read_text())
    out = Path(args.out)
    check_report_files(out, "results")
    # Cells are run one command at a time (a CPU budget), so each run adds its cells to the file.
    previous = json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else {}
    rows, zero = previous.get("results", []), previous.get("zero_shot", {})
    for name in args.scorers:
        if name in zero:
            continue
        first = RunConfig(**chosen[name][str(SHOTS[0])])
        report = auc_of(untrained(first), test, first.style)
        zero[name] = {"style": first.style, **{k: report[k] for k in ("auc", "auc_low", "auc_high", "log_loss")}}
        print(f"{name} zero-shot: test AUC {report['auc']:.4f}", flush=True)
        write(out, rows, zero, args)
    for name in args.scorers:
        for shots in args.shots:
            config = RunConfig(**chosen[name][str(shots)])
            runs = []
            for seed in args.seeds:
                scorer, result, plan = fit(config, sample(train_prompts, shots, seed, config.balanced), seed)
                report = auc_of(scorer, test, config.style, seed)
                runs.append({"seed": seed, "plan": plan, **{k: report[k] for k in ("auc", "auc_low", "auc_high", "log_loss")}})
                print(f"{name} shots={shots} seed={seed}: test AUC {report['auc']:.4f} "
                      f"[{report['auc_low']:.4f}, {report['auc_high']:.4f}]", flush=True)  # fmt: skip
            median = sorted(runs, key=lambda r: r["auc"])[len(runs) // 2]
            rows = [r for r in rows if (r["scorer"], r["shots"]) != (name, shots)]
            rows.append({"scorer": name, "shots": shots, "config": dataclasses.asdict(config), "runs": runs,
                         "median_auc": statistics.median(r["auc"] for r in runs), "median_run": median})  # fmt: skip
            write(out, rows, zero, args)


def write(out: Path, rows: list[dict], zero: dict, args) -> None:
    results = {"task": "TALLRec Movie (MovieLens-100K), test.json 1,000 prompts", "metric": "AUC, 95% bootstrap CI (1,000 resamples of pairs)",
               "base_model": "bundled all-MiniLM-L6-v2", "device": "cpu",
               "train_source": "rebuilt from baseline/movielens/train.csv + u.item (valid rebuild checked equal to valid.json)",
               "published_tallrec": PUBLISHED, "zero_shot": zero, "results": rows, "machine": facts()}  # fmt: skip
    lines = ["| scorer | " + " | ".join(f"{s} shots" for s in SHOTS) + " | zero-shot |", "|---|" + "---|" * (len(SHOTS) + 1)]
    lines.append("| TALLRec (LLaMA-7B + LoRA, published) | " + " | ".join(f"{PUBLISHED[s] / 100:.4f}" for s in SHOTS) + " | — |")
    for name in sorted(set(zero) | {r["scorer"] for r in rows}):
        z = zero.get(name)
        cells = []
        for shots in SHOTS:
            row = next((r for r in rows if r["scorer"] == name and r["shots"] == shots), None)
            if row is None:
                cells.append("—")
                continue
            m = row["median_run"]
            every = ", ".join(f"{r['auc']:.3f}" for r in row["runs"])
            cells.append(f"{m['auc']:.3f} [{m['auc_low']:.3f}, {m['auc_high']:.3f}] (seeds: {every})")
        zero_cell = f"{z['auc']:.3f} [{z['auc_low']:.3f}, {z['auc_high']:.3f}]" if z else "—"
        lines.append(f"| {name} (MiniLM) | " + " | ".join(cells) + f" | {zero_cell} |")
    machine = results["machine"]
    code = machine["code"]
    head = (f"# TALLRec Movie, MiniLM on the CPU\n\nTest AUC on the 1,000 test prompts: the median run over the "
            f"sampling seeds (its 95% CI), every seed's AUC after it. Machine: {machine['cpu_model']}, "
            f"{machine['cpu_capability']}, torch {machine['torch']}; commit {code.get('commit')}"
            f"{' (dirty)' if code.get('dirty') else ''}. Settings per cell are in results.json (chosen on validation.jsonl).\n\n")  # fmt: skip
    write_report_files(out, "results", results, head + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--items", default=str(DEFAULT_ITEMS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    commands = parser.add_subparsers(dest="command", required=True)
    valid = commands.add_parser("valid")
    valid.add_argument("--scorer", default="bi-encoder")
    valid.add_argument("--scorer-config", default="{}")
    valid.add_argument("--method", default="lora")
    valid.add_argument("--method-config", default="{}")
    valid.add_argument("--style", default="prompt", choices=("prompt", "counted", "tagged"))
    valid.add_argument("--balanced", action="store_true")
    valid.add_argument("--lr", type=float, default=None)
    valid.add_argument("--head-lr", type=float, default=None)
    valid.add_argument("--weight-decay", type=float, default=0.0)
    valid.add_argument("--max-steps", type=int, default=None)
    valid.add_argument("--epochs", type=int, default=None)
    valid.add_argument("--shots", type=int, default=64)
    valid.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    valid.add_argument("--log", default=str(RESULTS / "validation.jsonl"))
    test = commands.add_parser("test")
    test.add_argument("--configs", required=True, help="JSON: scorer -> shots -> RunConfig fields")
    test.add_argument("--scorers", type=lambda s: s.split(","), default=["cross-encoder", "generative", "bi-encoder"])
    test.add_argument("--shots", type=lambda s: [int(x) for x in s.split(",")], default=list(SHOTS))
    test.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    test.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    {"valid": cmd_valid, "test": cmd_test}[args.command](args)


if __name__ == "__main__":
    main()
