"""Approximate (FAISS) against exact item retrieval on a synthetic catalog: recall@k, latency, build time, memory.

The catalog is ``--items`` unit vectors of ``--dim`` dimensions around ``--clusters`` random
centres (seed fixed), so it has the topical structure real item embeddings have; queries are
catalog items with fresh noise, like a user close to what they clicked. Every figure goes
through the library's own :class:`~coldstart_peft.retrieval.index.ItemIndex`, so ANN results
include its exact rescoring of FAISS's candidates:

The defaults are the 1M-item run; ``--items 50000`` is a quick check.

* ``recall_at_k``: mean share of the exact top ``--k`` that the ANN top ``--k`` holds.
* ``batch1_ms``: ``index.search(query, n=k)`` per query, median and p95 over ``--queries``
  (exact search over ``--exact-queries``, as each reads the whole catalog).
* ``batch64_ms``: ``index.search_batch(queries, n=k)`` per batch of ``--batch``, median and p95.
* ``build_s``: building the FAISS index (``ItemIndex.prepare``); exact search builds nothing.
* ``index_mib``: the FAISS index in FAISS's binary format, on top of the float32 rows every
  index keeps; ``rss_gib``: the process's resident memory after the build.

Run it on a quiet machine: the machine section records the load average at start and end.

Example:
    python benchmarks/ann.py --out benchmarks/results/ann
    python benchmarks/ann.py --items 50000 --label "smoke run under load" --out benchmarks/results/ann-smoke
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from pathlib import Path

import faiss
import torch
import torch.nn.functional as F

from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import environment_info, git_revision
from coldstart_peft.retrieval import ann
from coldstart_peft.retrieval.index import ItemIndex


class RowEncoder:
    """Encodes the text ``"<row>"`` as that row of the synthetic catalog (no model involved)."""

    def __init__(self, vectors: torch.Tensor):
        self.vectors, self.scale = vectors, torch.tensor(1.0)

    def encode(self, texts, batch_size=128, progress=False):
        return self.vectors[torch.tensor([int(t) for t in texts])]


def synthetic(items: int, dim: int, clusters: int, noise: float, seed: int) -> torch.Tensor:
    """``items`` unit vectors around ``clusters`` random unit centres, built in chunks to bound memory."""
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(clusters, dim, generator=g), dim=-1)
    out = torch.empty(items, dim)
    for start in range(0, items, 65536):
        n = min(65536, items - start)
        points = centres[torch.randint(0, clusters, (n,), generator=g)] + noise * torch.randn(n, dim, generator=g) / dim**0.5
        out[start : start + n] = F.normalize(points, dim=-1)
    return out


def rss_gib() -> float:
    """Resident memory of this process now (Linux), in GiB."""
    with open("/proc/self/status") as handle:
        kib = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    return kib / 2**20


def peak_rss_gib() -> float:
    """The largest resident memory this process has had (Linux), in GiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def quantiles(samples: list[float]) -> dict:
    """Median and 95th percentile of ``samples`` in milliseconds."""
    ms = sorted(1000 * s for s in samples)
    return {"median": statistics.median(ms), "p95": ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)], "n": len(ms)}


def latencies(index: ItemIndex, queries: torch.Tensor, k: int, batch: int, single: int) -> dict:
    """Per-query (batch 1, over ``single`` queries) and per-batch search times."""
    index.search(queries[0], n=k)  # warm-up: first-touch of the pages, thread pools
    times = []
    for q in queries[:single]:
        start = time.perf_counter()
        index.search(q, n=k)
        times.append(time.perf_counter() - start)
    batches = []
    for lo in range(0, len(queries) - batch + 1, batch):
        start = time.perf_counter()
        index.search_batch(queries[lo : lo + batch], n=k)
        batches.append(time.perf_counter() - start)
    return {"batch1_ms": quantiles(times), f"batch{batch}_ms": quantiles(batches) if batches else None}


def recall(index: ItemIndex, queries: torch.Tensor, truth: list[set[str]], k: int, batch: int) -> float:
    """Mean share of each exact top ``k`` found by ``index``."""
    found = []
    for lo in range(0, len(queries), batch):
        found += index.search_batch(queries[lo : lo + batch], n=k)
    return sum(len(t & {i for i, _ in f}) / len(t) for t, f in zip(truth, found)) / len(truth)


def parse_configs(text: str, items: int) -> list[tuple[str, list[int]]]:
    """``"IVF{lists},Flat:8,16;HNSW32,Flat:64"`` -> ``[(factory, [nprobe or efSearch, ...]), ...]``."""
    lists = ann.default_lists(items)
    configs = []
    for part in filter(None, text.split(";")):
        factory, _, sweep = part.partition(":")
        configs.append((factory.replace("{lists}", str(lists)), [int(v) for v in sweep.split(",") if v]))
    return configs


def set_sweep(index: ItemIndex, value: int) -> None:
    """Set the per-query search effort: ``nprobe`` for IVF, ``efSearch`` for HNSW."""
    searcher = index._searcher  # the benchmark sweeps a setting of the built index instead of rebuilding it
    if searcher.ivf is not None:
        searcher.nprobe = value
    else:
        searcher.ef_search = value


def machine() -> dict:
    """What the figures were measured on."""
    env = environment_info()
    return {**env, "cpu_model": env["hardware"]["cpu_model"], "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "faiss": faiss.__version__,
            "faiss_threads": faiss.omp_get_max_threads(), "torch": torch.__version__, "platform": platform.platform(),
            "load_average": os.getloadavg()}  # fmt: skip


def markdown(report: dict) -> str:
    """The report as a short markdown table."""
    s = report["settings"]
    lines = [f"# ANN vs exact retrieval: {s['items']:,} items x {s['dim']} dims, recall@{s['k']}", ""]
    if s.get("label"):
        lines += [f"**{s['label']}**", ""]
    m = report["machine_start"]
    lines += [f"CPU {m['cpu_model']} ({m['cpu_capability']}), {m['cores']} cores, torch {m['torch']} "
              f"({m['torch_threads']} threads), faiss {m['faiss']} ({m['faiss_threads']} threads), commit "
              f"{report['git']['commit']}{' (dirty)' if report['git']['dirty'] else ''}; load average "
              f"{m['load_average'][0]:.1f} at start, {report['machine_end']['load_average'][0]:.1f} at end.", "",
              f"| index | setting | recall@{s['k']} | batch 1 median / p95 ms | batch {s['batch']} median / p95 ms "
              "| build s | FAISS MiB | RSS GiB |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in report["results"]:
        b1, bb = row["batch1_ms"], row[f"batch{s['batch']}_ms"]
        bb_text = f"{bb['median']:.2f} / {bb['p95']:.2f}" if bb else "-"
        lines.append(f"| {row['index']} | {row.get('setting') or '-'} | {row['recall_at_k']:.4f} | "
                     f"{b1['median']:.2f} / {b1['p95']:.2f} | {bb_text} | {row.get('build_s', 0):.1f} | "
                     f"{row.get('index_mib', 0):.0f} | {row['rss_gib']:.2f} |")  # fmt: skip
    lines += ["", f"Peak RSS {report['peak_rss_gib']:.2f} GiB; total wall time {report['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Recall against batch-1 median latency, one line per FAISS index, exact as a point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["index"] for r in report["results"]):
        rows = [r for r in report["results"] if r["index"] == name]
        ax.plot([r["batch1_ms"]["median"] for r in rows], [r["recall_at_k"] for r in rows], "o-", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 query latency, median (ms, log)")
    ax.set_ylabel(f"recall@{report['settings']['k']}")
    ax.set_title(f"{report['settings']['items']:,} items x {report['settings']['dim']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=None,
                        help="topic centres of the synthetic catalog (default: one per 1,000 items, so the structure "
                             "a query sees is the same at every --items)")  # fmt: skip
    parser.add_argument("--noise", type=float, default=1.0,
                        help="spread of items around their centre (1.0: an item's cosine to its centre is about 0.7)")
    parser.add_argument("--query-noise", type=float, default=0.5, help="spread of a query around the item it starts from")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=200, help="batch-1 exact queries timed (each scans all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--configs", default="IVF{lists},Flat:1,2,4,8,16,32,64;IVF{lists},SQ8:4,16,64",
                        help="';'-separated FAISS factory strings, each ':' its nprobe (IVF) or efSearch (HNSW) sweep; "
                             "{lists} is the library's default list count (about sqrt(items))")  # fmt: skip
    parser.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: theirs)")
    parser.add_argument("--label", default="", help="written at the top of the report (e.g. 'smoke run under load')")
    parser.add_argument("--out", default="benchmarks/results/ann")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    began = time.perf_counter()
    out = Path(args.out)
    check_report_files(out, "ann", plots=("ann.png",))
    report = {"settings": vars(args), "git": git_revision(__file__), "machine_start": machine(), "results": []}

    args.clusters = args.clusters or max(1, args.items // 1000)
    vectors = synthetic(args.items, args.dim, args.clusters, args.noise, args.seed)
    g = torch.Generator().manual_seed(args.seed + 1)
    picks = torch.randint(0, args.items, (args.queries,), generator=g)
    queries = F.normalize(vectors[picks] + args.query_noise * torch.randn(args.queries, args.dim, generator=g) / args.dim**0.5, dim=-1)
    encoder = RowEncoder(vectors)
    texts = {f"i{r}": str(r) for r in range(args.items)}

    exact = ItemIndex(encoder, "synthetic", kind="exact")
    exact.add(texts)
    truth = []
    for lo in range(0, args.queries, args.batch):
        truth += [{i for i, _ in hits} for hits in exact.search_batch(queries[lo : lo + args.batch], n=args.k)]
    row = {"index": "exact", "recall_at_k": 1.0, **latencies(exact, queries, args.k, args.batch, args.exact_queries),
           "rss_gib": rss_gib()}  # fmt: skip
    report["results"].append(row)
    print(f"exact: batch-1 median {row['batch1_ms']['median']:.2f} ms", flush=True)
    del exact

    for factory, sweep in parse_configs(args.configs, args.items):
        index = ItemIndex(encoder, "synthetic", kind="ann", ann_factory=factory)
        index.add(texts)
        start = time.perf_counter()
        index.prepare()
        build_s = time.perf_counter() - start
        index_mib = len(faiss.serialize_index(index._searcher.index)) / 2**20
        for value in sweep or [None]:
            if value is not None:
                set_sweep(index, value)
            setting = f"{'nprobe' if index._searcher.ivf is not None else 'efSearch'}={value}" if value else None
            row = {"index": factory, "setting": setting, "build_s": build_s, "index_mib": index_mib,
                   "recall_at_k": recall(index, queries, truth, args.k, args.batch),
                   **latencies(index, queries, args.k, args.batch, args.queries), "rss_gib": rss_gib()}  # fmt: skip
            report["results"].append(row)
            print(f"{factory} {setting}: recall@{args.k} {row['recall_at_k']:.4f}, batch-1 median "
                  f"{row['batch1_ms']['median']:.2f} ms (build {build_s:.1f} s)", flush=True)  # fmt: skip
        del index

    report["machine_end"] = {"load_average": os.getloadavg()}
    report["peak_rss_gib"] = peak_rss_gib()
    report["wall_s"] = time.perf_counter() - began
    write_report_files(out, "ann", report, markdown(report))
    plot(report, out / "ann.png")
    print(markdown(report))


if __name__ == "__main__":
    main()
