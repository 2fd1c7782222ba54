"""Training and scoring pairs/s of the engine against a plain HF Trainer + peft script, and what each speed feature buys.

Both sides use the same backbone (the bundled MiniLM unless ``--base-model``), the same
(user text, item text) pairs, the same batch size in pairs, the same number of optimizer steps
and LoRA r=8, alpha=16, dropout 0.05 on the same modules (query, key, value).

* ours: ``build_scorer("cross-encoder")`` + ``make_method("lora")`` + ``train(...)`` with the
  engine's defaults (bf16 autocast on CPU, tokenization in the collate function with dynamic
  padding to the longest pair of the batch); scoring with ``Scorer.score`` (length-sorted batches,
  dynamic padding, bf16 autocast on CPU). ``--batch-size`` pairs per batch is
  ``--batch-size / 4`` groups of one positive and three negatives.
* HF: what a user would write instead: ``AutoModelForSequenceClassification(num_labels=1)`` wrapped
  by ``peft.get_peft_model(LoraConfig(task_type="SEQ_CLS"))``, a ``Trainer`` whose ``compute_loss``
  is BCE-with-logits on the pair labels, a torch ``Dataset`` tokenized up front with
  ``padding="max_length"`` (``--max-length``), all other ``TrainingArguments`` at their defaults
  (fp32, the default AdamW, linear schedule), except that logging, saving and the progress bar
  are off. Scoring: a plain loop over batches under ``torch.no_grad`` (fixed padding, fp32),
  tokenizing each batch inside the loop, as ``Scorer.score`` does.

Training rate: the model is built and wrapped first (not timed), ``--warmup`` optimizer steps run
untimed, then the time from the end of the last warm-up step to the end of the last of ``--steps``
timed steps (our ``Method.on_step`` hook; a ``TrainerCallback.on_step_end``) gives
``steps x batch pairs / seconds``. Data loading and (for our engine) tokenization of each batch
fall inside the timed steps; the HF dataset is tokenized before training, outside them.
Scoring rate: ``--score-pairs`` pairs from the cold-user test cases (each user's candidates), one
untimed warm-up call on the first two batches, then pairs / seconds of one full call. Each figure
is the median of ``--repeats`` repeats; within a repeat the setups run one after another, so load
on a shared machine hits them alike. Ratios are ours / HF of the medians.

Speed features, each switched off alone on our engine (factor = all on / that one off):
training: bf16 autocast (``mixed_precision="no"``), dynamic padding (every batch padded to
``--max-length``). Scoring, from the scorer with all features on (LoRA merged into the base weights
with ``Method.merge``): bf16 autocast (``precision="fp32"``), length-sorted batches (batches in input
order, still padded to their longest pair), dynamic padding (every batch padded to
``--max-length``), merged weights (the scorer as training returns it, LoRA unmerged).

Writes ``throughput.json`` and ``throughput.md`` under ``--out`` and prints the tables.

Example:
    python benchmarks/throughput.py --out runs/throughput
    python benchmarks/throughput.py --dataset demo --steps 5 --repeats 1 --out /tmp/tp
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from coldstart_peft import TrainConfig, TrainGroup, apply_method, build_scorer, make_method, train
from coldstart_peft.backbone import resolve_model_path
from coldstart_peft.scorer import Scorer, inference_autocast



def _sibling(name: str):
    """Another benchmark script as a module, whether benchmarks/ is on sys.path (run as a script) or not (tests)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


machine = _sibling("compare_methods").machine
step_clock = _sibling("method_costs").step_clock

ITEMS_PER_GROUP = 4  # one positive, three negatives
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "key", "value"]}
HF_LR = 2e-4
DEFAULTS = {"steps": 20, "warmup": 3, "batch_size": 32, "repeats": 3, "score_pairs": 1024, "score_batch_size": 64}
QUICK = {"steps": 2, "warmup": 1, "batch_size": 8, "repeats": 1, "score_pairs": 32, "score_batch_size": 16}


# -- data ---------------------------------------------------------------------------------


def load_data(dataset: str, n_groups: int, n_score_pairs: int, seed: int = 0) -> tuple[str, list[TrainGroup], list[tuple[str, str]]]:
    """Training groups (one positive, three negatives) and scoring pairs from a cold-user split.

    ``beauty`` falls back to ``demo`` when the shared data folder is missing (said on stdout and
    recorded as the dataset used).
    """
    from coldstart_peft.data import cold_user_split, load_dataset, training_groups
    from coldstart_peft.errors import DataNotFoundError

    try:
        data = load_dataset(dataset)
    except DataNotFoundError as exc:
        if dataset != "beauty":
            raise
        print(f"beauty not available ({exc}); using the demo shop instead", flush=True)
        dataset, data = "demo", load_dataset("demo")
    split = cold_user_split(data, k=3, n_negatives=99, seed=seed, max_test_users=math.ceil(n_score_pairs / 100) + 1)
    groups = [g for g in training_groups(split, n_negatives=ITEMS_PER_GROUP - 1, seed=seed, max_groups=2 * n_groups)
              if len(g.item_texts) == ITEMS_PER_GROUP][:n_groups]  # fmt: skip
    if not groups:
        raise SystemExit(f"{dataset}: no training groups of {ITEMS_PER_GROUP} items")
    groups = (groups * math.ceil(n_groups / len(groups)))[:n_groups]
    pairs = [(case.user_text, item) for case in split.ranking_cases("test") for item in case.candidate_texts]
    if not pairs:
        raise SystemExit(f"{dataset}: no test cases to score")
    pairs = (pairs * math.ceil(n_score_pairs / len(pairs)))[:n_score_pairs]
    return dataset, groups, pairs


def flat_pairs(groups: Sequence[TrainGroup]) -> tuple[list[str], list[str], list[float]]:
    """The groups as aligned (user, item, label) lists: the HF script's training rows."""
    users = [g.user_text for g in groups for _ in g.item_texts]
    items = [t for g in groups for t in g.item_texts]
    labels = [float(y) for g in groups for y in g.labels]
    return users, items, labels


def token_stats(tokenizer, users: Sequence[str], items: Sequence[str], max_length: int) -> dict:
    """Tokens per pair without padding, and the share of pairs cut at ``max_length``."""
    full = [len(ids) for ids in tokenizer(list(users), list(items))["input_ids"]]
    return {"mean_tokens": float(np.mean(full)), "max_tokens": int(max(full)),
            "truncated_share": float(np.mean([n > max_length for n in full])),
            "padding_share_at_max_length": float(1.0 - np.mean([min(n, max_length) for n in full]) / max_length)}  # fmt: skip


# -- helpers ------------------------------------------------------------------------------


class FixedPadding:
    """A tokenizer proxy that pads every call to ``max_length``: dynamic padding switched off."""

    def __init__(self, tokenizer, max_length: int):
        object.__setattr__(self, "_tokenizer", tokenizer)
        object.__setattr__(self, "_max_length", max_length)

    def __call__(self, *args, **kwargs):
        kwargs.update(padding="max_length", max_length=self._max_length)
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __setattr__(self, name, value):  # e.g. the cross-encoder's truncation_side
        setattr(self._tokenizer, name, value)


@contextlib.contextmanager
def fixed_padding(scorer: Scorer, max_length: int):
    """Within the block the scorer's tokenizer pads every batch to ``max_length``."""
    original = scorer.tokenizer
    scorer.tokenizer = FixedPadding(original, max_length)
    try:
        yield
    finally:
        scorer.tokenizer = original


def fresh_accelerate() -> None:
    """Accelerate keeps one precision per process; each run sets its own."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def median_rate(samples: list[float]) -> dict:
    return {"pairs_per_s": statistics.median(samples), "samples": samples}


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- training -----------------------------------------------------------------------------


def train_ours(args, groups: Sequence[TrainGroup], *, precision: str = "auto", dynamic_padding: bool = True) -> float:
    """Pairs/s of the engine over the timed steps."""
    fresh_accelerate()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", args.base_model, {"max_length": args.max_length})
    method = make_method("lora", dict(LORA))
    total = args.warmup + args.steps
    apply_method(scorer, method, total_steps=total)
    stamps = step_clock(method)
    config = TrainConfig(max_steps=total, batch_size=args.batch_size // ITEMS_PER_GROUP, progress=False,
                         mixed_precision=precision, seed=0)  # fmt: skip
    with contextlib.nullcontext() if dynamic_padding else fixed_padding(scorer, args.max_length):
        result = train(scorer, method, groups, None, config)
    if result.steps != total or result.train_pairs != total * args.batch_size or len(stamps) != total:
        raise RuntimeError(f"engine ran {result.steps} steps / {result.train_pairs} pairs, expected {total} / {total * args.batch_size}")
    return args.steps * args.batch_size / (stamps[-1] - stamps[args.warmup - 1])


class PairDataset(torch.utils.data.Dataset):
    """The typical script's dataset: every pair tokenized up front, padded to ``max_length``."""

    def __init__(self, tokenizer, users, items, labels, max_length: int):
        self.encoded = tokenizer(list(users), list(items), truncation=True, padding="max_length",
                                 max_length=max_length, return_tensors="pt")  # fmt: skip
        self.labels = torch.tensor(labels, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {**{k: v[index] for k, v in self.encoded.items()}, "labels": self.labels[index]}


def hf_model(base_model: str | None):
    """AutoModelForSequenceClassification(num_labels=1) with peft LoRA on the same modules."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(base_model), num_labels=1)
    config = LoraConfig(task_type="SEQ_CLS", r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                        target_modules=list(LORA["target_modules"]))  # fmt: skip
    return get_peft_model(model, config)


def train_hf(args, groups: Sequence[TrainGroup], info: dict) -> float:
    """Pairs/s of a HF Trainer + peft script over the timed steps; its setup goes into ``info``."""
    from transformers import AutoTokenizer, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    class BCETrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits.squeeze(-1), labels.float())
            return (loss, outputs) if return_outputs else loss

    class Stamps(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    fresh_accelerate()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.base_model))
    model = hf_model(args.base_model)
    dataset = PairDataset(tokenizer, *flat_pairs(groups), args.max_length)
    total = args.warmup + args.steps
    stamps = Stamps()
    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=args.batch_size, max_steps=total,
                                          learning_rate=HF_LR, logging_strategy="no", save_strategy="no",
                                          report_to="none", disable_tqdm=True, seed=0)  # fmt: skip
        trainer = BCETrainer(model=model, args=training_args, train_dataset=dataset, callbacks=[stamps])
        trainer.remove_callback(PrinterCallback)  # the end-of-training metrics line; nothing else logs
        trainer.train()
    if len(stamps.times) != total:
        raise RuntimeError(f"Trainer ran {len(stamps.times)} steps, expected {total}")
    mixed = str(trainer.accelerator.mixed_precision)
    info.update(precision="fp32" if mixed == "no" else mixed, optim=getattr(training_args.optim, "value", str(training_args.optim)),
                padding=f"max_length {args.max_length}")  # fmt: skip
    return args.steps * args.batch_size / (stamps.times[-1] - stamps.times[args.warmup - 1])


# -- scoring ------------------------------------------------------------------------------


@torch.no_grad()
def score_in_order(scorer: Scorer, users: Sequence[str], items: Sequence[str], batch_size: int) -> np.ndarray:
    """``Scorer.score`` without length sorting: batches in input order, each padded to its longest pair."""
    scorer.eval()
    out = []
    with inference_autocast(scorer.precision, scorer.device):
        for start in range(0, len(items), batch_size):
            out.append(scorer.forward_pairs(users[start : start + batch_size], items[start : start + batch_size]).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def score_hf(model, tokenizer, users: Sequence[str], items: Sequence[str], batch_size: int, max_length: int) -> np.ndarray:
    """The plain loop: tokenize a batch with fixed padding, run the peft model in fp32."""
    model.eval()
    out = []
    for start in range(0, len(items), batch_size):
        inputs = tokenizer(list(users[start : start + batch_size]), list(items[start : start + batch_size]), truncation=True,
                           padding="max_length", max_length=max_length, return_tensors="pt").to(model.device)  # fmt: skip
        out.append(model(**inputs).logits.squeeze(-1).float().cpu())
    return torch.cat(out).numpy()


def scoring_runs(args) -> dict[str, Callable[[Sequence[str], Sequence[str]], object]]:
    """One callable ``(user_texts, item_texts)`` per scoring setup, models built here (not timed)."""
    from transformers import AutoTokenizer

    torch.set_num_threads(args.threads)
    bs = args.score_batch_size
    torch.manual_seed(0)
    ours = build_scorer("cross-encoder", args.base_model, {"max_length": args.max_length})
    method = make_method("lora", dict(LORA))
    apply_method(ours, method, total_steps=1)  # untrained: speed does not depend on the weights' values
    ours.to(device()).eval()
    merged = copy.deepcopy(ours)
    merged.backbone = method.merge(merged.backbone)
    merged.precision = "bf16"  # what "auto" means on CPU; explicit so the feature is on on a GPU too
    hf = hf_model(args.base_model).to(device())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.base_model))

    def fp32(users, items):
        merged.precision = "fp32"
        try:
            return merged.score(users, items, batch_size=bs)
        finally:
            merged.precision = "bf16"

    def padded(users, items):
        with fixed_padding(merged, args.max_length):
            return merged.score(users, items, batch_size=bs)

    return {
        "ours": lambda users, items: ours.score(users, items, batch_size=bs),
        "ours_merged": lambda users, items: merged.score(users, items, batch_size=bs),
        "hf_loop": lambda users, items: score_hf(hf, tokenizer, users, items, bs, args.max_length),
        "no_bf16_autocast": fp32,
        "no_length_sorting": lambda users, items: score_in_order(merged, users, items, bs),
        "no_dynamic_padding": padded,
    }


# -- report -------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    """Two tables (ours vs HF; speed features) and the machine line."""
    m, s = report["machine"], report["settings"]
    tr, sc = report["training"], report["scoring"]
    lines = [
        f"# Throughput: engine vs HF Trainer + peft ({s['dataset']}, {s['model']})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, GPU {m['gpu']}, {m['torch_threads']} torch threads; torch {m['torch']}, "
        f"transformers {m['transformers']}, peft {m['peft']}; load average {m['load_average_start']} at start, "
        f"{m['load_average_end']} at end.", "",
        f"LoRA r={LORA['r']} on {', '.join(LORA['target_modules'])}; {s['batch_pairs']} pairs per batch "
        f"({s['engine_batch_groups']} groups x {ITEMS_PER_GROUP} items for the engine), {s['steps']} timed steps after "
        f"{s['warmup']} warm-up, {s['score_pairs']} scoring pairs in batches of {s['score_batch_size']}, max length "
        f"{s['max_length']}; medians of {s['repeats']} repeats. Mean tokens per pair: "
        f"{report['data']['train']['mean_tokens']:.1f} (training), {report['data']['score']['mean_tokens']:.1f} (scoring).", "",
        "| | ours pairs/s | HF pairs/s | ours / HF |", "|---|---:|---:|---:|",
        f"| training (engine defaults vs Trainer, HF in {tr['hf_trainer']['precision']}) | "
        f"{tr['ours']['pairs_per_s']:.1f} | {tr['hf_trainer']['pairs_per_s']:.1f} | {tr['ratio']:.2f}x |",
        f"| scoring (Scorer.score as trained vs plain loop) | {sc['ours']['pairs_per_s']:.1f} | "
        f"{sc['hf_loop']['pairs_per_s']:.1f} | {sc['ratio']:.2f}x |",
        f"| scoring, LoRA merged | {sc['ours_merged']['pairs_per_s']:.1f} | {sc['hf_loop']['pairs_per_s']:.1f} | "
        f"{sc['ratio_merged']:.2f}x |", "",
        "| phase | feature switched off | pairs/s all on | pairs/s without it | factor it gives |", "|---|---|---:|---:|---:|",
    ]  # fmt: skip
    for phase, block, on in (("training", tr, tr["ours"]), ("scoring", sc, sc["ours_merged"])):
        for feature, row in block["features"].items():
            lines.append(f"| {phase} | {feature.replace('_', ' ')} | {on['pairs_per_s']:.1f} | "
                         f"{row['off_pairs_per_s']:.1f} | {row['factor']:.2f}x |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty", help="beauty (falls back to demo without the shared data), demo, or a path")
    parser.add_argument("--base-model", default=None, help="HF model name or folder (default: the bundled MiniLM)")
    parser.add_argument("--steps", type=int, default=None, help=f"timed optimizer steps per run (default {DEFAULTS['steps']})")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed steps first, at least 1 (default {DEFAULTS['warmup']})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"training pairs per batch, a multiple of {ITEMS_PER_GROUP} (default {DEFAULTS['batch_size']})")  # fmt: skip
    parser.add_argument("--score-pairs", type=int, default=None, help=f"pairs per scoring run (default {DEFAULTS['score_pairs']})")
    parser.add_argument("--score-batch-size", type=int, default=None, help=f"pairs per scoring batch (default {DEFAULTS['score_batch_size']})")
    parser.add_argument("--max-length", type=int, default=128, help="token budget; the HF side pads every pair to it")
    parser.add_argument("--repeats", type=int, default=None, help=f"repeats per figure, medians reported (default {DEFAULTS['repeats']})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=Path("runs/throughput"), help="folder for throughput.json and throughput.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (for tests): " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.batch_size % ITEMS_PER_GROUP or args.batch_size < ITEMS_PER_GROUP:
        parser.error(f"--batch-size must be a multiple of {ITEMS_PER_GROUP} (groups of one positive and {ITEMS_PER_GROUP - 1} negatives)")
    if args.warmup < 1 or args.steps < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--warmup, --steps, --repeats and --threads must be at least 1")

    import transformers

    transformers.logging.set_verbosity_error()  # "newly initialized classifier" and friends
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true")  # the Trainer's default, on CPU
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")  # peft on transformers 5
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    total_steps = args.warmup + args.steps
    dataset, groups, pairs = load_data(args.dataset, total_steps * args.batch_size // ITEMS_PER_GROUP, args.score_pairs)
    from coldstart_peft.backbone import load_tokenizer

    tokenizer = load_tokenizer(args.base_model)
    train_users, train_items, _ = flat_pairs(groups)
    data = {"train": {"pairs": len(train_users), **token_stats(tokenizer, train_users, train_items, args.max_length)},
            "score": {"pairs": len(pairs), **token_stats(tokenizer, [u for u, _ in pairs], [i for _, i in pairs], args.max_length)}}  # fmt: skip
    print(f"{dataset}: {len(groups)} training groups ({len(train_users)} pairs, {data['train']['mean_tokens']:.1f} tokens each), "
          f"{len(pairs)} scoring pairs ({data['score']['mean_tokens']:.1f} tokens each)", flush=True)  # fmt: skip

    hf_info: dict = {}
    train_setups = {
        "ours": lambda: train_ours(args, groups),
        "hf_trainer": lambda: train_hf(args, groups, hf_info),
        "no_bf16_autocast": lambda: train_ours(args, groups, precision="no"),
        "no_dynamic_padding": lambda: train_ours(args, groups, dynamic_padding=False),
    }
    train_samples: dict[str, list[float]] = {name: [] for name in train_setups}
    for repeat in range(args.repeats):
        for name, run in train_setups.items():
            train_samples[name].append(run())
            print(f"[train {repeat + 1}/{args.repeats}] {name}: {train_samples[name][-1]:.1f} pairs/s", flush=True)
    fresh_accelerate()

    score_setups = scoring_runs(args)
    users, items = [u for u, _ in pairs], [i for _, i in pairs]
    warm = 2 * args.score_batch_size
    for run in score_setups.values():
        run(users[:warm], items[:warm])  # warm-up: first calls pay for kernel selection and allocation
    score_samples: dict[str, list[float]] = {name: [] for name in score_setups}
    for repeat in range(args.repeats):
        for name, run in score_setups.items():
            torch.set_num_threads(args.threads)
            start = time.perf_counter()
            run(users, items)
            score_samples[name].append(len(pairs) / (time.perf_counter() - start))
            print(f"[score {repeat + 1}/{args.repeats}] {name}: {score_samples[name][-1]:.1f} pairs/s", flush=True)

    train_rates = {name: median_rate(samples) for name, samples in train_samples.items()}
    score_rates = {name: median_rate(samples) for name, samples in score_samples.items()}

    def feature(off: dict, on: dict) -> dict:
        return {"off_pairs_per_s": off["pairs_per_s"], "off_samples": off["samples"], "factor": on["pairs_per_s"] / off["pairs_per_s"]}

    training = {
        "ours": {**train_rates["ours"], "precision": "bf16 autocast" if device().type == "cpu" else "auto (bf16/fp16)", "padding": "dynamic"},
        "hf_trainer": {**train_rates["hf_trainer"], **hf_info},
        "ratio": train_rates["ours"]["pairs_per_s"] / train_rates["hf_trainer"]["pairs_per_s"],
        "features": {name: feature(train_rates[name], train_rates["ours"]) for name in ("no_bf16_autocast", "no_dynamic_padding")},
    }  # fmt: skip
    training["features"] = {name.removeprefix("no_"): row for name, row in training["features"].items()}
    scoring = {
        "ours": {**score_rates["ours"], "setup": "Scorer.score defaults: precision auto, length-sorted batches, dynamic padding, LoRA unmerged"},
        "ours_merged": {**score_rates["ours_merged"], "setup": "all features on: bf16 autocast, length-sorted batches, dynamic padding, LoRA merged"},
        "hf_loop": {**score_rates["hf_loop"], "setup": f"peft model, torch.no_grad, fp32, padding max_length {args.max_length}"},
        "ratio": score_rates["ours"]["pairs_per_s"] / score_rates["hf_loop"]["pairs_per_s"],
        "ratio_merged": score_rates["ours_merged"]["pairs_per_s"] / score_rates["hf_loop"]["pairs_per_s"],
        "features": {
            "bf16_autocast": feature(score_rates["no_bf16_autocast"], score_rates["ours_merged"]),
            "length_sorting": feature(score_rates["no_length_sorting"], score_rates["ours_merged"]),
            "dynamic_padding": feature(score_rates["no_dynamic_padding"], score_rates["ours_merged"]),
            "merged_weights": feature(score_rates["ours"], score_rates["ours_merged"]),
        },
    }  # fmt: skip
    report = {
        "machine": {**machine(), "torch_threads": torch.get_num_threads(), "device": device().type,
                    "load_average_start": [round(x, 2) for x in load_start],
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"dataset": dataset, "model": args.base_model or "default (all-MiniLM-L6-v2)",
                     "method": {"lora": LORA, "hf_lr": HF_LR}, "batch_pairs": args.batch_size,
                     "engine_batch_groups": args.batch_size // ITEMS_PER_GROUP, "items_per_group": ITEMS_PER_GROUP,
                     "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "score_pairs": len(pairs),
                     "score_batch_size": args.score_batch_size, "max_length": args.max_length, "threads": args.threads,
                     "quick": args.quick},
        "data": data,
        "training": training,
        "scoring": scoring,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    table = markdown(report)
    (args.out / "throughput.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"written to {args.out / 'throughput.json'} and {args.out / 'throughput.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
