"""One summary table across compare_methods runs: per split, the best fine-tuned method against the strongest peers.

Reads each run's ``results.json`` (written by ``compare_methods.py``) and prints a markdown
table: the best fine-tuned method, LoRA, full fine-tuning and the strongest baseline or peer,
on the sampled protocol (NDCG@10 on 1 + N) and, where the run had it, the full catalog, each
with its 95% interval; where the run kept per-user ranks, the best fine-tuned method against
that baseline user by user (the difference on 1 + N, the ratio on the full catalog, with the
run's paired bootstrap interval) and LoRA against full fine-tuning (the ratio); and the machine.
Nothing is re-measured: the table is exactly the result files, so it cannot drift from them.
Runs written before ``compare_methods.py`` compared LoRA with full fine-tuning get that cell
from their saved per-user ranks, through the run's own function and seed.

``--bars`` adds a second table: each run judged against the bars of issue #17 that apply to its
split (:data:`BARS`), the value with its interval and whether the mean, and the whole interval,
clear the bar, so a closing note can quote verdicts the files make rather than write its own.

Example:
    python benchmarks/summary.py benchmarks/results/cold-user-beauty-seed0 benchmarks/results/cold-item-beauty
    python benchmarks/summary.py @benchmarks/results/summary-latest.runs --bars --out benchmarks/results/summary-latest.md

An argument starting with ``@`` names a file with one folder per line, so a committed table can
be rebuilt from the list it was built from.

``--readme FILE`` rebuilds, in place, every table a markdown file marks as summary.py's: the
lines between ``<!-- summary.py table LIST -->`` (or ``bars``) and ``<!-- /summary.py -->``
become the table (or the bars table) of the runs in the list file LIST, a path from the
current directory; nothing outside the marks changes, so prose around a table is kept:

    python benchmarks/summary.py --readme benchmarks/README.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def _cell(row: dict | None, full: bool = False) -> str:
    if row is None:
        return "—"
    means, intervals = (row.get("metrics_full"), row.get("ci95_full")) if full else (row["metrics"], row["ci95"])
    if not means:
        return "—"
    low, high = intervals["ndcg@10"]
    return f"{row['method']} {means['ndcg@10']:.3f} [{low:.3f}, {high:.3f}]"


def _whole_preset(results: dict, trained: list[dict]) -> bool:
    """Whether the run trained every method of its preset, not a ``--methods`` subset."""
    # Files older than `every_method` tell a whole preset by its rows: every built-in method trained.
    return results.get("every_method", len(trained) >= 8)


def _with_priors(results: dict) -> bool:
    """Whether the run trained with priors: ``settings.priors`` lists them (empty: the language model alone)."""
    return bool((results.get("settings") or {}).get("priors", True))


def _best(rows: list[dict], full: bool = False) -> dict | None:
    key = "metrics_full" if full else "metrics"
    scored = [r for r in rows if r.get(key)]
    return max(scored, key=lambda r: r[key]["ndcg@10"]) if scored else None


def _compare_methods():
    """``benchmarks/compare_methods.py`` as a module, loaded by path: ``benchmarks/`` is not a package."""
    if "compare_methods" not in sys.modules:
        spec = importlib.util.spec_from_file_location("compare_methods", Path(__file__).with_name("compare_methods.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["compare_methods"] = module
    return sys.modules["compare_methods"]


def _comparison(results: dict, ours: dict | None, theirs: dict | None, protocol: str) -> dict | None:
    """The run's own paired comparison of two rows; failing that, one made from their saved ranks as the run would."""
    if ours is None or theirs is None:
        return None
    for c in results.get("paired") or []:
        if (c["method"], c["reference"], c["protocol"]) == (ours["method"], theirs["method"], protocol):
            return c
    if not (ours.get("ranks") and theirs.get("ranks")):
        return None
    return _compare_methods().compare_rows(ours, theirs, protocol, seed=results["seed"])


def _difference(c: dict | None) -> str:
    return "—" if c is None else f"{c['difference']['mean']:+.4f} [{c['difference']['low']:+.4f}, {c['difference']['high']:+.4f}]"


def _ratio(c: dict | None) -> str:
    return "—" if c is None else f"{c['ratio']['mean']:.3f}× [{c['ratio']['low']:.3f}, {c['ratio']['high']:.3f}]"


def _paired_cell(results: dict, part: dict, protocol: str) -> str:
    """The best fine-tuned row against the best no-LM row, or a dash where the run kept no ranks."""
    c = _comparison(results, part["best trained"], part["best baseline or peer"], protocol)
    # The sampled bar is a lead in NDCG, the full-catalog bar a multiple of the reference.
    return _difference(c) if protocol == "sampled" else _ratio(c)


def summarize(results: dict) -> dict:
    """The rows of one run the summary names: best trained, LoRA, full, best baseline, on both protocols."""
    rows = results["results"]
    trained = [r for r in rows if r["trainable_params"] > 0]
    untrained = [r for r in rows if r["trainable_params"] == 0]
    by_name = {r["method"]: r for r in rows}
    protocol = results.get("protocol", {})
    # `auto` resolves per machine; result files older than the precision field say nothing here.
    precisions = sorted({r["precision"]["training"] for r in trained if r.get("precision")})
    ran = f", {'/'.join(precisions)} training" if precisions else ""
    # A run of the language model alone must not read as the recipe's own line.
    which = "" if _with_priors(results) else ", no priors"
    # "Best fine-tuned" of a --methods subset is the best of those methods, not of the preset's.
    if which == "" and not _whole_preset(results, trained):
        which = f", only {'+'.join(sorted(r['method'] for r in trained))}"

    def part(full: bool) -> dict:
        named = {"best trained": _best(trained, full), "lora": by_name.get("lora"), "full": by_name.get("full"),
                 "best baseline or peer": _best(untrained, full)}  # fmt: skip
        protocol = "full" if full else "sampled"
        # The LoRA bar asks for 97% of full fine-tuning, a ratio on both protocols.
        return named | {"paired": _paired_cell(results, named, protocol),
                        "lora against full": _ratio(_comparison(results, named["lora"], named["full"], protocol))}  # fmt: skip

    return {
        "title": f"{results['dataset']} {results['split']} (seed {results['seed']}, {protocol.get('n_test_users', '?')} users, "
                 f"{protocol.get('negatives', 'uniform')} negatives{ran}{which})",
        "sampled": part(False),
        "full": part(True) if protocol.get("full_catalog") else None,
        "commit": (results.get("code") or {}).get("commit"),
        "machine": f"{results['machine'].get('cpu')} ({results['machine'].get('cpu_capability')})",
    }  # fmt: skip


BARS = {
    "cold-item": "Beauty cold-item: best fine-tuned NDCG@10 ≥ 0.36 on 1 + 99",
    "every-peft": "Beauty cold-item: every PEFT method above TF-IDF on 1 + 99 (the weakest, paired)",
    "catalog": "Beauty cold-user, full catalog: best fine-tuned ≥ 1.1× the best of hybrid + co-occurrence, item-kNN, SASRec",
    "lead": "Beauty cold-user, 1 + 99: best fine-tuned ≥ hybrid + co-occurrence + 0.02",
    "no-priors": "Beauty cold-user, 1 + 99: LoRA without priors ≥ TF-IDF",
    "lora": "LoRA ≥ 0.97× full fine-tuning",
    "minutes": "the cpu preset finishes in under 60 minutes",
}
"""Issue #17's bars, by key: what :func:`judge_bars` checks, in words."""

CATALOG_PEERS = ("hybrid+cooc", "item-knn", "sasrec")


def _verdict(mean: float, low: float | None, high: float | None, needs: float, strictly: bool = False) -> str:
    def clears(x):
        return x > needs if strictly else x >= needs

    if low is None:
        return "met" if clears(mean) else "missed"
    if clears(mean):
        return "met, the interval too" if clears(low) else "met by the mean, not by the interval"
    return "missed, the interval too" if not clears(high) else "missed by the mean, not by the interval"


def _judged(bar: str, protocol: str, value: str, needs: str, verdict: str) -> dict:
    return {"bar": bar, "text": BARS[bar], "protocol": protocol, "value": value, "needs": needs, "verdict": verdict}


def _paired_bar(bar, results, ours, theirs, protocol, kind, needs, strictly=False) -> dict | None:
    c = _comparison(results, ours, theirs, protocol)
    if c is None:
        # A run that kept no per-user ranks: its two means, judged without an interval.
        key = "metrics_full" if protocol == "full" else "metrics"
        if not (ours.get(key) and theirs.get(key)):
            return None
        a, b = ours[key]["ndcg@10"], theirs[key]["ndcg@10"]
        mean = a - b if kind == "difference" else a / b
        c = {kind: {"mean": mean, "low": None, "high": None}}
        value = f"{ours['method']} {a:.3f} against {theirs['method']} {b:.3f}: " + (
            f"{mean:+.4f}" if kind == "difference" else f"{mean:.3f}×") + " (unpaired, no ranks kept)"
    else:
        value = f"{ours['method']} against {theirs['method']}: " + (_difference(c) if kind == "difference" else _ratio(c))
    d = c[kind]
    shown = f"{'>' if strictly else '≥'} {needs:+.2f}" if kind == "difference" else f"≥ {needs:.2f}×"
    return _judged(bar, protocol, value, shown, _verdict(d["mean"], d["low"], d["high"], needs, strictly))


def judge_bars(results: dict) -> list[dict]:
    """Each bar of :data:`BARS` that applies to this run, with its value and verdict.

    A bar is left out where a row it needs is missing; a comparison whose rows kept no per-user
    ranks is judged on the two means, without an interval, and says so.
    """
    rows = results["results"]
    trained = [r for r in rows if r["trainable_params"] > 0]
    by_name = {r["method"]: r for r in rows}
    beauty = results["dataset"] == "beauty"
    priors = _with_priors(results)
    full_catalog = (results.get("protocol") or {}).get("full_catalog")
    judged: list[dict | None] = []
    best = _best(trained)
    if beauty and results["split"] == "cold-item" and best is not None:
        low, high = best["ci95"]["ndcg@10"]
        judged.append(_judged("cold-item", "sampled", _cell(best), "≥ 0.36", _verdict(best["metrics"]["ndcg@10"], low, high, 0.36)))
        tfidf = by_name.get("tfidf")
        peft = [r for r in trained if r["method"] != "full"]
        if tfidf is not None and peft:

            def lead(row):  # paired where the run kept ranks, else the difference of the means
                c = _comparison(results, row, tfidf, "sampled")
                return c["difference"]["mean"] if c else row["metrics"]["ndcg@10"] - tfidf["metrics"]["ndcg@10"]

            judged.append(_paired_bar("every-peft", results, min(peft, key=lead), tfidf, "sampled", "difference", 0.0, strictly=True))
    if beauty and results["split"] == "cold-user":
        if full_catalog:
            peers = [by_name[name] for name in CATALOG_PEERS if name in by_name]
            best_full = _best(trained, full=True)
            if peers and best_full:
                judged.append(_paired_bar("catalog", results, best_full, _best(peers, full=True), "full", "ratio", 1.1))
        if best is not None and "hybrid+cooc" in by_name:
            judged.append(_paired_bar("lead", results, best, by_name["hybrid+cooc"], "sampled", "difference", 0.02))
        if not priors and "lora" in by_name and "tfidf" in by_name:
            judged.append(_paired_bar("no-priors", results, by_name["lora"], by_name["tfidf"], "sampled", "difference", 0.0))
    if "lora" in by_name and "full" in by_name:
        for protocol in ("sampled", "full") if full_catalog else ("sampled",):
            judged.append(_paired_bar("lora", results, by_name["lora"], by_name["full"], protocol, "ratio", 0.97))
    if results.get("preset") == "cpu" and results.get("wall_seconds") and _whole_preset(results, trained):
        minutes = results["wall_seconds"] / 60
        judged.append(_judged("minutes", "—", f"{minutes:.1f} min", "< 60", "met" if minutes < 60 else "missed"))
    return [j for j in judged if j is not None]


def bars_markdown(judged: list[tuple[dict, list[dict]]]) -> str:
    """The bars table: one line per run and bar, the run named by its title and commit (from :func:`summarize`)."""
    lines = ["| run | commit | bar | protocol | value [95% CI] | needs | verdict |", "|---|---|---|---|---|---|---|"]
    for run, bars in judged:
        for b in bars:
            protocol = {"sampled": "1 + N", "full": "full catalog"}.get(b["protocol"], b["protocol"])
            lines.append(f"| {run['title']} | {run['commit'] or '?'} | {b['text']} | {protocol} | {b['value']} | {b['needs']} | {b['verdict']} |")
    return "\n".join(lines) + ("\n\nEach bar of issue #17 that applies to the run. Paired values are the run's own "
                               "comparison of the two rows (or one made from their saved ranks, as above), with a 95% "
                               "paired bootstrap interval; 'the interval too' means the whole interval is on the same "
                               "side of the bar as the mean.\n")


def markdown(runs: list[dict]) -> str:
    """The summary table: one line per run and protocol."""
    lines = ["| split | protocol | best fine-tuned | LoRA | full fine-tuning | best no-LM baseline or peer | "
             "best fine-tuned against it, paired | LoRA against full, paired | commit | machine |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for run in runs:
        for name, part, full in (("1 + N", run["sampled"], False), ("full catalog", run["full"], True)):
            if part is None:
                continue
            cells = [_cell(part[k], full) for k in ("best trained", "lora", "full", "best baseline or peer")]
            cells += [part["paired"], part["lora against full"]]
            lines.append(f"| {run['title']} | {name} | " + " | ".join(cells) + f" | {run['commit'] or '?'} | {run['machine']} |")
    return "\n".join(lines) + ("\n\nNDCG@10 [95% CI]. Paired: the best fine-tuned row against the best no-LM row on the "
                               "same test users (the difference on 1 + N, the ratio on the full catalog), and LoRA against "
                               "full fine-tuning (the ratio), each with its 95% paired bootstrap interval: the run's own, or, "
                               "for a pair the run did not compare, made from its saved per-user ranks by the run's function "
                               "and seed; a dash where the run kept no per-user ranks.\n")


_BLOCK = re.compile(r"^<!-- summary\.py (table|bars) (\S+) -->\n(.*?)^<!-- /summary\.py -->$", re.S | re.M)


def _load(folders: list[str], bars: bool, error: Callable[[str], NoReturn]) -> tuple[list[dict], list[tuple[dict, list[dict]]]]:
    """Each folder's summary and, with ``bars``, its judged bars; ``error`` gets the message of a missing run."""
    runs, judged = [], []
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            error(f"{path} does not exist; run compare_methods.py --out {folder} first")
        results = json.loads(path.read_text())
        runs.append(summarize(results))
        if bars:  # judging may rebuild paired intervals from saved ranks: only when asked
            judged.append((runs[-1], judge_bars(results)))
    return runs, judged


def fill_marked_tables(text: str, error: Callable[[str], NoReturn]) -> str:
    """``text`` with each block marked as summary.py's rebuilt from the list file its mark names."""
    if len(re.findall(r"^<!-- summary\.py ", text, re.M)) != len(_BLOCK.findall(text)):
        error("a '<!-- summary.py table|bars LIST -->' mark lacks its '<!-- /summary.py -->' line; close it first")

    # A list usually feeds a table and a bars block: read and summarize its runs once for both.
    judged_lists = {match.group(2) for match in _BLOCK.finditer(text) if match.group(1) == "bars"}
    loaded: dict[str, tuple[list[dict], list[tuple[dict, list[dict]]]]] = {}

    def rebuilt(match: re.Match) -> str:
        kind, name = match.group(1, 2)
        listing = Path(name)
        if name not in loaded:
            if not listing.is_file():
                error(f"{listing} (named in a summary.py mark) does not exist; run from the folder its path starts in")
            folders = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
            loaded[name] = _load(folders, name in judged_lists, error)
        runs, judged = loaded[name]
        table = bars_markdown(judged) if kind == "bars" else markdown(runs)
        return f"<!-- summary.py {kind} {listing} -->\n{table}<!-- /summary.py -->"

    return _BLOCK.sub(rebuilt, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], fromfile_prefix_chars="@")
    parser.add_argument("runs", nargs="*", help="compare_methods output folders (each with results.json)")
    parser.add_argument("--bars", action="store_true", help="add the table of issue #17's bars, each run judged against those that apply to it")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file (refuses to replace one it did not write)")
    parser.add_argument("--readme", default=None, help="rebuild, in place, the tables this markdown file marks as summary.py's (instead of runs)")
    args = parser.parse_args(argv)
    if bool(args.runs) == bool(args.readme):
        parser.error("name compare_methods folders, or --readme FILE to rebuild the tables it marks: one of the two")
    if args.readme:
        readme = Path(args.readme)
        if not readme.is_file():
            parser.error(f"{readme} does not exist")
        text = readme.read_text()
        if not _BLOCK.search(text):
            parser.error(f"{readme} marks no table as summary.py's ('<!-- summary.py table LIST -->' ... '<!-- /summary.py -->')")
        filled = fill_marked_tables(text, parser.error)  # every table built before the file is touched
        readme.write_text(filled)
        print(f"{readme}: {len(_BLOCK.findall(filled))} tables rebuilt" + ("" if filled != text else " (no change)"))
        return 0
    runs, judged = _load(args.runs, args.bars, parser.error)
    table = markdown(runs) + (f"\n{bars_markdown(judged)}" if args.bars else "")
    print(table)
    if args.out:
        out = Path(args.out)
        marker = "<!-- written by benchmarks/summary.py -->\n"
        if out.exists() and not out.read_text().startswith(marker):
            parser.error(f"{out} exists and was not written by summary.py; choose another --out")
        out.write_text(marker + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
