"""What each registered method costs on the default MiniLM backbone: parameters, bytes, time.

For every method: trainable parameters (the method's own, and with the scorer head), the size
of a saved adapter folder on disk, and seconds per optimizer step of the training engine with
its default settings (bf16 autocast) on batches of 8 groups x 4 items from the demo world. The
step time is the median gap between consecutive ``on_step`` calls after a few warm-up steps,
so loading, saving and the first, slower steps are left out.

Example:
    python benchmarks/method_costs.py --out runs/method-costs
    python benchmarks/method_costs.py --methods lora,prefix --steps 10 --out /tmp/costs
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from coldstart_peft import (
    TrainConfig,
    TrainGroup,
    adapter_bytes,
    apply_method,
    build_scorer,
    count_parameters,
    default_host,
    make_method,
    save_adapter,
    train,
)
from coldstart_peft.demo import generate_world
from coldstart_peft.outputs import check_report_files, write_report_files

METHODS = ["full", "lora", "adalora", "bottleneck", "prefix", "ia3", "prompt", "dora"]


def demo_groups(n_groups: int, items_per_group: int = 4, seed: int = 0) -> list[TrainGroup]:
    """Groups of (five-click context, next click + random negatives) from the demo world."""
    world = generate_world(n_items=300, n_users=max(50, n_groups), seed=seed)
    rng = random.Random(seed)
    groups = []
    for sequence in world.sequences[:n_groups]:
        context = "Clicked: " + "; ".join(world.items[i].title for i in sequence[:5])
        negatives = rng.sample([i for i in range(len(world.items)) if i not in sequence], items_per_group - 1)
        texts = [world.items[i].text() for i in (sequence[5 % len(sequence)], *negatives)]
        groups.append(TrainGroup(context, texts, [1.0] + [0.0] * (items_per_group - 1)))
    return groups


def step_clock(method) -> list[float]:
    """Make ``method`` record the time of every optimizer step; returns the list it appends to."""
    stamps: list[float] = []
    on_step = method.on_step

    def timed(model, step):
        on_step(model, step)
        stamps.append(time.perf_counter())

    method.on_step = timed
    return stamps


def measure(name: str, groups: list[TrainGroup], steps: int, warmup: int, out: Path) -> dict:
    """Train ``name`` for ``warmup + steps`` steps and report its costs."""
    torch.manual_seed(0)
    scorer = build_scorer()
    backbone_total = sum(p.numel() for p in scorer.backbone.parameters())
    method = make_method(name)
    config = TrainConfig(max_steps=warmup + steps, batch_size=8, progress=False)
    apply_method(scorer, method, total_steps=warmup + steps)
    method_params = sum(p.numel() for p in scorer.backbone.parameters() if p.requires_grad)
    trainable, _ = count_parameters(scorer)

    stamps = step_clock(method)
    result = train(scorer, method, groups, None, config)
    gaps = [b - a for a, b in zip(stamps[warmup - 1 :], stamps[warmup:])] if warmup else []
    folder = save_adapter(scorer, out / "adapters" / name)
    return {
        "method": name,
        "method_params": method_params,
        "trainable_params": trainable,
        "backbone_params": backbone_total,
        "method_share": method_params / backbone_total,
        "adapter_bytes": adapter_bytes(folder),
        "seconds_per_step": statistics.median(gaps) if gaps else result.seconds / result.steps,
        "steps_timed": len(gaps),
        "supports_mixed_batches": type(method).supports_mixed_batches,
        "supports_merge": type(method).supports_merge,
    }


def markdown(rows: list[dict]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| method | trainable params (method) | % of backbone | + head | adapter on disk | s / step | mixed batches | merge |",
        "|---|---:|---:|---:|---:|---:|:-:|:-:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['method_params']:,} | {100 * r['method_share']:.3f}% | {r['trainable_params']:,} "
            f"| {r['adapter_bytes'] / 1024:,.1f} KiB | {r['seconds_per_step']:.3f} "
            f"| {'yes' if r['supports_mixed_batches'] else 'no'} | {'yes' if r['supports_merge'] else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for method_costs.json and .md")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated method names")
    parser.add_argument("--steps", type=int, default=8, help="timed optimizer steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="untimed optimizer steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    known = set(default_host().methods.names())
    unknown = sorted(set(names) - known)
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {sorted(known)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="method-costs-"))
    check_report_files(out, "method_costs")
    groups = demo_groups(8 * (args.steps + args.warmup))
    # The adapters are only weighed: a full fine-tune's 90 MB stays out of the results folder.
    with tempfile.TemporaryDirectory(prefix="method-costs-") as scratch:
        rows = [measure(name, groups, args.steps, args.warmup, Path(scratch)) for name in names]
    report = {
        "rows": rows,
        "setup": {
            "batch": "8 groups x 4 items", "precision": "bf16 autocast (engine default)",
            "steps": args.steps, "warmup": args.warmup, "torch_threads": torch.get_num_threads(),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "machine": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
    }
    write_report_files(out, "method_costs", report, markdown(rows) + "\n")
    print(markdown(rows))
    print(f"\nwritten to {out / 'method_costs.json'} and .md")


if __name__ == "__main__":
    main()
