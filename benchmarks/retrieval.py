"""Full-catalog retrieval on Beauty cold users: quality of zero-shot, LoRA and reranking, and speed.

Quality: Recall@K / NDCG@K over all 12,101 items (the user's known items excluded) for the
zero-shot bi-encoder, a bi-encoder fine-tuned with LoRA under a time budget, and that
bi-encoder's top 50 reranked by a cross-encoder (LoRA, or zero-shot with --rerank-train-seconds 0).
Adapters passed with --bi-encoder-adapter / --reranker-adapter are used instead of training.

Speed (medians of --runs repetitions, on this machine): catalog encoding in items/s (bf16
autocast and fp32), one user's encoding, top-100 retrieval after the user is encoded, and
end-to-end ``Recommender.recommend`` with and without reranking 50 candidates.

Results go to <out>/retrieval.json and <out>/retrieval.md.

Example:
    OMP_NUM_THREADS=1 python benchmarks/retrieval.py --train-seconds 360 --out runs/retrieval
    python benchmarks/retrieval.py --speed-only --bi-encoder-adapter runs/retrieval/bi-encoder-lora \\
        --reranker-adapter runs/retrieval/cross-encoder-lora --threads 2 --out runs/retrieval-quiet
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from coldstart_peft import Recommender, build_scorer, load_adapter, save_adapter
from coldstart_peft.data import TextSerializer, cold_user_split, load_dataset
from coldstart_peft.evaluation import evaluate_full_catalog
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision
from coldstart_peft.recipes import FitSettings, fit_on_split
from coldstart_peft.retrieval import ItemIndex
from coldstart_peft.training import TrainConfig

KS = (10, 20, 50)


def machine() -> dict:
    """What the numbers were measured on, including how busy the machine was."""
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "load_average": os.getloadavg()}  # fmt: skip


def fit(split, scorer_name: str, seconds: float, steps: int | None, out: Path, seed: int) -> Path:
    """Train ``scorer_name`` + LoRA for ``steps`` steps or ``seconds`` on the split's train users and save it.

    Give ``steps`` when the time budget covers a small part of an epoch: the learning-rate
    schedule is planned over the steps, so warm-up and decay then fit the run.
    """
    # The default recipe's priors and calibration: retrieval ranks by encoder + priors (CatalogPrior).
    settings = FitSettings(method="lora", scorer=scorer_name, n_negatives=3 if scorer_name == "bi-encoder" else 7,
                           valid_users=100 if scorer_name == "bi-encoder" else 50, valid_candidates=20)  # fmt: skip
    config = TrainConfig(epochs=1, batch_size=32 if scorer_name == "bi-encoder" else 8, lr=1e-3,
                         time_budget_s=seconds, max_steps=steps, seed=seed, eval_every=max(10, (steps or 600) // 3),
                         early_stopping_patience=4)  # fmt: skip
    scorer, result = fit_on_split(split, settings, config)
    print(f"{scorer_name} + lora: {result.steps} steps, {result.train_pairs} pairs in {result.seconds:.0f}s")
    return save_adapter(scorer, out, extra={"steps": result.steps, "seconds": result.seconds,
                                            "train_pairs": result.train_pairs, "budget_s": seconds, "max_steps": steps})  # fmt: skip


def build_index(encoder, texts: dict[str, str]) -> tuple[ItemIndex, float]:
    """Encode the catalog (bf16 autocast); returns the index and items per second."""
    index = ItemIndex(encoder, "benchmark", progress=True)
    started = time.perf_counter()
    index.add(texts)
    return index, len(texts) / (time.perf_counter() - started)


def quality(name: str, encoder, split, texts, args, reranker=None) -> dict:
    """Full-catalog metrics of one encoder (with its priors, and alone), and with an optional reranker."""
    index, items_per_s = build_index(encoder, texts)
    report = evaluate_full_catalog(encoder, split, index=index, max_cases=args.max_test_users, ks=KS, progress=True)
    report["catalog_items_per_s"] = round(items_per_s, 1)
    if report["priors"]:
        alone = evaluate_full_catalog(encoder, split, index=index, max_cases=args.max_test_users, ks=KS, priors=False)
        report["encoder_alone"] = alone["retrieval"]
        print(f"{name}, encoder alone: ndcg@10 {alone['retrieval']['ndcg@10']['mean']:.4f}")
    if reranker is not None:
        report["with_rerank"] = evaluate_full_catalog(
            encoder, split, index=index, reranker=reranker, n_candidates=args.candidates,
            max_cases=args.rerank_users, ks=KS, progress=True,
        )  # fmt: skip
    print(f"{name}: recall@10 {report['retrieval']['recall@10']['mean']:.4f} ndcg@10 {report['retrieval']['ndcg@10']['mean']:.4f}")
    return report


def speed(encoder, reranker, dataset, split, args) -> dict:
    """Median timings of encoding, retrieval and end-to-end recommendation."""
    serializer = TextSerializer()
    texts = {i: serializer.item(item) for i, item in dataset.items.items()}
    sample = random.Random(0).sample(list(texts.values()), min(args.encode_sample, len(texts)))
    out: dict = {"encode_sample_items": len(sample)}
    for precision in ("bf16", "fp32"):
        encoder.precision = precision
        rates = []
        for _ in range(args.runs):
            started = time.perf_counter()
            encoder.encode(sample)
            rates.append(len(sample) / (time.perf_counter() - started))
        out[f"encode_items_per_s_{precision}"] = {"median": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}
    encoder.precision = "auto"
    index, _ = build_index(encoder, texts)
    records = split.test[: args.latency_users]
    user_texts = [serializer.user([dataset.items[i] for i in r.context]) for r in records]
    per_user = []
    for text in user_texts[:100]:
        started = time.perf_counter()
        encoder.encode([text])
        per_user.append(time.perf_counter() - started)
    out["encode_one_user_ms"] = round(1000 * statistics.median(per_user), 2)
    users = encoder.encode(user_texts)
    medians = []
    for _ in range(args.runs):
        times = []
        for row, record in enumerate(records):
            started = time.perf_counter()
            index.search(users[row], n=100, exclude=record.context)
            times.append(time.perf_counter() - started)
        medians.append(1000 * statistics.median(times))
    out["retrieve_top100_ms"] = {"median": round(statistics.median(medians), 3), "runs": [round(m, 3) for m in medians],
                                 "users": len(records), "items": len(index)}  # fmt: skip
    recommender = Recommender(encoder, index, dataset.items, reranker=reranker, n_candidates=args.candidates)
    for label, rerank in (("recommend_no_rerank_ms", False), (f"recommend_rerank{args.candidates}_ms", True)):
        medians = []
        for _ in range(args.runs):
            times = []
            for record in records[: args.e2e_users]:
                started = time.perf_counter()
                recommender.recommend(record.context, k=10, rerank=rerank)
                times.append(time.perf_counter() - started)
            medians.append(1000 * statistics.median(times))
        out[label] = {"median": round(statistics.median(medians), 1), "runs": [round(m, 1) for m in medians],
                      "users": min(args.e2e_users, len(records))}  # fmt: skip
    return out


def markdown(result: dict) -> str:
    """The quality and speed tables."""
    lines = [f"# Full-catalog retrieval on {result['dataset']} cold users (k={result['k_context']})", ""]
    lines += ["| model | users | Recall@10 | NDCG@10 | Recall@50 |", "|---|---|---|---|---|"]
    rows = []
    for name, report in result.get("quality", {}).items():
        if "encoder_alone" in report:
            rows.append((f"{name}, encoder alone", report["n_cases"], report["encoder_alone"]))
            name = f"{name} + priors ({', '.join(report['priors'])})"
        rows.append((name, report["n_cases"], report["retrieval"]))
        if "with_rerank" in report:
            rerank = report["with_rerank"]
            rows.append((f"{name}, same users as the next row", rerank["n_cases"], rerank["retrieval"]))
            rows.append((f"{name} + cross-encoder rerank of top {result['candidates']}", rerank["n_cases"], rerank["rerank"]))
    for label, n, summary in rows:
        cells = [f"{summary[m]['mean']:.4f} [{summary[m]['low']:.3f}, {summary[m]['high']:.3f}]"
                 for m in ("recall@10", "ndcg@10", "recall@50")]  # fmt: skip
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    if result.get("speed"):
        s = result["speed"]
        lines += ["", f"## Speed (medians of {result['runs']} runs)", "", "| measure | value |", "|---|---|"]
        for key, value in s.items():
            lines.append(f"| {key} | {value['median'] if isinstance(value, dict) else value} |")
    lines += ["", f"Machine: {result['machine']}", f"Budgets: {result.get('budgets')}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--k-context", type=int, default=3)
    parser.add_argument("--max-test-users", type=int, default=1000)
    parser.add_argument("--rerank-users", type=int, default=300, help="test users evaluated with reranking")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--train-seconds", type=float, default=360.0, help="LoRA bi-encoder training budget")
    parser.add_argument("--train-steps", type=int, default=None, help="LoRA bi-encoder optimizer steps (schedule length)")
    parser.add_argument("--rerank-train-steps", type=int, default=None, help="LoRA cross-encoder optimizer steps")
    parser.add_argument("--rerank-train-seconds", type=float, default=360.0, help="LoRA cross-encoder budget; 0: zero-shot")
    parser.add_argument("--bi-encoder-adapter", default=None)
    parser.add_argument("--reranker-adapter", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--encode-sample", type=int, default=1024)
    parser.add_argument("--latency-users", type=int, default=1000)
    parser.add_argument("--e2e-users", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality tables")
    parser.add_argument("--quality-only", action="store_true", help="skip the speed measurements")
    parser.add_argument("--no-rerank", action="store_true", help="no reranker: retrieval quality only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/retrieval")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    check_report_files(out, "retrieval")
    out.mkdir(parents=True, exist_ok=True)  # the adapters are trained into it first
    result = {"dataset": args.dataset, "k_context": args.k_context, "candidates": args.candidates, "runs": args.runs,
              "machine_at_start": machine()}  # fmt: skip
    dataset = load_dataset(args.dataset)
    split = cold_user_split(dataset, k=args.k_context, seed=args.seed, max_test_users=args.max_test_users)
    result["split_fingerprint"] = split.fingerprint()
    texts = {i: TextSerializer().item(item) for i, item in dataset.items.items()}
    bi_path = Path(args.bi_encoder_adapter) if args.bi_encoder_adapter else None
    if bi_path is None:
        bi_path = fit(split, "bi-encoder", args.train_seconds, args.train_steps, out / "bi-encoder-lora", args.seed)
    if args.no_rerank:
        reranker = None
    elif args.reranker_adapter:
        reranker = load_adapter(args.reranker_adapter)
    elif args.rerank_train_seconds > 0:
        reranker = load_adapter(fit(split, "cross-encoder", args.rerank_train_seconds, args.rerank_train_steps, out / "cross-encoder-lora", args.seed))
    else:
        reranker = build_scorer("cross-encoder")
        reranker.eval()
    fine_tuned = load_adapter(bi_path)
    result["budgets"] = {"bi_encoder": json.loads((bi_path / "coldstart.json").read_text())["extra"],
                         "reranker": None if reranker is None else getattr(reranker, "manifest", {}).get("extra", "zero-shot")}  # fmt: skip
    if not args.speed_only:
        zero_shot = build_scorer("bi-encoder")
        zero_shot.eval()
        result["quality"] = {
            "bi-encoder zero-shot": quality("zero-shot", zero_shot, split, texts, args),
            "bi-encoder + LoRA": quality("bi-encoder + LoRA", fine_tuned, split, texts, args, reranker=reranker),
        }
    if not args.quality_only:
        result["speed"] = speed(fine_tuned, reranker, dataset, split, args)
    result["machine"] = machine()
    result["hardware"] = hardware_facts()
    result["commit"] = git_revision(Path(__file__).resolve().parents[1])
    write_report_files(out, "retrieval", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
