"""Compare every registered method, and the no-fine-tuning baselines, on one cold-start split.

Same split, same seed, same budget for every method; each method trains in its own process so
its peak memory is its own. ``--split`` picks cold users, cold items or a held-out domain,
``--negatives`` the sampled protocol's 99 negatives (uniform or popularity-proportional), and
``--full-catalog`` also ranks each test user's target against the split's whole candidate pool
(known items excluded) for every method and baseline, through one shared protocol.
Every row keeps each test user's rank of the target (``ranks``), so ``results.json`` also holds
each fine-tuned row against the no-LM references, and each parameter-efficient row against full
fine-tuning, user by user (``paired``: NDCG@10 difference and ratio with paired bootstrap intervals).
Writes ``results.json``, ``results.md`` (sorted by NDCG@10, the full-catalog table and the paired
comparisons after it) and
``pareto.png`` (NDCG@10 against trainable parameters, adapter weight bytes and training seconds,
each with its Pareto frontier) under ``--out``; ``--replot`` redraws it from ``results.json``.
``results.json`` is written after every row, and a method whose process fails is named under
``failed`` while the run goes on; ``--resume`` continues a run that stopped, keeping its rows and
running only the rest (refused unless the commit, machine, split and settings are the same).

Example:
    python benchmarks/compare_methods.py --dataset demo --preset smoke --out runs/compare-smoke
    python benchmarks/compare_methods.py --dataset beauty --preset cpu --out benchmarks/results/beauty-cpu
    python benchmarks/compare_methods.py --dataset beauty --split cold-item --negatives popularity --preset cpu --out runs/ci
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = {
    # seconds of training per method, test users, validation users (during training / to
    # calibrate the prior weights after it), scorer batch, full-catalog ranking unless told,
    # the most seconds a peer (SASRec) trains before early stopping would end it
    "smoke": {"seconds": 6, "test_users": 40, "valid_users": 10, "calibration_users": 40, "batch_size": 16, "full_catalog": False, "peer_seconds": 3},
    "cpu": {"seconds": 240, "test_users": 1000, "valid_users": 100, "calibration_users": 500, "batch_size": 32, "full_catalog": True, "peer_seconds": 600},
    "gpu": {"seconds": 900, "test_users": 0, "valid_users": 500, "calibration_users": 1000, "batch_size": 128, "full_catalog": True, "peer_seconds": 1800},
}
METRICS = ("ndcg@10", "hr@10", "mrr", "auc")
FULL_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr")
"""Reported for the full-catalog protocol, as ``metrics_full`` / ``ci95_full`` of each row."""


def peers() -> dict:
    """The benchmark-side peers (``benchmarks/peers``: SASRec), by name.

    Loaded by path as the package ``peers``: this file also runs as a module of the tests, where
    ``benchmarks/`` is not on ``sys.path`` (and must not be: its script names would shadow modules).
    """
    import importlib.util

    if "peers" not in sys.modules:
        folder = Path(__file__).resolve().parent / "peers"
        spec = importlib.util.spec_from_file_location("peers", folder / "__init__.py", submodule_search_locations=[str(folder)])
        sys.modules["peers"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["peers"].PEERS


def baseline_names() -> list[str]:
    """Every registered baseline (:data:`coldstart_peft.evaluation.baselines.BASELINES`), then the peers."""
    from coldstart_peft.evaluation.baselines import BASELINES

    return [*BASELINES, *peers()]


def blind_peers(names: list[str], audit: dict) -> dict[str, str]:
    """The peers in ``names`` not worth their training budget, as no test target was bought in training.

    Every peer is an ID model: each would train its ``peer_seconds`` and then give every such
    candidate the same score. Only the default list is pruned so: a peer named in ``--methods``
    runs, as asked.
    """
    if audit.get("target_unseen_in_training") != 1.0:
        return {}
    why = "no test target was bought in training, so an ID model scores every candidate alike; name it in --methods to run it anyway"
    return {name: why for name in names if name in peers()}


def make_peer_or_baseline(name: str, args):
    """A registered baseline, or a peer trained for the preset's ``peer_seconds`` on the split's validation users."""
    from coldstart_peft.evaluation.baselines import make_baseline

    found = peers().get(name)
    if found is None:
        return make_baseline(name)
    # Early stopping reads the split's validation users (fit's default); the budget bounds a run
    # that has not converged by then, and the result file records it.
    # Every core: compare_methods runs one job at a time.
    return found(time_budget_s=PRESETS[args.preset]["peer_seconds"], threads=os.cpu_count() or 1, seed=args.seed)


def machine() -> dict:
    """The machine a result was measured on."""
    import peft
    import torch
    import transformers

    from coldstart_peft.hardware import hardware_facts

    facts = hardware_facts()
    return {"cpu": facts["cpu_model"], "cores": os.cpu_count() or 1, "gpu": facts["cuda_device"], **facts,
            "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}  # fmt: skip


RESUME_MUST_MATCH = ("dataset", "split", "preset", "seed", "protocol", "data_fingerprint", "split_fingerprint", "settings")
"""What a resumed run shares with the run it continues, besides the commit and the machine."""
STABLE_MACHINE = ("cpu", "cores", "gpu", "cpu_capability", "native_cpu_bf16", "torch", "transformers", "peft")
"""The machine facts a resumed run must share (a measured speed-up may differ between two probes)."""


def resume_mismatch(previous: dict, results: dict) -> list[str]:
    """What differs between a stopped run's ``results.json`` and the run about to continue it (empty: nothing)."""
    differ = [key for key in RESUME_MUST_MATCH if previous.get(key) != results[key]]
    if (previous.get("code") or {}).get("commit") != results["code"]["commit"]:
        differ.append("code commit")
    differ += [f"machine {key}" for key in STABLE_MACHINE if previous.get("machine", {}).get(key) != results["machine"].get(key)]
    return differ


def _failure(stderr: str) -> str:
    """The last line of a failed worker's error output: usually the exception and its message."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no error output"


def refuse_before_work(parser, args, names: list[str], baselines: list[str], methods: list[str]) -> None:
    """Stop with a named error on what would otherwise fail only when its turn came, minutes or an hour in."""
    from coldstart_peft import ColdStartError, default_host
    from coldstart_peft.artifact import check_replaceable
    from coldstart_peft.cli.options import parse_key_values
    from coldstart_peft.method import build_config

    unknown = [name for name in names if name not in baselines and name not in methods]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(map(repr, unknown))}; choose from {', '.join([*baselines, *methods])}")
    if not any(name in methods for name in names):
        return
    try:
        build_config(default_host().scorer(args.scorer).config_class, parse_key_values(args.scorer_config, "--scorer-config"))
    except ColdStartError as exc:
        parser.error(f"--scorer {args.scorer} / --scorer-config: {exc}")
    if args.save_adapters:  # each worker saves after its training: a refusal then would lose the row
        try:
            for name in names:
                if name in methods:
                    check_replaceable(Path(args.save_adapters) / name)
        except ColdStartError as exc:
            parser.error(f"--save-adapters: {exc}")


def _split(args):
    from coldstart_peft.data import load_dataset
    from coldstart_peft.data.cold_start import make_split

    options = {"k": args.k_context, "n_negatives": 99, "seed": args.seed, "negative_sampling": args.negatives,
               "max_test_users": PRESETS[args.preset]["test_users"] or None}  # fmt: skip
    if args.split == "cold-domain":
        options["domain"] = args.domain  # None: the most common domain
    return make_split(load_dataset(args.dataset), args.split, **options)


def _full_catalog(args) -> bool:
    return PRESETS[args.preset]["full_catalog"] if args.full_catalog is None else args.full_catalog


def _prior_table_bytes(folder: Path) -> int:
    """Bytes of the adapter's prior tables file (popularity, co-occurrence, idf); 0 without priors."""
    from coldstart_peft.priors.storage import TABLES_FILE

    path = Path(folder) / TABLES_FILE
    return path.stat().st_size if path.is_file() else 0


def _metrics(summary: dict, names=METRICS) -> tuple[dict, dict]:
    means = {m: summary[m]["mean"] for m in names}
    intervals = {m: [summary[m]["low"], summary[m]["high"]] for m in names}
    return means, intervals


def _full_row(report: dict) -> dict:
    means, intervals = _metrics(report["retrieval"], FULL_METRICS)
    return {"metrics_full": means, "ci95_full": intervals, "ranks": {"full": report["ranks"]}}


def _sampled(scores, cases, full: dict, seed: int) -> tuple[dict, dict]:
    """A row's 1 + 99 summary, and its ``ranks``: per test user, candidates above and tied with the
    target, on 1 + 99 and the full pool, counted once for both.

    Two small integers per user let :func:`paired` compare two rows user by user.
    """
    from coldstart_peft.evaluation import metrics_from_case_ranks, ranks_from_scores, summarize

    better, tied = ranks_from_scores(scores, cases)
    summary = summarize(metrics_from_case_ranks(better, tied, cases), seed=seed)
    return summary, {"ranks": {"sampled": {"better": better.tolist(), "tied": tied.tolist()}, **full.get("ranks", {})}}


def full_catalog_of_method(scorer, split, args) -> dict:
    """A trained scorer's full-catalog figures: its item embeddings times its users', plus its priors.

    The same candidate pool and exclusions as :func:`~coldstart_peft.evaluation.full_pool.evaluate_baseline_full_pool`;
    a scorer without item embeddings (a cross-encoder) gets a note instead.
    """
    from coldstart_peft.evaluation.full_catalog import evaluate_full_catalog
    from coldstart_peft.evaluation.full_pool import FULL_POOL_KS

    if not callable(getattr(scorer, "encode", None)):
        return {"full_catalog_note": f"the {args.scorer} scorer scores (user, item) pairs one by one and has no item "
                                     "embeddings to rank a catalog with; no full-catalog figures"}  # fmt: skip
    return _full_row(evaluate_full_catalog(scorer, split, items=split.candidate_pool(), ks=FULL_POOL_KS, seed=args.seed))


def run_method(args) -> dict:
    """Train and evaluate one method (runs inside its own process)."""
    from coldstart_peft import TrainConfig, adapter_bytes, save_adapter
    from coldstart_peft.cli.options import parse_key_values
    from coldstart_peft.calibration import calibrate_priors
    from coldstart_peft.evaluation import metrics_from_scores, score_cases, summarize
    from coldstart_peft.hardware import resolve_precision
    from coldstart_peft.recipes import FitSettings, fit_on_split

    preset = PRESETS[args.preset]
    split = _split(args)
    cases = split.ranking_cases("test")
    settings = FitSettings(method=args.method, scorer=args.scorer, valid_users=preset["valid_users"],
                           n_negatives=args.train_negatives, priors=args.priors, calibration_users=0,
                           scorer_config=parse_key_values(args.scorer_config, "--scorer-config"))  # fmt: skip
    config = TrainConfig(epochs=1, batch_size=preset["batch_size"], time_budget_s=preset["seconds"],
                         seed=args.seed, progress=False, eval_every=10_000, lr=args.lr)  # fmt: skip
    scorer, result = fit_on_split(split, settings, config)
    calibration, before = None, None
    with scorer.frozen():  # calibration and the final pass reuse the timed pass's item embeddings
        started = time.perf_counter()
        scores = score_cases(scorer.score, cases)
        score_seconds = time.perf_counter() - started
        if args.priors and preset["calibration_users"]:
            # The same refit FitSettings.calibration_users runs after training, done here so it
            # shares the embeddings; the pre-calibration figures are kept to show what it adds.
            calibration = calibrate_priors(scorer, split.ranking_cases("valid")[: preset["calibration_users"]])
            before = _metrics(summarize(metrics_from_scores(scores, cases), seed=args.seed))[0]
            scores = score_cases(scorer.score, cases)
        full = full_catalog_of_method(scorer, split, args) if _full_catalog(args) else {}
    summary, ranks = _sampled(scores, cases, full, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.save_adapters) / args.method if args.save_adapters else Path(tmp) / "adapter"
        size = adapter_bytes(save_adapter(scorer, folder))
        table_bytes = _prior_table_bytes(folder)
    means, intervals = _metrics(summary)
    return {
        "method": args.method, "scorer": args.scorer, "trainable_params": result.trainable_params,
        "trainable_pct": 100.0 * result.trainable_params / result.total_params, "adapter_bytes": size,
        "prior_table_bytes": table_bytes,
        "train_seconds": result.seconds, "train_pairs_per_s": result.pairs_per_second,
        "score_pairs_per_s": sum(len(c.candidate_texts) for c in cases) / score_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "metrics": means, "ci95": intervals, "steps": result.steps, "lr": config.method_lr(scorer.method),
        "calibration": calibration, "metrics_before_calibration": before, **full, **ranks,
        "new_item_share": scorer.priors.new_item_share if scorer.priors is not None else None,
        # `auto` resolves per machine (bf16 where it is natively fast), so each row says what ran.
        "precision": {"training": result.precision, "scoring": resolve_precision(scorer.precision, scorer.device).name},
    }  # fmt: skip


def run_baseline(name: str, args) -> dict:
    """Fit and evaluate one no-fine-tuning baseline in this process."""
    from coldstart_peft.evaluation import evaluate_baseline_full_pool

    split = _split(args)
    cases = split.ranking_cases("test")
    started = time.perf_counter()
    baseline = make_peer_or_baseline(name, args).fit(split)
    fit_seconds = time.perf_counter() - started
    scores = baseline.score_cases(cases)
    seconds = time.perf_counter() - started
    full = _full_row(evaluate_baseline_full_pool(baseline, split, seed=args.seed)) if _full_catalog(args) else {}
    summary, ranks = _sampled(scores, cases, full, args.seed)
    means, intervals = _metrics(summary)
    return {
        "method": name, "scorer": "baseline", "trainable_params": 0, "trainable_pct": 0.0, "adapter_bytes": 0,
        "train_seconds": 0.0, "train_pairs_per_s": 0.0,
        "score_pairs_per_s": sum(len(c.candidate_texts) for c in cases) / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "metrics": means, "ci95": intervals, **full, **ranks, "fit_seconds": round(fit_seconds, 1),
        **({"peer": {"epochs": baseline.epochs_run, "best_valid_ndcg@10": baseline.best_valid_ndcg,
                     "budget_s": baseline.config.time_budget_s, "validation": [r for r in baseline.history if "valid_ndcg@10" in r]}}
           if name in peers() else {}),
    }  # fmt: skip


def _interval(row: dict, metric: str, full: bool = False) -> str:
    means, intervals = (row["metrics_full"], row["ci95_full"]) if full else (row["metrics"], row["ci95"])
    low, high = intervals[metric]
    return f"{means[metric]:.3f} [{low:.3f}, {high:.3f}]"


def full_catalog_table(results: dict) -> list[str]:
    """The full-catalog table (best NDCG@10 first), or no lines when the run had none."""
    protocol = results.get("protocol", {})
    if not protocol.get("full_catalog"):
        return []
    rows = results["results"]
    ranked = sorted((r for r in rows if "metrics_full" in r), key=lambda r: -r["metrics_full"]["ndcg@10"])
    lines = ["", f"## Full catalog: each target ranked against all {protocol['full_catalog_pool']:,} items of the pool "
             f"({protocol['full_catalog_pool_kind']}), the user's known items excluded", "",
             "| method | scorer | Recall@10 | Recall@20 | NDCG@10 | NDCG@20 | MRR |", "|" + "---|" * 7]  # fmt: skip
    for r in ranked:
        cells = [_interval(r, m, full=True) for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")]
        lines.append(f"| {r['method']} | {r['scorer']} | " + " | ".join(cells) + f" | {r['metrics_full']['mrr']:.3f} |")
    lines += [f"| {r['method']} | {r['scorer']} | {r['full_catalog_note']} | | | | |" for r in rows if "full_catalog_note" in r]
    return lines


SAMPLED_REFERENCES = ("tfidf", "hybrid+cooc", "hybrid+nbr")
"""No-LM rows every fine-tuned row is compared with, user by user, on 1 + 99: the references of
issue #17's bars (TF-IDF; hybrid + co-occurrence) and the twin that reads the same priors without
a language model."""
FULL_REFERENCES = ("hybrid+cooc", "item-knn", "sasrec")
"""Over the full pool, each fine-tuned row is compared with the best of these (the bar's reference) and with ``hybrid+nbr``."""


def _per_user_ndcg(row: dict, protocol: str):
    """Per-user NDCG@10 of a row on ``"sampled"`` or ``"full"``, from its ranks; ``None`` where it has none."""
    from coldstart_peft.evaluation import metrics_from_ranks

    ranks = row.get("ranks", {}).get(protocol)
    return None if ranks is None else metrics_from_ranks(ranks["better"], ranks["tied"], ks=(10,))["ndcg@10"]


FULL_FINE_TUNING = "full"
"""The row every parameter-efficient row is also compared with: issue #17 asks LoRA to keep within 3% of it."""


def compare_rows(ours: dict, theirs: dict, protocol: str, seed: int = 0) -> dict | None:
    """``ours`` against ``theirs`` user by user on ``"sampled"`` or ``"full"``; ``None`` where either kept no ranks.

    The rows' own intervals overlap whenever two methods are close, though most of their width
    is which users were drawn, and both rows share the users. A paired bootstrap resamples users
    once for both, so the difference gets the interval a reviewer asks for.
    """
    from coldstart_peft.evaluation import paired_bootstrap

    a, b = _per_user_ndcg(ours, protocol), _per_user_ndcg(theirs, protocol)
    if a is None or b is None:
        return None
    return {"method": ours["method"], "reference": theirs["method"], "protocol": protocol, "metric": "ndcg@10",
            **paired_bootstrap(a, b, seed=seed)}  # fmt: skip


def paired(results: dict, seed: int = 0) -> list[dict]:
    """Each fine-tuned row against the no-LM references, and against full fine-tuning, on the same test users.

    Rows written before results kept their per-user ranks are left out (:func:`compare_rows`).
    """
    rows = results["results"]
    baselines = {r["method"]: r for r in rows if r["scorer"] == "baseline"}
    best_full = max((baselines[n] for n in FULL_REFERENCES if n in baselines and "metrics_full" in baselines[n]),
                    key=lambda r: r["metrics_full"]["ndcg@10"], default=None)  # fmt: skip
    references = [("sampled", baselines.get(n)) for n in SAMPLED_REFERENCES]
    references += [("full", best_full), ("full", baselines.get("hybrid+nbr"))]
    full = next((r for r in rows if r["method"] == FULL_FINE_TUNING and r["scorer"] != "baseline"), None)
    against_full = [(protocol, full) for protocol in ("sampled", "full")] if full is not None else []
    out = []
    for row in rows:
        if row["scorer"] == "baseline":
            continue
        for protocol, reference in references + (against_full if row is not full else []):
            if reference is not None and (c := compare_rows(row, reference, protocol, seed)) is not None:
                out.append(c)
    return out


def paired_table(results: dict) -> list[str]:
    """The paired comparisons as two tables (against the no-LM references, against full fine-tuning), or no lines."""
    comparisons = results.get("paired") or []
    order = {"sampled": 0, "full": 1}
    lines = []
    for title, chosen in (
        ("Paired against the no-LM references", [c for c in comparisons if c["reference"] != FULL_FINE_TUNING]),
        ("Paired against full fine-tuning", [c for c in comparisons if c["reference"] == FULL_FINE_TUNING]),
    ):
        if not chosen:
            continue
        lines += ["", f"## {title} (NDCG@10, the same test users; 95% paired bootstrap intervals)", "",
                  "| method | protocol | reference | difference | ratio |", "|---|---|---|---|---|"]  # fmt: skip
        for c in sorted(chosen, key=lambda c: (order[c["protocol"]], c["reference"], -c["difference"]["mean"])):
            d, r = c["difference"], c["ratio"]
            protocol = "1 + 99" if c["protocol"] == "sampled" else "full pool"
            lines.append(f"| {c['method']} | {protocol} | {c['reference']} | {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] | "
                         f"{r['mean']:.3f}× [{r['low']:.3f}, {r['high']:.3f}] |")  # fmt: skip
    return lines


def _pool_kind(split) -> str:
    if split.candidate_pool() == sorted(split.dataset.items):
        return "the whole catalog"
    return "the cold items" if split.kind == "cold-item" else f"the held-out domain {split.config.get('domain')!r}"


def markdown(results: dict) -> str:
    """The results table, best NDCG@10 first."""
    rows = sorted(results["results"], key=lambda r: -r["metrics"]["ndcg@10"])
    head = ("| method | scorer | NDCG@10 [95% CI] | before calibration | HR@10 | MRR | AUC | trainable params | % | adapter | "
            "train s | train pairs/s | score pairs/s | peak RSS MB |")  # fmt: skip
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        low, high = r["ci95"]["ndcg@10"]
        before = r.get("metrics_before_calibration")
        before_text = f"{before['ndcg@10']:.3f}" if before else "—"
        lines.append(
            f"| {r['method']} | {r['scorer']} | {r['metrics']['ndcg@10']:.3f} [{low:.3f}, {high:.3f}] | {before_text} | "
            f"{r['metrics']['hr@10']:.3f} | {r['metrics']['mrr']:.3f} | {r['metrics']['auc']:.3f} | "
            f"{r['trainable_params']:,} | {r['trainable_pct']:.2f} | {r['adapter_bytes'] / 1024:.0f} KiB | "
            f"{r['train_seconds']:.0f} | {r['train_pairs_per_s']:.0f} | {r['score_pairs_per_s']:.0f} | {r['peak_rss_mb']:.0f} |"
        )
    m, code = results["machine"], results.get("code") or {}
    audit = results.get("audit")
    if audit and audit.get("cases"):
        lines += ["", f"Test-target audit ({audit['cases']} users; repeat purchases kept): "
                  f"{audit['cooccurs_in_window']:.1%} of targets were bought by a training user within the context "
                  f"window of a context item ({audit['cooccurs_same_user']:.1%} by a training user who also bought a "
                  f"context item); {audit['target_in_context']:.1%} repeat a context item; "
                  f"{audit['target_unseen_in_training']:.1%} were never bought in training."]  # fmt: skip
    if results.get("skipped"):
        lines += ["", "Not run: " + "; ".join(f"{name} ({why})" for name, why in results["skipped"].items()) + "."]
    if results.get("failed"):
        lines += ["", "Failed (`--resume` runs them again): " + "; ".join(f"{name} ({why})" for name, why in results["failed"].items()) + "."]
    if results.get("segments", 1) > 1:
        lines += ["", f"Resumed: the rows come from {results['segments']} runs of the same command at the same commit, "
                      "on the same machine; the whole-run time adds them up."]  # fmt: skip
    ran = [f"{r['method']} {r['precision']['training']}/{r['precision']['scoring']}" for r in rows if r.get("precision")]
    if ran:
        lines += ["", f"Precision (training/scoring, `auto` as resolved on this machine): {', '.join(ran)}."]
    lines += full_catalog_table(results)
    lines += paired_table(results)
    wall = f" Whole run: {results['wall_seconds'] / 60:.1f} min." if "wall_seconds" in results else ""
    protocol = results.get("protocol", {})
    sampled = (f"Sampled protocol: the target among {protocol.get('n_negatives', 99)} "
               f"{protocol.get('negatives', 'uniform')}-sampled negatives, {protocol.get('n_test_users')} test users.\n\n")  # fmt: skip
    return (f"# {results['dataset']} {results['split']}, preset {results['preset']}, seed {results['seed']}\n\n"
            f"Machine: {m['cpu']}, {m['cores']} cores, GPU {m['gpu']}; torch {m['torch']}, "
            f"transformers {m['transformers']}, peft {m['peft']}; CPU capability {m.get('cpu_capability')}, "
            f"commit {code.get('commit')}{' (dirty)' if code.get('dirty') else ''}.{wall}\n\n{sampled}" + "\n".join(lines) + "\n")  # fmt: skip


COSTS = (
    ("trainable_params", "trainable parameters", True),
    ("weight_bytes", "adapter weights on disk (bytes; prior tables, the same for every method, left out)", True),
    ("train_seconds", "training seconds", False),
)
"""The pareto panels: cost key of :func:`_cost`, axis label, log scale."""


def _cost(row: dict, key: str) -> float:
    if key == "weight_bytes":  # the prior tables (~4 MB on Beauty) would clump every method at one size
        return row["adapter_bytes"] - row.get("prior_table_bytes", 0)
    return row[key]


def pareto_frontier(points) -> list[int]:
    """Indices of the points no other point beats: none at most their cost has at least their quality.

    Args:
        points: ``(cost, quality)`` pairs; lower cost and higher quality are better.

    Returns:
        The frontier's indices, cheapest first (of equal points, the first listed).

    Example:
        >>> pareto_frontier([(1, 0.3), (2, 0.5), (3, 0.4), (0, 0.45)])
        [3, 1]
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    frontier, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            frontier.append(i)
            best = points[i][1]
    return frontier


def pareto(results: dict, path: Path) -> dict[str, list[str]]:
    """NDCG@10 against trainable parameters, adapter weight bytes and training seconds, with each Pareto frontier.

    The no-training baselines sit at zero cost: they take part in the frontier (a method below
    the best of them is not worth its cost) and are drawn as dashed lines across each panel.

    Returns:
        Per panel (cost key), the methods on its frontier, cheapest first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from adjustText import adjust_text

    rows = results["results"]
    trained = [r for r in rows if r["trainable_params"] > 0]
    baselines = [r for r in rows if r["trainable_params"] == 0]
    fig, axes = plt.subplots(1, len(COSTS), figsize=(6 * len(COSTS), 4.8), sharey=True)
    fronts: dict[str, list[str]] = {}
    for ax, (key, label, log) in zip(axes, COSTS):
        costs = [_cost(r, key) for r in trained]
        for r, x in zip(trained, costs):
            mean, (low, high) = r["metrics"]["ndcg@10"], r["ci95"]["ndcg@10"]
            ax.errorbar(x, mean, yerr=[[mean - low], [high - mean]], fmt="o", capsize=3, alpha=0.8)
        for r in baselines:  # no cost to place them by: a labelled line across the panel
            ax.axhline(r["metrics"]["ndcg@10"], linestyle="--", linewidth=1, color="grey")
            ax.text(0.99, r["metrics"]["ndcg@10"], f"{r['method']} (no training) ", transform=ax.get_yaxis_transform(),
                    fontsize=8, color="grey", va="bottom", ha="right")
        if log:
            ax.set_xscale("log")
        front = pareto_frontier([(0.0, r["metrics"]["ndcg@10"]) for r in baselines]
                                + [(x, r["metrics"]["ndcg@10"]) for r, x in zip(trained, costs)])  # fmt: skip
        named = [(baselines + trained)[i] for i in front]
        fronts[key] = [r["method"] for r in named]
        on_front = [(_cost(r, key), r["metrics"]["ndcg@10"]) for r in named if r["trainable_params"] > 0]
        if on_front:
            xs, ys = zip(*on_front)
            right = ax.get_xlim()[1]
            # A step: each frontier method's quality holds until the next, costlier one beats it.
            ax.step([*xs, right], [*ys, ys[-1]], where="post", color="black", linewidth=1.2, label="Pareto frontier")
            ax.legend(loc="lower left", fontsize=8)
        # Methods cluster within a few hundredths of NDCG: adjust_text moves their names off each
        # other and off the points, with a leader line to each.
        labels = [ax.text(x, r["metrics"]["ndcg@10"], r["method"], fontsize=9,
                          fontweight="bold" if r["method"] in fronts[key] else "normal")
                  for r, x in zip(trained, costs)]  # fmt: skip
        if labels:
            adjust_text(labels, x=costs, y=[r["metrics"]["ndcg@10"] for r in trained], ax=ax,
                        arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})  # fmt: skip
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{results['split']} NDCG@10, 1 + 99 (95% interval)")
    fig.suptitle(f"{results['dataset']} {results['split']} ({results['preset']} preset): quality vs cost; "
                 "bold: on the Pareto frontier (baselines at zero cost included)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return fronts


def prior_features(value: str) -> tuple[str, ...]:
    """``--priors``: feature names joined by ``+``, checked against the library's known features."""
    from coldstart_peft.errors import ConfigError
    from coldstart_peft.priors import check_features

    try:
        return check_features(value.split("+"))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="beauty")
    parser.add_argument("--split", default="cold-user", choices=["cold-user", "cold-item", "cold-domain"],
                        help="cold-item: negatives among the cold items; cold-domain: one domain held out of training")
    parser.add_argument("--domain", default=None, help="the held-out domain of --split cold-domain (default: the most common)")
    parser.add_argument("--negatives", default="uniform", choices=["uniform", "popularity"],
                        help="how the 99 sampled negatives are drawn: uniformly, or in proportion to training-user counts")
    parser.add_argument("--full-catalog", action=argparse.BooleanOptionalAction, default=None,
                        help="also rank each target against the split's whole candidate pool (default: on in the cpu "
                             "and gpu presets, off in smoke)")
    parser.add_argument("--methods", default=None, help="comma-separated methods and baselines (default: all)")
    parser.add_argument("--scorer", default="bi-encoder")
    parser.add_argument("--scorer-config", action="append", metavar="KEY=VALUE",
                        help="a scorer setting, e.g. item_tower=shared (repeatable)")
    parser.add_argument("--no-priors", dest="priors", action="store_false",
                        help="train the language model alone: no prior features, no calibration")
    parser.add_argument("--priors", dest="priors", type=prior_features, metavar="FEATURE+FEATURE",
                        help="train with only these prior features, joined by + (e.g. popularity+lexical+cooccurrence, "
                             "the defaults before neighbour_text; default: every feature of DEFAULT_FEATURES)")
    parser.set_defaults(priors=True)
    parser.add_argument("--train-negatives", type=int, default=None,
                        help="sampled negatives per training group (default: the scorer's; bi-encoder 1, on top of in-batch negatives)")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate of every method trained (default: each method's recommended one)")
    parser.add_argument("--save-adapters", default=None, help="keep each trained adapter under this folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k-context", type=int, default=3)
    parser.add_argument("--preset", default="smoke", choices=sorted(PRESETS))
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--replot", action="store_true", help="redraw pareto.png from the results.json in --out; train nothing")
    parser.add_argument("--resume", action="store_true",
                        help="continue the stopped run whose results.json is in --out: keep its rows, run the rest")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be a positive learning rate, got {args.lr}")
    if args.domain is not None and args.split != "cold-domain":
        parser.error("--domain names the held-out domain of --split cold-domain; add --split cold-domain or drop --domain")

    if args.replot:
        out = Path(args.out)
        fronts = pareto(json.loads((out / "results.json").read_text()), out / "pareto.png")
        print("\n".join(f"frontier by {key}: {' -> '.join(names)}" for key, names in fronts.items()))
        return 0

    if args.worker:  # one method, in its own process; the parent reads the JSON line
        args.method = args.worker
        print("RESULT " + json.dumps(run_method(args)), flush=True)
        return 0

    from coldstart_peft import default_host
    from coldstart_peft.outputs import check_report_files, write_json_report, write_markdown_report
    from coldstart_peft.recipes import FitSettings, sampled_negatives
    from coldstart_peft.provenance import git_revision

    baselines = baseline_names()
    methods = default_host().methods.names()
    names = args.methods.split(",") if args.methods else [*baselines, *methods]
    refuse_before_work(parser, args, names, baselines, methods)
    out = Path(args.out)
    check_report_files(out, "results", plots=("pareto.png",))
    split = _split(args)
    from coldstart_peft.evaluation import target_audit

    # What the split gives away to signals without a language model, printed with every run.
    audit = target_audit(split)
    skipped = blind_peers(names, audit) if not args.methods else {}
    names = [n for n in names if n not in skipped]
    full_catalog = _full_catalog(args)
    # Two result files are comparable only if both fingerprints match. `every_method`: the whole
    # preset ran, not the --methods named, so the run's wall time is the preset's.
    results = {"machine": machine(), "code": git_revision(__file__), "dataset": args.dataset, "split": args.split, "preset": args.preset,
               "every_method": not args.methods,
               "seed": args.seed, "protocol": {"split": split.kind, "split_config": split.config, "k_context": args.k_context,
               "n_negatives": 99, "negatives": args.negatives, "n_test_users": len(split.test),
               "full_catalog": full_catalog, "full_catalog_pool": len(split.candidate_pool()) if full_catalog else None,
               "full_catalog_pool_kind": _pool_kind(split), "full_catalog_excludes": "each user's context items, never the target",
               "repeat_purchases_kept": True, "repeat_purchase_share": audit.get("target_in_context")},
               "data_fingerprint": split.dataset.fingerprint(), "split_fingerprint": split.fingerprint(),
               "settings": {"scorer": args.scorer, "scorer_config": args.scorer_config or [], "priors": list(FitSettings(priors=args.priors).prior_features()),
                            "train_negatives": sampled_negatives(FitSettings(scorer=args.scorer, n_negatives=args.train_negatives)), "lr": args.lr,
                            "lexical_units": FitSettings.lexical_units if args.priors else None, **PRESETS[args.preset]},
               "results": []}  # fmt: skip
    results["audit"] = audit
    if skipped:
        results["skipped"] = skipped
        print("\n".join(f"skipping {name}: {why}" for name, why in skipped.items()), flush=True)
    print("audit of the test targets: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                    for k, v in results["audit"].items()), flush=True)  # fmt: skip
    earlier = 0.0
    if args.resume:
        if not (out / "results.json").is_file():
            parser.error(f"--resume: {out / 'results.json'} does not exist; run without --resume to start")
        previous = json.loads((out / "results.json").read_text())
        differ = resume_mismatch(previous, results)
        if differ:
            parser.error(f"--resume: the run in {out} differs from this one in {', '.join(differ)}; "
                         "resume it with the same command at the same commit on the same machine, or choose a new --out")  # fmt: skip
        done = {row["method"] for row in previous["results"]}
        results["results"], earlier = previous["results"], previous.get("wall_seconds", 0.0)
        results["wall_seconds"] = earlier
        # Untracked output inside the checkout makes a tree dirty, so either run's dirt marks the whole.
        results["code"]["dirty"] = bool((previous.get("code") or {}).get("dirty") or results["code"]["dirty"])
        results["segments"] = previous.get("segments", 1) + 1
        names = [n for n in names if n not in done]
        print(f"resuming: {len(done)} rows kept ({', '.join(sorted(done))}), {len(names)} to run", flush=True)
    started = time.perf_counter()
    budget = PRESETS[args.preset]["seconds"]
    for index, name in enumerate(names, start=1):
        left = sum(budget * 1.5 for n in names[index - 1 :] if n not in baselines)
        print(f"[{index}/{len(names)}] {name} — about {left / 60:.1f} min of training left "
              f"({(time.perf_counter() - started) / 60:.1f} min elapsed)", flush=True)  # fmt: skip
        if name in baselines:
            row = run_baseline(name, args)
        else:
            command = [sys.executable, __file__, "--worker", name, *[a for a in (argv or sys.argv[1:])]]
            proc = subprocess.run(command, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"  {name} failed:\n{proc.stderr[-2000:]}", flush=True)
                results.setdefault("failed", {})[name] = _failure(proc.stderr)
                results["wall_seconds"] = round(earlier + time.perf_counter() - started, 1)
                write_json_report(out / "results.json", results)
                continue
            row = json.loads(lines[-1][7:])
        results["results"].append(row)
        results["wall_seconds"] = round(earlier + time.perf_counter() - started, 1)
        full = f"  full-catalog NDCG@10 {row['metrics_full']['ndcg@10']:.4f}" if "metrics_full" in row else ""
        print(f"  NDCG@10 {row['metrics']['ndcg@10']:.4f}  HR@10 {row['metrics']['hr@10']:.4f}{full}", flush=True)
        write_json_report(out / "results.json", results)  # nothing lost if a later method dies
    results["paired"] = paired(results, seed=args.seed)
    write_json_report(out / "results.json", results)
    write_markdown_report(out / "results.md", markdown(results))
    pareto(results, out / "pareto.png")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
