"""Training and scoring pairs/s of the engine against two plain HF Trainer + peft scripts, and what each speed feature buys.

All sides use the same backbone (the bundled MiniLM unless ``--base-model``), the same
(user text, item text) pairs, the same batch size in pairs, the same number of optimizer steps
and LoRA r=8, alpha=16 on the same modules (query, key, value); the HF scripts use dropout 0.05
as peft's examples do, ours the library's default 0 (the ``lora_dropout`` row measures what it gives).
The HF scripts keep the model's own dropout (0.1 in MiniLM's config); ours the library's
``ScorerConfig.backbone_dropout`` default, 0 (the ``backbone_dropout`` row measures what it gives).

* ours: ``build_scorer(--scorer)`` (default ``cross-encoder``) + ``make_method("lora")`` +
  ``train(...)`` with the engine's defaults: ``precision="auto"``, which is bf16 only where the
  hardware computes it natively (:func:`coldstart_peft.hardware.resolve_precision`, decision and
  reason recorded), and tokenization in the collate function with dynamic padding to the longest
  pair of the batch, run as length blocks on a CPU (:mod:`coldstart_peft.length_blocks`).
  Scoring with ``Scorer.score`` as served (``merge_for_inference``, length-sorted batches,
  dynamic padding, precision ``auto``), and as ``train()`` returns the scorer (LoRA unmerged). ``--batch-size`` pairs per batch is ``--batch-size / 4`` groups of one
  positive and three negatives. ``--scorer bi-encoder`` swaps our side to the two-tower scorer;
  the HF scripts stay pair classifiers, so only the cross-encoder is like for like.
* hf-competent: what a competent user writes: ``AutoModelForSequenceClassification(num_labels=1)``
  wrapped by ``peft.get_peft_model(LoraConfig(task_type="SEQ_CLS"))``, a ``Trainer`` whose
  ``compute_loss`` is BCE-with-logits on the pair labels, a dataset tokenized up front without
  padding, ``DataCollatorWithPadding``, length-grouped batches (``group_by_length``, spelled
  ``train_sampling_strategy="group_by_length"`` in transformers 5), ``bf16`` only where the
  hardware computes it natively (``native_cpu_bf16()`` on a CPU, ``torch.cuda.is_bf16_supported()``
  on a GPU), ``use_cpu`` on a CPU, logging, saving and the progress bar off; the run's size,
  learning rate and seed aside, every other argument at its default. Scoring: a plain loop over batches in input order under
  ``torch.inference_mode``, each batch tokenized and padded to its longest pair (what
  ``DataCollatorWithPadding`` does), bf16 autocast under the same condition as training, once
  with the peft model as trained and once after ``merge_and_unload()``.
* hf-naive: the seed's script: the same model and ``Trainer``, a dataset tokenized up front with
  ``padding="max_length"`` (``--max-length``), random batches, fp32: every ``TrainingArguments``
  at its default but the run's size, learning rate and seed, and logging, saving and the
  progress bar off. Scoring: a plain loop under
  ``torch.no_grad`` in fp32, each batch tokenized inside the loop and padded to ``--max-length``.

Training rate: the model is built and wrapped first (not timed), ``--warmup`` optimizer steps run
untimed, then the time from the end of the last warm-up step to the end of the last of ``--steps``
timed steps (our ``Method.on_step`` hook; a ``TrainerCallback.on_step_end``) gives
``steps x batch pairs / seconds``. Data loading (hf-competent's padding by the collator
included) and our engine's tokenization of each batch fall inside the timed steps; the HF datasets are tokenized before training, outside them.
Scoring rate: ``--score-pairs`` pairs from the cold-user test cases (each user's candidates), one
untimed warm-up call per setup on the first two batches, then pairs / seconds of one full call,
tokenization included on every side. Each figure is the median of ``--repeats`` repeats; within a
repeat every setup runs once before the next repeat starts, so load on a shared machine hits them
alike. Ratios are ours / HF of the medians; the markdown says whether each comparison with
hf-competent meets the target of 1.5x (``TARGET``).

Speed features, each switched off alone on our engine (factor = all on / that one off):
training: precision (``auto`` as resolved against the other of fp32 and bf16), dynamic padding
(every batch padded to ``--max-length``), LoRA dropout 0 (against the HF scripts' 0.05), length
blocks (``Scorer.length_block_cost = None``: each batch in one pass), backbone dropout
(``backbone_dropout=None``: the model's own rate, as the HF scripts train). Scoring, from the scorer as
served (LoRA merged in place, as ``load_adapter(merge=True)`` and the CLI do): precision (as in training), length-sorted
batches (batches in input order through ``forward_pairs``, still padded to their longest pair;
for the bi-encoder this also drops its one embedding per distinct text), dynamic padding (every
batch padded to ``--max-length``), merged weights (the scorer as training returns it, LoRA unmerged).

Writes ``throughput.json`` and ``throughput.md`` under ``--out`` and prints the tables. Both
record the CPU model and capability and whether it computes bf16 natively (the markdown's title
line names them), the torch, transformers, peft and accelerate versions, torch threads, the load
average at start and end, the precision each side ran in and why ``auto`` chose its precision,
and the git commit of the code (``dirty`` when the tree had uncommitted changes, untracked files
included); the JSON also holds every setting and each repeat's figure. On a CPU without native
bf16 the precision ablation trains in emulated bf16, which can take several times as long as
the rest of the run.

Example:
    python benchmarks/throughput.py --out runs/throughput
    python benchmarks/throughput.py --dataset demo --steps 5 --repeats 1 --out /tmp/tp
    python benchmarks/throughput.py --quick --dataset demo --scorer bi-encoder --out /tmp/tp-bi
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import importlib.util
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
import transformers
from transformers import AutoTokenizer, DataCollatorWithPadding, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from coldstart_peft import TrainConfig, TrainGroup, apply_method, build_scorer, hardware, make_method, train
from coldstart_peft.backbone import resolve_model_path
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
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


step_clock = _sibling("method_costs").step_clock

SCORERS = ("cross-encoder", "bi-encoder")
ITEMS_PER_GROUP = 4  # one positive, three negatives
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["query", "key", "value"]}
"""The HF scripts' LoRA, as peft's examples write it. Ours is the library's ``lora`` default, the
same but for dropout 0 (measured as good at equal time: benchmarks/results/dropout-choice);
the ``lora_dropout`` feature row trains ours with the HF scripts' 0.05."""
HF_LR = 2e-4
TARGET = 1.5  # the bar for ours / hf-competent, in training and in scoring
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
    """The groups as aligned (user, item, label) lists: the HF scripts' training rows."""
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


# -- provenance ---------------------------------------------------------------------------


def machine() -> dict:
    """The hardware facts a speed figure depends on, and the library versions."""
    import accelerate
    import peft

    return {**hardware.hardware_facts(), "cores": os.cpu_count() or 1, "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__}  # fmt: skip


def device() -> torch.device:
    """Where every side runs: the GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def other_precision(choice: hardware.PrecisionChoice) -> str:
    """The precision the ablation compares ``auto``'s choice against: bf16 if auto chose fp32, else fp32."""
    return "bf16" if choice.name == "fp32" else "fp32"


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
    """The median of a setup's repeats, with the repeats."""
    return {"pairs_per_s": statistics.median(samples), "samples": samples}


# -- training: ours -----------------------------------------------------------------------


def train_ours(
    args, groups: Sequence[TrainGroup], *, precision: str = "auto", dynamic_padding: bool = True, lora: dict | None = None,
    length_blocks: bool = True, scorer_config: dict | None = None,
) -> tuple[float, dict]:  # fmt: skip
    """Pairs/s of the engine over the timed steps, and the precision, padding and LoRA it trained with."""
    fresh_accelerate()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    scorer = build_scorer(args.scorer, args.base_model, {"max_length": args.max_length, **(scorer_config or {})})
    if not length_blocks:
        scorer.length_block_cost = None
    method = make_method("lora", lora)
    total = args.warmup + args.steps
    apply_method(scorer, method, total_steps=total)
    stamps = step_clock(method)
    config = TrainConfig(max_steps=total, batch_size=args.batch_size // ITEMS_PER_GROUP, progress=False,
                         precision=precision, seed=0)  # fmt: skip
    with contextlib.nullcontext() if dynamic_padding else fixed_padding(scorer, args.max_length):
        result = train(scorer, method, groups, None, config)
    if result.steps != total or result.train_pairs != total * args.batch_size or len(stamps) != total:
        raise RuntimeError(f"engine ran {result.steps} steps / {result.train_pairs} pairs, expected {total} / {total * args.batch_size}")
    info = {"precision": result.precision, "padding": "dynamic" if dynamic_padding else f"max_length {args.max_length}",
            "lora_dropout": method.config.dropout, "backbone_dropout": scorer.config.backbone_dropout}  # fmt: skip
    return args.steps * args.batch_size / (stamps[-1] - stamps[args.warmup - 1]), info


# -- training: the HF scripts -------------------------------------------------------------


class PairDataset(torch.utils.data.Dataset):
    """Every pair tokenized up front: padded to ``max_length`` (hf-naive) or not at all (hf-competent)."""

    def __init__(self, tokenizer, users, items, labels, max_length: int, pad_to_max_length: bool):
        self.encoded = tokenizer(list(users), list(items), truncation=True, max_length=max_length,
                                 padding="max_length" if pad_to_max_length else False)  # fmt: skip
        self.labels = [float(y) for y in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {**{k: v[index] for k, v in self.encoded.items()}, "labels": self.labels[index]}


class BCETrainer(Trainer):
    """A Trainer whose loss is BCE-with-logits of the one logit against the pair's label."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits.squeeze(-1), labels.float())
        return (loss, outputs) if return_outputs else loss


class StepStamps(TrainerCallback):
    """The time at the end of every optimizer step."""

    def __init__(self):
        self.times: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter())


def hf_model(base_model: str | None):
    """AutoModelForSequenceClassification(num_labels=1) with peft LoRA on the same modules."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(resolve_model_path(base_model), num_labels=1)
    config = LoraConfig(task_type="SEQ_CLS", r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=LORA["dropout"],
                        target_modules=list(LORA["target_modules"]))  # fmt: skip
    return get_peft_model(model, config)


def competent_bf16(device_type: str) -> bool:
    """Whether the competent script turns bf16 on: only where the hardware computes it natively."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return hardware.native_cpu_bf16()


def length_grouping() -> dict:
    """The ``TrainingArguments`` switch for length-grouped batches, in this transformers' spelling."""
    # transformers 5 replaced the group_by_length flag with a sampler name; 4.x only has the flag.
    if "train_sampling_strategy" in {field.name for field in dataclasses.fields(TrainingArguments)}:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def quiet_arguments(output_dir: str, batch_size: int, max_steps: int) -> dict:
    """The arguments both HF scripts share: size of the run, and no logging, saving or progress bar."""
    return {"output_dir": output_dir, "per_device_train_batch_size": batch_size, "max_steps": max_steps,
            "learning_rate": HF_LR, "logging_strategy": "no", "save_strategy": "no", "report_to": "none",
            "disable_tqdm": True, "seed": 0}  # fmt: skip


def competent_training_args(output_dir: str, batch_size: int, max_steps: int, device_type: str) -> TrainingArguments:
    """hf-competent's ``TrainingArguments``: length-grouped batches, bf16 where native, the rest at defaults.

    Args:
        output_dir: the Trainer's folder (nothing is saved in it).
        batch_size: pairs per batch.
        max_steps: optimizer steps, warm-up included.
        device_type: ``cpu`` or ``cuda``: decides ``use_cpu`` and which bf16 check applies.

    Returns:
        The arguments.
    """
    return TrainingArguments(**quiet_arguments(output_dir, batch_size, max_steps), **length_grouping(),
                             bf16=competent_bf16(device_type), use_cpu=device_type == "cpu")  # fmt: skip


def naive_training_args(output_dir: str, batch_size: int, max_steps: int) -> TrainingArguments:
    """hf-naive's ``TrainingArguments``: everything at its defaults (fp32, random batches)."""
    return TrainingArguments(**quiet_arguments(output_dir, batch_size, max_steps))


def train_hf(args, groups: Sequence[TrainGroup], script: str) -> tuple[float, dict]:
    """Pairs/s of the ``hf-competent`` or ``hf-naive`` script over the timed steps, and its setup."""
    competent = script == "hf-competent"
    fresh_accelerate()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.base_model))
    model = hf_model(args.base_model)
    dataset = PairDataset(tokenizer, *flat_pairs(groups), args.max_length, pad_to_max_length=not competent)
    total = args.warmup + args.steps
    stamps = StepStamps()
    with tempfile.TemporaryDirectory() as tmp:
        if competent:
            training_args = competent_training_args(tmp, args.batch_size, total, device().type)
            extra = {"processing_class": tokenizer, "data_collator": DataCollatorWithPadding(tokenizer)}
        else:
            training_args, extra = naive_training_args(tmp, args.batch_size, total), {}
        trainer = BCETrainer(model=model, args=training_args, train_dataset=dataset, callbacks=[stamps], **extra)
        trainer.remove_callback(PrinterCallback)  # the end-of-training metrics line; nothing else logs
        trainer.train()
    if len(stamps.times) != total:
        raise RuntimeError(f"Trainer ran {len(stamps.times)} steps, expected {total}")
    mixed = str(trainer.accelerator.mixed_precision)
    info = {"script": script, "precision": "fp32" if mixed == "no" else mixed,
            "optim": getattr(training_args.optim, "value", str(training_args.optim)),
            "padding": "DataCollatorWithPadding" if competent else f"max_length {args.max_length}",
            "batches": "group_by_length" if competent else "random"}  # fmt: skip
    return args.steps * args.batch_size / (stamps.times[-1] - stamps.times[args.warmup - 1]), info


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


@torch.inference_mode()
def score_competent(model, tokenizer, users: Sequence[str], items: Sequence[str], batch_size: int, max_length: int,
                    bf16: bool) -> np.ndarray:  # fmt: skip
    """hf-competent's loop: input order, each batch padded to its longest pair, bf16 autocast where native."""
    model.eval()
    out = []
    with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(items), batch_size):
            inputs = tokenizer(list(users[start : start + batch_size]), list(items[start : start + batch_size]),
                               truncation=True, max_length=max_length, padding=True, return_tensors="pt").to(model.device)  # fmt: skip
            out.append(model(**inputs).logits.squeeze(-1).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def score_naive(model, tokenizer, users: Sequence[str], items: Sequence[str], batch_size: int, max_length: int) -> np.ndarray:
    """hf-naive's loop: tokenize a batch with fixed padding, run the peft model in fp32."""
    model.eval()
    out = []
    for start in range(0, len(items), batch_size):
        inputs = tokenizer(list(users[start : start + batch_size]), list(items[start : start + batch_size]), truncation=True,
                           padding="max_length", max_length=max_length, return_tensors="pt").to(model.device)  # fmt: skip
        out.append(model(**inputs).logits.squeeze(-1).float().cpu())
    return torch.cat(out).numpy()


def scoring_runs(args, other: str) -> dict[str, Callable[[Sequence[str], Sequence[str]], object]]:
    """One callable ``(user_texts, item_texts)`` per scoring setup, models built here (not timed)."""
    torch.set_num_threads(args.threads)
    bs = args.score_batch_size
    torch.manual_seed(0)
    ours = build_scorer(args.scorer, args.base_model, {"max_length": args.max_length})
    method = make_method("lora")  # dropout does nothing in eval mode: the same model as the HF side's
    apply_method(ours, method, total_steps=1)  # untrained: speed does not depend on the weights' values
    ours.to(device()).eval()
    merged = copy.deepcopy(ours)
    if not merged.merge_for_inference():  # what load_adapter(merge=True) and the CLI's scoring commands do
        raise RuntimeError("LoRA did not merge")
    hf = hf_model(args.base_model).to(device())
    hf_merged = copy.deepcopy(hf).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.base_model))
    bf16 = competent_bf16(device().type)

    def other_precision_run(users, items):
        merged.precision = other
        try:
            return merged.score(users, items, batch_size=bs)
        finally:
            merged.precision = "auto"

    def padded(users, items):
        with fixed_padding(merged, args.max_length):
            return merged.score(users, items, batch_size=bs)

    return {
        "ours_as_trained": lambda users, items: ours.score(users, items, batch_size=bs),
        "ours": lambda users, items: merged.score(users, items, batch_size=bs),
        "hf_competent": lambda users, items: score_competent(hf, tokenizer, users, items, bs, args.max_length, bf16),
        "hf_competent_merged": lambda users, items: score_competent(hf_merged, tokenizer, users, items, bs, args.max_length, bf16),
        "hf_naive": lambda users, items: score_naive(hf, tokenizer, users, items, bs, args.max_length),
        "other_precision": other_precision_run,
        "no_length_sorting": lambda users, items: score_in_order(merged, users, items, bs),
        "no_dynamic_padding": padded,
    }


# -- report -------------------------------------------------------------------------------


def markdown(report: dict) -> str:
    """The title line (CPU and capability), the provenance, and two tables: ours vs HF; speed features."""
    m, s, code, auto = report["machine"], report["settings"], report["code"], report["precision_auto"]
    tr, sc = report["training"], report["scoring"]
    native = "native bf16" if m["native_cpu_bf16"] else "no native bf16"
    commit = f"{code['commit']}{' (dirty)' if code['dirty'] else ''}" if code["commit"] else "unknown"

    def row(phase: str, ours: str, ours_rate: dict, hf: str, hf_rate: dict, ratio: float, target: bool) -> str:
        verdict = ("yes" if ratio >= TARGET else "no") if target else "-"
        return (f"| {phase} | {ours} | {ours_rate['pairs_per_s']:.1f} | {hf} | {hf_rate['pairs_per_s']:.1f} | "
                f"{ratio:.2f}x | {verdict} |")  # fmt: skip

    hc, hn, o = tr["hf_competent"], tr["hf_naive"], tr["ours"]
    lines = [
        f"# Throughput on {m['cpu_model']} ({m['cpu_capability']}, {native}): {s['scorer']} engine vs HF Trainer + peft "
        f"({s['dataset']}, {s['model']})", "",
        f"Machine: {m['cores']} cores, GPU {m['cuda_device']}, {m['torch_threads']} torch threads; torch {m['torch']}, "
        f"transformers {m['transformers']}, peft {m['peft']}, accelerate {m['accelerate']}; commit {commit}; "
        f"load average {m['load_average_start']} at start, {m['load_average_end']} at end.", "",
        f"Precision `auto` resolved to {auto['name']}: {auto['reason']}.", "",
        f"LoRA r={LORA['r']} on {', '.join(LORA['target_modules'])}; {s['batch_pairs']} pairs per batch "
        f"({s['engine_batch_groups']} groups x {ITEMS_PER_GROUP} items for the engine), {s['steps']} timed steps after "
        f"{s['warmup']} warm-up, {s['score_pairs']} scoring pairs in batches of {s['score_batch_size']}, max length "
        f"{s['max_length']}; medians of {s['repeats']} repeats, setups interleaved. Mean tokens per pair: "
        f"{report['data']['train']['mean_tokens']:.1f} (training), {report['data']['score']['mean_tokens']:.1f} (scoring).", "",
        f"| phase | ours | ours pairs/s | HF script | HF pairs/s | ours / HF | >= {TARGET}x |",
        "|---|---|---:|---|---:|---:|:-:|",
        row("training", f"engine defaults ({o['precision']}, dynamic padding, LoRA dropout {o['lora_dropout']}, "
                        f"backbone dropout {o['backbone_dropout']})", o,
            f"hf-competent ({hc['precision']}, DataCollatorWithPadding, group_by_length)", hc, tr["ratios"]["vs_hf_competent"], True),
        row("training", f"engine defaults ({o['precision']}, dynamic padding)", o,
            f"hf-naive ({hn['precision']}, padding max_length {s['max_length']})", hn, tr["ratios"]["vs_hf_naive"], False),
        row("scoring", f"Scorer.score as served: load_adapter(merge=True), the CLI's path ({sc['ours']['precision']})",
            sc["ours"], f"hf-competent loop ({sc['hf_competent']['precision']}, dynamic padding)", sc["hf_competent"],
            sc["ratios"]["vs_hf_competent"], True),
        row("scoring", "Scorer.score as served", sc["ours"],
            f"hf-naive loop ({sc['hf_naive']['precision']}, padding max_length)", sc["hf_naive"], sc["ratios"]["vs_hf_naive"], False),
        row("scoring", "Scorer.score as train() returns it (LoRA unmerged)", sc["ours_as_trained"],
            "hf-competent loop", sc["hf_competent"], sc["ratios"]["as_trained_vs_hf_competent"], False),
        row("scoring", "Scorer.score as served", sc["ours"], "hf-competent loop after merge_and_unload()",
            sc["hf_competent_merged"], sc["ratios"]["vs_hf_competent_merged"], False), "",
        "| phase | feature switched off | pairs/s all on | pairs/s without it | factor it gives |", "|---|---|---:|---:|---:|",
    ]  # fmt: skip
    for phase, block, on in (("training", tr, tr["ours"]), ("scoring", sc, sc["ours"])):
        for feature, entry in block["features"].items():
            label = {"precision": f"precision: auto ({entry.get('auto')}) -> {entry.get('other')}",
                     "lora_dropout": f"LoRA dropout {entry.get('ours')} -> {entry.get('other')}",
                     "backbone_dropout": f"backbone dropout {entry.get('ours')} -> {entry.get('other')}"}.get(feature, feature.replace("_", " "))
            lines.append(f"| {phase} | {label} | {on['pairs_per_s']:.1f} | {entry['off_pairs_per_s']:.1f} | {entry['factor']:.2f}x |")
    return "\n".join(lines) + "\n"


def measure(setups: dict[str, Callable[[], tuple[float, dict]]], repeats: int, phase: str) -> tuple[dict[str, dict], dict[str, dict]]:
    """Median rate of every setup and what its last run reported; repeat r runs every setup before repeat r + 1."""
    samples: dict[str, list[float]] = {name: [] for name in setups}
    info: dict[str, dict] = {}
    for repeat in range(repeats):
        for name, run in setups.items():
            rate, info[name] = run()
            samples[name].append(rate)
            print(f"[{phase} {repeat + 1}/{repeats}] {name}: {rate:.1f} pairs/s", flush=True)
    return {name: median_rate(values) for name, values in samples.items()}, info


def feature(off: dict, on: dict, **labels) -> dict:
    """One ablation row: the rate without the feature and the factor the feature gives."""
    return {**labels, "off_pairs_per_s": off["pairs_per_s"], "off_samples": off["samples"],
            "factor": on["pairs_per_s"] / off["pairs_per_s"]}  # fmt: skip


def measure_training(args, groups: Sequence[TrainGroup], auto: hardware.PrecisionChoice) -> dict:
    """The training block of the report: ours, both HF scripts, ratios, and the features switched off."""
    other = other_precision(auto)
    rates, info = measure({
        "ours": lambda: train_ours(args, groups),
        "hf_competent": lambda: train_hf(args, groups, "hf-competent"),
        "hf_naive": lambda: train_hf(args, groups, "hf-naive"),
        "other_precision": lambda: train_ours(args, groups, precision=other),
        "no_dynamic_padding": lambda: train_ours(args, groups, dynamic_padding=False),
        "hf_lora_dropout": lambda: train_ours(args, groups, lora={"dropout": LORA["dropout"]}),
        "no_length_blocks": lambda: train_ours(args, groups, length_blocks=False),
        "model_backbone_dropout": lambda: train_ours(args, groups, scorer_config={"backbone_dropout": None}),
    }, args.repeats, "train")  # fmt: skip
    fresh_accelerate()
    return {
        **{name: {**rates[name], **info[name]} for name in ("ours", "hf_competent", "hf_naive")},
        "ratios": {f"vs_{name}": rates["ours"]["pairs_per_s"] / rates[name]["pairs_per_s"] for name in ("hf_competent", "hf_naive")},
        "features": {
            "precision": feature(rates["other_precision"], rates["ours"], auto=auto.name, reason=auto.reason, other=other),
            "dynamic_padding": feature(rates["no_dynamic_padding"], rates["ours"]),
            "lora_dropout": feature(rates["hf_lora_dropout"], rates["ours"], ours=0.0, other=LORA["dropout"]),
            "length_blocks": feature(rates["no_length_blocks"], rates["ours"]),
            "backbone_dropout": feature(rates["model_backbone_dropout"], rates["ours"], ours=info["ours"]["backbone_dropout"],
                                        other="the model's own"),
        },
    }  # fmt: skip


def measure_scoring(args, pairs: Sequence[tuple[str, str]], auto: hardware.PrecisionChoice) -> dict:
    """The scoring block of the report: ours (as trained, merged), both HF loops, ratios, features switched off."""
    other = other_precision(auto)
    setups = scoring_runs(args, other)
    users, items = [u for u, _ in pairs], [i for _, i in pairs]
    warm = 2 * args.score_batch_size
    for run in setups.values():
        run(users[:warm], items[:warm])  # warm-up: first calls pay for kernel selection and allocation

    def timed(run: Callable) -> Callable[[], tuple[float, dict]]:
        def measured() -> tuple[float, dict]:
            torch.set_num_threads(args.threads)
            start = time.perf_counter()
            run(users, items)
            return len(pairs) / (time.perf_counter() - start), {}

        return measured

    rates, _ = measure({name: timed(run) for name, run in setups.items()}, args.repeats, "score")
    hf = "bf16" if competent_bf16(device().type) else "fp32"
    sorting = "length-sorted batches" if args.scorer == "cross-encoder" else "each distinct text embedded once, length-sorted"

    def ratio(ours: str, theirs: str) -> float:
        return rates[ours]["pairs_per_s"] / rates[theirs]["pairs_per_s"]

    return {
        "ours": {**rates["ours"], "precision": auto.name,
                 "setup": f"as served (load_adapter(merge=True), the CLI's evaluate/recommend/search): precision auto, "
                          f"{sorting}, dynamic padding, LoRA merged in place"},
        "ours_as_trained": {**rates["ours_as_trained"], "precision": auto.name,
                            "setup": f"the scorer train() returns: precision auto, {sorting}, dynamic padding, LoRA unmerged"},
        "hf_competent": {**rates["hf_competent"], "precision": hf,
                         "setup": "peft model, torch.inference_mode, input order, each batch padded to its longest pair"},
        "hf_competent_merged": {**rates["hf_competent_merged"], "precision": hf, "setup": "as hf_competent, after merge_and_unload()"},
        "hf_naive": {**rates["hf_naive"], "precision": "fp32", "setup": f"peft model, torch.no_grad, padding max_length {args.max_length}"},
        "ratios": {"vs_hf_competent": ratio("ours", "hf_competent"), "vs_hf_naive": ratio("ours", "hf_naive"),
                   "as_trained_vs_hf_competent": ratio("ours_as_trained", "hf_competent"),
                   "vs_hf_competent_merged": ratio("ours", "hf_competent_merged")},
        "features": {
            "precision": feature(rates["other_precision"], rates["ours"], auto=auto.name, reason=auto.reason, other=other),
            "length_sorting": feature(rates["no_length_sorting"], rates["ours"]),
            "dynamic_padding": feature(rates["no_dynamic_padding"], rates["ours"]),
            "merged_weights": feature(rates["ours_as_trained"], rates["ours"]),
        },
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, sizes filled in from ``QUICK`` or ``DEFAULTS`` and checked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty", help="beauty (falls back to demo without the shared data), demo, or a path")
    parser.add_argument("--base-model", default=None, help="HF model name or folder (default: the bundled MiniLM)")
    parser.add_argument("--scorer", choices=SCORERS, default="cross-encoder",
                        help="our side's scorer; the HF scripts are pair classifiers, so cross-encoder is like for like")  # fmt: skip
    parser.add_argument("--steps", type=int, default=None, help=f"timed optimizer steps per run (default {DEFAULTS['steps']})")
    parser.add_argument("--warmup", type=int, default=None, help=f"untimed steps first, at least 1 (default {DEFAULTS['warmup']})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"training pairs per batch, a multiple of {ITEMS_PER_GROUP} (default {DEFAULTS['batch_size']})")  # fmt: skip
    parser.add_argument("--score-pairs", type=int, default=None, help=f"pairs per scoring run (default {DEFAULTS['score_pairs']})")
    parser.add_argument("--score-batch-size", type=int, default=None, help=f"pairs per scoring batch (default {DEFAULTS['score_batch_size']})")
    parser.add_argument("--max-length", type=int, default=128, help="token budget; hf-naive pads every pair to it")
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
    return args


def main(argv: list[str] | None = None) -> int:
    """Measure every side, then print and write the report; returns the exit status."""
    args = parse_args(argv)
    check_report_files(args.out, "throughput")
    transformers.logging.set_verbosity_error()  # "newly initialized classifier" and friends
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="'pin_memory' argument is set as true")  # the Trainer's default, on CPU
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated")  # peft on transformers 5
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    code = git_revision(__file__)
    auto = hardware.resolve_precision("auto", device())
    facts = hardware.hardware_facts()
    print(f"{facts['cpu_model']} ({facts['cpu_capability']}, native bf16: {facts['native_cpu_bf16']}); "
          f"precision auto = {auto.name}: {auto.reason}", flush=True)  # fmt: skip
    total_steps = args.warmup + args.steps
    dataset, groups, pairs = load_data(args.dataset, total_steps * args.batch_size // ITEMS_PER_GROUP, args.score_pairs)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(args.base_model))
    train_users, train_items, _ = flat_pairs(groups)
    data = {"train": {"pairs": len(train_users), **token_stats(tokenizer, train_users, train_items, args.max_length)},
            "score": {"pairs": len(pairs), **token_stats(tokenizer, [u for u, _ in pairs], [i for _, i in pairs], args.max_length)}}  # fmt: skip
    print(f"{dataset}: {len(groups)} training groups ({len(train_users)} pairs, {data['train']['mean_tokens']:.1f} tokens each), "
          f"{len(pairs)} scoring pairs ({data['score']['mean_tokens']:.1f} tokens each)", flush=True)  # fmt: skip

    training = measure_training(args, groups, auto)
    scoring = measure_scoring(args, pairs, auto)
    report = {
        "machine": {**machine(), "torch_threads": torch.get_num_threads(), "device": device().type,
                    "load_average_start": [round(x, 2) for x in load_start],
                    "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "code": code,
        "precision_auto": {"name": auto.name, "reason": auto.reason},
        "settings": {"dataset": dataset, "model": args.base_model or "default (all-MiniLM-L6-v2)", "scorer": args.scorer,
                     "method": {"lora": LORA, "hf_lr": HF_LR}, "batch_pairs": args.batch_size,
                     "engine_batch_groups": args.batch_size // ITEMS_PER_GROUP, "items_per_group": ITEMS_PER_GROUP,
                     "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats, "score_pairs": len(pairs),
                     "score_batch_size": args.score_batch_size, "max_length": args.max_length, "threads": args.threads,
                     "quick": args.quick, "target_ratio": TARGET},
        "data": data,
        "training": training,
        "scoring": scoring,
    }  # fmt: skip
    table = markdown(report)
    write_report_files(args.out, "throughput", report, table)
    print(table)
    print(f"written to {args.out / 'throughput.json'} and {args.out / 'throughput.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
