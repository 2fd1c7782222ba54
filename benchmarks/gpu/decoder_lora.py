"""LoRA on a random-weight ~0.5B decoder in bf16: training tokens/s, peak GPU memory, adapter size.

The decoder is Qwen2.5-0.5B's shape (24 layers, hidden 896, 14 heads, 2 key-value heads, a
151,936-token vocabulary; about 494M parameters) with random weights, saved in bf16 and loaded
through the library (``--load-option dtype=bfloat16``), so nothing is downloaded. The tokenizer
is a byte-level BPE trained here on the synthetic words: its ids are a small part of the
vocabulary, which changes no cost that depends on the sequence length (the report counts the
prompts' real tokens). The generative scorer trains LoRA on synthetic yes/no
pairs of a fixed prompt length with the library's own loop (``coldstart_peft.training.train``);
a short warm-up run comes first, so CUDA start-up is not in the figure.

``--size tiny`` builds a two-layer model of the same family, which lets the code path run on a
CPU (``tests/benchmarks/test_decoder_gpu_check.py``); only ``--size 0.5b`` on a GPU gives the figures.
Prints one ``DECODER-LORA {json}`` line and writes ``decoder_lora.json`` under ``--out``.

Example:
    python benchmarks/gpu/decoder_lora.py --out runs/decoder-lora
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

SIZES = {
    "0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "vocab_size": 151936},
    "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "num_key_value_heads": 1, "vocab_size": 512},
}  # fmt: skip
WORDS = [f"w{i}" for i in range(400)]


def save_decoder(folder: Path, size: str, dtype: torch.dtype) -> int:
    """Save a random Qwen2 causal LM of ``size`` and a word-level tokenizer; return its parameter count."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    # Byte-level BPE, as Qwen2's own: transformers loads any tokenizer beside a qwen2 config as a
    # Qwen2Tokenizer, which keeps only a BPE's vocabulary and merges.
    corpus = [f"User history: {' '.join(WORDS[i : i + 20])}\nCandidate: {WORDS[i]}\nWill the user buy it? Answer: Yes No"
              for i in range(0, len(WORDS), 5)]  # fmt: skip
    backend = ByteLevelBPETokenizer()
    backend.train_from_iterator(corpus, vocab_size=800, min_frequency=1, special_tokens=["<|endoftext|>"], show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(**SIZES[size], max_position_embeddings=4096, tie_word_embeddings=True, bos_token_id=1,
                         eos_token_id=1)  # fmt: skip
    model = Qwen2ForCausalLM(config).to(dtype)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def synthetic_groups(n: int, words_per_user: int, seed: int = 0):
    """``n`` one-pair groups (half labeled 1) whose prompts all have about the same length."""
    from coldstart_peft import TrainGroup

    rng = random.Random(seed)
    return [TrainGroup(" ".join(rng.choices(WORDS, k=words_per_user)), [" ".join(rng.choices(WORDS, k=8))], [float(i % 2)])
            for i in range(n)]  # fmt: skip


def prompt_tokens(scorer, groups) -> int:
    """Real (unpadded) tokens of every training prompt, as the scorer tokenizes them."""
    batch = scorer.collate(groups)
    return int(batch["attention_mask"].sum())


def check_scratch(out: Path) -> None:
    """Refuse, before any work, an ``out`` whose report, ``base/`` or ``adapter/`` this script did not write.

    ``base/`` (the random decoder, kept for the FSDP run of ``run_decoder_checks.sh``) and
    ``adapter/`` are rewritten on every run; a folder holding this script's own report is one it wrote.

    Raises:
        OverwriteRefusedError: ``out`` holds a foreign ``decoder_lora.json``, or ``base/`` or
            ``adapter/`` without this script's report beside them.
    """
    from coldstart_peft.errors import OverwriteRefusedError
    from coldstart_peft.outputs import check_report_files, is_report_file

    check_report_files(out, "decoder_lora")
    taken = [name for name in ("base", "adapter") if (out / name).exists()]
    if taken and not is_report_file(out / "decoder_lora.json"):
        raise OverwriteRefusedError(f"{out} already holds {' and '.join(taken)}/, which this check did not write "
                                    "(no decoder_lora.json of its own beside them); pass an empty or new --out")  # fmt: skip


def run(args) -> dict:
    from coldstart_peft import TrainConfig, save_adapter, train
    from coldstart_peft.artifact import adapter_bytes
    from coldstart_peft.assembly import apply_method, build_scorer, make_method
    from coldstart_peft.outputs import write_json_report

    out = Path(args.out)
    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        raise SystemExit("no CUDA device; pass --allow-cpu (with --size tiny) to run the code path on the CPU")
    check_scratch(out)
    dtype = torch.bfloat16 if cuda else torch.float32
    params = save_decoder(out / "base", args.size, dtype)
    scorer = build_scorer("generative", str(out / "base"), {"max_length": 4096},
                          load_options={"dtype": "bfloat16" if cuda else "float32"})  # fmt: skip
    method = make_method("lora", {"r": args.rank})
    apply_method(scorer, method)
    config = dict(batch_size=args.batch_size, lr=1e-4, precision="bf16" if cuda else "fp32", progress=False)
    train(scorer, method, synthetic_groups(2 * args.batch_size, args.seq_len, seed=1), None, TrainConfig(epochs=1, **config))
    groups = synthetic_groups(args.steps * args.batch_size, args.seq_len)
    tokens = prompt_tokens(scorer, groups)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = train(scorer, method, groups, None, TrainConfig(epochs=1, **config))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    folder = save_adapter(scorer, out / "adapter")
    report = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu", "size": args.size, "base_params": params,
        "dtype": str(next(scorer.backbone.parameters()).dtype), "trained_precision": result.precision,
        "steps": result.steps, "batch_size": args.batch_size, "prompt_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1), "seconds": round(seconds, 2),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
        "adapter_bytes": adapter_bytes(folder), "trainable_params": result.trainable_params,
        "loss_first": result.losses[0] if result.losses else None, "loss_last": result.losses[-1] if result.losses else None,
        "torch": torch.__version__,
    }  # fmt: skip
    print("DECODER-LORA " + json.dumps(report), flush=True)
    write_json_report(out / "decoder_lora.json", report)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="0.5b")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128, help="words of user history per prompt (about 4 tokens each)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (the code path only; no figures)")
    parser.add_argument("--out", default="runs/decoder-lora")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
