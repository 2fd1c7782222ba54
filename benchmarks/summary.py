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

Example:
    python benchmarks/summary.py benchmarks/results/cold-user-beauty-seed0 benchmarks/results/cold-item-beauty
    python benchmarks/summary.py @benchmarks/results/summary-latest.runs --out benchmarks/results/summary-latest.md

An argument starting with ``@`` names a file with one folder per line, so a committed table can
be rebuilt from the list it was built from.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path


def _cell(row: dict | None, full: bool = False) -> str:
    if row is None:
        return "—"
    means, intervals = (row.get("metrics_full"), row.get("ci95_full")) if full else (row["metrics"], row["ci95"])
    if not means:
        return "—"
    low, high = intervals["ndcg@10"]
    return f"{row['method']} {means['ndcg@10']:.3f} [{low:.3f}, {high:.3f}]"


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

    def part(full: bool) -> dict:
        named = {"best trained": _best(trained, full), "lora": by_name.get("lora"), "full": by_name.get("full"),
                 "best baseline or peer": _best(untrained, full)}  # fmt: skip
        protocol = "full" if full else "sampled"
        # The LoRA bar asks for 97% of full fine-tuning, a ratio on both protocols.
        return named | {"paired": _paired_cell(results, named, protocol),
                        "lora against full": _ratio(_comparison(results, named["lora"], named["full"], protocol))}  # fmt: skip

    return {
        "title": f"{results['dataset']} {results['split']} (seed {results['seed']}, {protocol.get('n_test_users', '?')} users, "
                 f"{protocol.get('negatives', 'uniform')} negatives{ran})",
        "sampled": part(False),
        "full": part(True) if protocol.get("full_catalog") else None,
        "commit": (results.get("code") or {}).get("commit"),
        "machine": f"{results['machine'].get('cpu')} ({results['machine'].get('cpu_capability')})",
    }  # fmt: skip


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], fromfile_prefix_chars="@")
    parser.add_argument("runs", nargs="+", help="compare_methods output folders (each with results.json)")
    parser.add_argument("--out", default=None, help="also write the table to this markdown file (refuses to replace one it did not write)")
    args = parser.parse_args(argv)
    runs = []
    for folder in args.runs:
        path = Path(folder) / "results.json"
        if not path.is_file():
            parser.error(f"{path} does not exist; run compare_methods.py --out {folder} first")
        runs.append(summarize(json.loads(path.read_text())))
    table = markdown(runs)
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
