"""One short check of the GPU path: the default recipe (priors and calibration included) trains, saves, reloads and scores on CUDA.

Precision is ``auto`` (bf16 on GPUs that support it, fp16 with a loss scaler on older ones);
the report records what it resolved to.

Runs on a machine with a GPU and no model hub: the backbone is a small random BERT built in
process (4 layers, hidden 256) with a word-level tokenizer over the demo shop's vocabulary.
Prints one JSON line with what it verified.

Example:
    python benchmarks/gpu/check_gpu_path.py --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

from coldstart_peft import TrainConfig, load_adapter, save_adapter
from coldstart_peft.data.cold_start import cold_user_split
from coldstart_peft.demo import demo_dataset
from coldstart_peft.evaluation.ranking import evaluate_ranking
from coldstart_peft.hardware import hardware_facts, resolve_precision
from coldstart_peft.outputs import check_report_files, write_json_report
from coldstart_peft.recipes import FitSettings, fit_on_split


def small_base(folder: Path, texts: list[str]) -> str:
    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024, max_position_embeddings=256)  # fmt: skip
    BertModel(config).save_pretrained(folder)
    return str(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/gpu-check")
    args = parser.parse_args(argv)
    out = Path(args.out)
    check_report_files(out, "gpu_check")  # refuse a report this script did not write, before any work
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check is for a machine with a GPU")
    dataset = demo_dataset(n_items=300, n_users=1500)
    split = cold_user_split(dataset, k=3, n_negatives=99, seed=0, max_test_users=100)
    cases = split.ranking_cases("test")
    scratch = tempfile.TemporaryDirectory()  # the random base model is not a result; nothing of the user's is touched
    base = small_base(Path(scratch.name) / "base", [c.user_text for c in cases] + [t for c in cases for t in c.candidate_texts]
                      + [i.title + " " + (i.brand or "") for i in dataset.items.values()])  # fmt: skip
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "precision": resolve_precision("auto", "cuda").name, "hardware": hardware_facts()}  # fmt: skip
    for scorer_name in ("bi-encoder", "cross-encoder"):
        settings = FitSettings(method="lora", scorer=scorer_name, base_model=base, valid_users=20, calibration_users=100,
                               scorer_config={"max_length": 128})  # fmt: skip
        started = time.perf_counter()
        scorer, result = fit_on_split(split, settings, TrainConfig(max_steps=60, batch_size=32, lr=2e-3, progress=False))
        params_on_cuda = all(p.is_cuda for p in scorer.parameters())
        before = evaluate_ranking(scorer.score, cases)["ndcg@10"]["mean"]
        folder = save_adapter(scorer, out / scorer_name)
        loaded = load_adapter(folder).to("cuda")
        users, items = [c.user_text for c in cases[:5] for _ in range(3)], [t for c in cases[:5] for t in c.candidate_texts[:3]]
        same = bool((abs(loaded.score(users, items) - scorer.score(users, items)) < 1e-3).all())
        report[scorer_name] = {
            "params_on_cuda": params_on_cuda, "steps": result.steps, "train_seconds": round(result.seconds, 1),
            "train_pairs_per_s": round(result.pairs_per_second, 1), "ndcg@10": round(before, 4),
            "reload_scores_match": same, "wall_seconds": round(time.perf_counter() - started, 1),
            "calibrated": bool(result.calibration), "trained_precision": result.precision,
        }  # fmt: skip
    print("GPU-CHECK " + json.dumps(report), flush=True)
    write_json_report(out / "gpu_check.json", report)
    scratch.cleanup()


if __name__ == "__main__":
    main()
