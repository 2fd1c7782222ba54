"""Speed of an AdapterBank on the default MiniLM: switching, adding adapters, mixed batches, merging.

Figures (all medians of ``--repeats`` runs):

* ``switch_ms``: ``bank.activate(domain)`` between two loaded domains (adapter and head).
* ``add_ms[n]``: ``bank.add`` of one more adapter folder (full validation included) with ``n``
  adapters already loaded, then ``bank.remove`` (not timed), for n in ``--counts``; the banks of
  every size stay loaded and take turns within each of ``--add-rounds`` rounds.
* ``swap_ms[n]``: hot swap, ``bank.add(domain, folder, replace=True)`` of a loaded domain (the
  new adapter attached, then the old one deleted) with ``n`` adapters loaded, in the same rounds.
* ``load_s[n]``: ``AdapterBank.load`` of a bank of ``n`` domains.
* throughput, pairs per second for ``--pairs`` pairs in one batch: all from one domain; spread
  over ``--mixed-domains`` domains in one mixed batch (``mixed=True``); the same grouped by
  domain (``mixed=False``); and the merged-weights scorer of one domain (methods that merge).

The adapters are LoRA with perturbed weights (no training: speed does not depend on values).
On a shared machine the timings move with the load of other processes; the machine section
records the load average at the start and the end of the run.

Example:
    python benchmarks/adapters.py --out runs/adapters
    python benchmarks/adapters.py --method ia3 --counts 1,10 --repeats 3 --out /tmp/adapters
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import peft
import torch
import transformers

from coldstart_peft import __version__, adapter_bytes, apply_method, build_scorer, make_method, save_adapter
from coldstart_peft.bank import AdapterBank, BankWriter
from coldstart_peft.demo import generate_world
from coldstart_peft.hardware import resolve_precision
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision


def machine() -> dict:
    """What the figures were measured on."""
    from coldstart_peft.hardware import hardware_facts

    facts = hardware_facts()
    return {"cpu": facts["cpu_model"], **facts, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "coldstart_peft": __version__, "load_average": os.getloadavg()}  # fmt: skip


def make_adapters(folder: Path, method: str, n: int, scorer_config: dict, base_model: str | None = None) -> list[Path]:
    """Save ``n`` adapters of ``method`` on ``base_model`` (the bundled MiniLM for ``None``) with distinct perturbed weights."""
    paths = []
    for index in range(n):
        torch.manual_seed(index)
        scorer = build_scorer("cross-encoder", base_model, scorer_config)
        apply_method(scorer, make_method(method), total_steps=10)
        with torch.no_grad():
            for parameter in scorer.parameters():
                if parameter.requires_grad:
                    parameter.add_(torch.randn_like(parameter) * 0.02)
        paths.append(save_adapter(scorer, folder / f"adapter-{index}"))
    return paths


def build_bank(root: Path, paths: list[Path]) -> Path:
    """A bank folder whose domains are ``paths`` (folders copied in by the writer's layout)."""
    from coldstart_peft.artifact import load_adapter

    writer = None
    for index, path in enumerate(paths):
        scorer = load_adapter(path)
        writer = writer or BankWriter(root, scorer)
        writer.save_domain(f"domain {index:02d}", scorer)
    return root


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn``."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, write ``adapters.json`` and ``adapters.md`` under ``--out``, and return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/adapters")
    parser.add_argument("--method", default="lora")
    parser.add_argument("--counts", default="1,10,50", help="adapters loaded when one more is added")
    parser.add_argument("--repeats", type=int, default=30, help="interleaved rounds per throughput figure (at 5, mixed/single moved by +-0.05 between runs)")
    parser.add_argument("--add-rounds", type=int, default=20, help="rounds of add and hot swap per bank size")
    parser.add_argument("--pairs", type=int, default=64, help="pairs per throughput batch")
    parser.add_argument("--mixed-domains", default="4,16", help="domains spread over one mixed batch (comma-separated)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", default="auto", help="scorer precision: auto (bf16 where the hardware computes it natively, else fp32), fp32, bf16")
    parser.add_argument("--base-model", default=None, help="HF model name or folder (default: the bundled MiniLM)")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",")]
    out = Path(args.out)
    check_report_files(out, "adapters")
    choice = resolve_precision(args.precision)
    report = {"method": args.method, "settings": vars(args), "machine_start": machine(), **git_revision(__file__),
              "precision": {"name": choice.name, "reason": choice.reason}}  # fmt: skip
    scorer_config = {"max_length": args.max_length}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = make_adapters(tmp / "adapters", args.method, max(counts) + 1, scorer_config, args.base_model)
        extra, paths = paths[-1], paths[:-1]
        report["adapter_bytes"] = adapter_bytes(extra)

        load_s, banks = {}, {}
        for count in counts:
            root = build_bank(tmp / f"bank-{count}", paths[:count])
            start = time.perf_counter()
            banks[count] = AdapterBank.load(root)
            load_s[count] = time.perf_counter() - start
            banks[count].add("extra", extra)  # warm-up: the first add pays for imports and allocations
            banks[count].remove("extra")
        # Every bank stays loaded and the sizes take turns within each round, so a drift in the
        # process (its heap grows with each bank built) or in the machine's load hits them alike.
        adds: dict[int, list[float]] = {count: [] for count in counts}
        swaps: dict[int, list[float]] = {count: [] for count in counts}
        for _ in range(args.add_rounds):
            for count, bank in banks.items():
                start = time.perf_counter()
                bank.add("extra", extra)
                adds[count].append(time.perf_counter() - start)
                bank.remove("extra")
                start = time.perf_counter()
                bank.add(bank.domains[0], extra, replace=True)
                swaps[count].append(time.perf_counter() - start)
        add_ms = {count: 1000 * statistics.median(v) for count, v in adds.items()}
        swap_ms = {count: 1000 * statistics.median(v) for count, v in swaps.items()}
        for count in counts:
            print(f"{count:3d} loaded: bank load {load_s[count]:.2f}s, one more adapter {add_ms[count]:.1f} ms, "
                  f"hot swap {swap_ms[count]:.1f} ms", flush=True)  # fmt: skip
        bank = banks.pop(max(counts))
        banks.clear()  # the smaller banks' models are not needed for the throughput figures
        report["load_s"], report["add_ms"], report["swap_ms"] = load_s, add_ms, swap_ms

        bank.scorer.precision = args.precision
        first, second = bank.domains[:2]
        bank.activate(first)
        bank.activate(second)
        switches = 200

        def switch_many():
            for _ in range(switches // 2):
                bank.activate(first)
                bank.activate(second)

        report["switch_ms"] = 1000 * timed(switch_many, args.repeats) / switches
        print(f"switch: {report['switch_ms']:.3f} ms", flush=True)

        world = generate_world(n_items=300, n_users=args.pairs, seed=0)
        rng = random.Random(0)
        users = ["Clicked: " + "; ".join(world.items[i].title for i in seq[:5]) for seq in world.sequences[: args.pairs]]
        items = [world.items[rng.randrange(len(world.items))].text() for _ in users]
        runs = {"single_domain": lambda: bank.score(users, items, domains=first, batch_size=args.pairs)}
        spreads = {}
        for k in (int(n) for n in str(args.mixed_domains).split(",")):
            spread = spreads[k] = [bank.domains[i % min(k, len(bank.domains))] for i in range(len(users))]
            if bank.method.supports_mixed_batches:
                # The gathered multi-adapter LoRA path (the default) and peft's adapter_names path, side by side.
                runs[f"mixed_batch_{k}"] = lambda s=spread: bank.score(users, items, domains=s, batch_size=args.pairs, mixed=True)
                runs[f"mixed_batch_{k}_peft"] = lambda s=spread: bank.score(users, items, domains=s, batch_size=args.pairs,
                                                                            mixed=True, batched_lora=False)  # fmt: skip
            runs[f"grouped_by_domain_{k}"] = lambda s=spread: bank.score(users, items, domains=s, batch_size=args.pairs, mixed=False)
        if bank.method.supports_merge:
            merged = bank.merged_scorer(first)
            merged.precision = args.precision
            runs["merged_single_domain"] = lambda: merged.score(users, items, batch_size=args.pairs)
        for run in runs.values():
            run()  # warm-up
        # Interleaved rounds: every variant sees the same drift in the machine's load.
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                start = time.perf_counter()
                run()
                samples[name].append(time.perf_counter() - start)
        throughput = {name: len(users) / statistics.median(times) for name, times in samples.items()}
        for name, value in throughput.items():
            print(f"{name}: {value:.1f} pairs/s", flush=True)
        report["pairs_per_second"] = throughput
        report["mixed_vs_single"] = {name.removeprefix("mixed_batch_"): value / throughput["single_domain"]
                                     for name, value in throughput.items() if name.startswith("mixed_batch_")}  # fmt: skip
    report["machine_end"] = machine()
    write_report_files(out, "adapters", report, markdown(report))
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The report as a markdown table."""
    m = report["machine_start"]
    lines = [f"# AdapterBank speed: {report['method']} on MiniLM ({m['cpu']}, {m['torch_threads']} torch threads)", "",
             f"CPU capability {m['cpu_capability']}; precision {report['precision']['name']} "
             f"({report['precision']['reason']}); commit {report['commit']}{' (dirty)' if report['dirty'] else ''}.", "",
             f"Load average at start/end: {m['load_average']} / {report['machine_end']['load_average']} "
             "(other processes share this machine; timings are noisy).", "",
             "| figure | value |", "|---|---|", f"| adapter size | {report['adapter_bytes']:,} bytes |",
             f"| switch active domain | {report['switch_ms']:.3f} ms |"]  # fmt: skip
    for count, value in report["add_ms"].items():
        lines.append(f"| add one adapter with {count} loaded | {value:.1f} ms |")
    for count, value in report.get("swap_ms", {}).items():
        lines.append(f"| hot-swap one adapter with {count} loaded | {value:.1f} ms |")
    for count, value in report["load_s"].items():
        lines.append(f"| load a bank of {count} | {value:.2f} s |")
    for name, value in report["pairs_per_second"].items():
        lines.append(f"| {name.replace('_', ' ')} | {value:.1f} pairs/s |")
    for name, ratio in report.get("mixed_vs_single", {}).items():
        domains, _, path = name.partition("_")
        lines.append(f"| mixed batch of {domains} domains / single-domain throughput ({path or 'gathered LoRA'}) | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
