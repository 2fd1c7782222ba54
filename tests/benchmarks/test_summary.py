"""benchmarks/summary.py: the cross-split table names each run's best trained method and best baseline from its file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _scripts import load_benchmark


@pytest.fixture(scope="module")
def summary():
    return load_benchmark("summary.py")


def _row(method, params, ndcg, full=None):
    row = {"method": method, "trainable_params": params, "metrics": {"ndcg@10": ndcg}, "ci95": {"ndcg@10": [ndcg - 0.01, ndcg + 0.01]}}
    if full is not None:
        row |= {"metrics_full": {"ndcg@10": full}, "ci95_full": {"ndcg@10": [full - 0.01, full + 0.01]}}
    return row


def _results(folder: Path, full_catalog: bool) -> Path:
    rows = [_row("lora", 10, 0.40, 0.07), _row("full", 100, 0.42, 0.06), _row("tfidf", 0, 0.30, 0.04),
            _row("item-knn", 0, 0.33, 0.08)]  # fmt: skip
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({
        "dataset": "beauty", "split": "cold-user", "seed": 0, "code": {"commit": "abc1234"}, "every_method": True,
        "machine": {"cpu": "Some CPU", "cpu_capability": "AVX2"},
        "protocol": {"n_test_users": 1000, "negatives": "uniform", "full_catalog": full_catalog}, "results": rows}))  # fmt: skip
    return folder


def test_best_per_protocol_comes_from_the_files(summary, tmp_path, capsys):
    with_full, sampled_only = _results(tmp_path / "a", True), _results(tmp_path / "b", False)
    assert summary.main([str(with_full), str(sampled_only), "--out", str(tmp_path / "summary.md")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    assert len(lines) == 3  # two protocols for the first run, one for the second
    sampled, full = lines[0].split(" | "), lines[1].split(" | ")
    # Best trained is full on 1 + N but LoRA on the full catalog; the best baseline is item-kNN on both.
    assert sampled[2].startswith("full 0.420") and full[2].startswith("lora 0.070")
    assert sampled[5].startswith("item-knn 0.330") and full[5].startswith("item-knn 0.080")
    assert "AVX2" in (tmp_path / "summary.md").read_text()


def test_refuses_a_missing_run_and_a_file_it_did_not_write(summary, tmp_path):
    with pytest.raises(SystemExit):
        summary.main([str(tmp_path / "nowhere")])
    run = _results(tmp_path / "a", False)
    (tmp_path / "notes.md").write_text("mine")
    with pytest.raises(SystemExit):
        summary.main([str(run), "--out", str(tmp_path / "notes.md")])
    assert (tmp_path / "notes.md").read_text() == "mine"


def test_a_run_that_records_its_precision_says_so_in_its_rows(summary, tmp_path, capsys):
    old = _results(tmp_path / "old", False)
    new = _results(tmp_path / "new", False)
    results = json.loads((new / "results.json").read_text())
    for row in results["results"]:
        if row["trainable_params"]:
            row["precision"] = {"training": "bf16", "scoring": "bf16"}
    (new / "results.json").write_text(json.dumps(results))
    assert summary.main([str(old), str(new)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    assert "training" not in lines[0] and "uniform negatives, bf16 training)" in lines[1]


def test_the_paired_cell_is_the_runs_own_comparison_of_the_two_rows_it_names(summary, tmp_path, capsys):
    run = _results(tmp_path / "a", True)
    results = json.loads((run / "results.json").read_text())
    interval = {"mean": 0.5, "low": 0.25, "high": 0.75}
    results["paired"] = [
        # The line's best trained row is `full` on 1 + N and `lora` on the catalog, its best baseline item-kNN on both.
        {"method": "full", "reference": "item-knn", "protocol": "sampled", "difference": {"mean": 0.012, "low": 0.002, "high": 0.022}, "ratio": interval},
        {"method": "full", "reference": "tfidf", "protocol": "sampled", "difference": interval, "ratio": interval},
        {"method": "lora", "reference": "item-knn", "protocol": "full", "difference": interval, "ratio": {"mean": 0.875, "low": 0.8, "high": 0.95}},
    ]  # fmt: skip
    (run / "results.json").write_text(json.dumps(results))
    old = _results(tmp_path / "old", True)
    assert summary.main([str(run), str(old)]) == 0
    lines = [ln.split(" | ") for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    assert lines[0][6] == "+0.0120 [+0.0020, +0.0220]"
    assert lines[1][6] == "0.875× [0.800, 0.950]"
    assert lines[2][6] == lines[3][6] == "—"  # a run without ranks has no paired rows
    assert lines[0][9].startswith("Some CPU (AVX2)")


def test_lora_against_full_is_the_runs_own_or_made_from_its_ranks_with_its_seed(summary, tmp_path, capsys):
    full_ranks = {"sampled": {"better": [0, 1, 2, 3, 4, 5], "tied": [0] * 6}, "full": {"better": [0, 5, 20, 2, 30, 9], "tied": [0] * 6}}
    lora_ranks = {"sampled": {"better": [0, 1, 2, 3, 9, 9], "tied": [0] * 6}, "full": {"better": [1, 5, 20, 2, 30, 40], "tied": [0] * 6}}
    own = {"method": "lora", "reference": "full", "protocol": "sampled", "difference": {"mean": -0.01, "low": -0.02, "high": 0.0},
           "ratio": {"mean": 0.96, "low": 0.92, "high": 1.0}}  # fmt: skip
    runs = []
    for name, paired in (("own", [own]), ("older", [])):
        run = _results(tmp_path / name, True)
        results = json.loads((run / "results.json").read_text())
        rows = {r["method"]: r for r in results["results"]}
        rows["lora"]["ranks"], rows["full"]["ranks"] = lora_ranks, full_ranks
        results |= {"paired": paired, "seed": 3}
        (run / "results.json").write_text(json.dumps(results))
        runs.append(run)
    runs.append(_results(tmp_path / "no-ranks", True))
    assert summary.main([str(r) for r in runs]) == 0
    cells = [ln.split(" | ")[7] for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    compare = load_benchmark("compare_methods.py")
    made = {p: compare.compare_rows({"method": "lora", "ranks": lora_ranks}, {"method": "full", "ranks": full_ranks}, p, seed=3)["ratio"]
            for p in ("sampled", "full")}  # fmt: skip
    assert made["sampled"]["mean"] < 1.0 and made["full"]["mean"] < 1.0  # lora trails on both: a cell that lost it would show
    as_text = {p: f"{r['mean']:.3f}× [{r['low']:.3f}, {r['high']:.3f}]" for p, r in made.items()}
    # The run's own comparison wins; a pair it did not compare is made from its ranks with its seed; no ranks, no cell.
    assert cells == ["0.960× [0.920, 1.000]", as_text["full"], as_text["sampled"], as_text["full"], "—", "—"]


def test_a_list_file_names_the_runs_in_its_order(summary, tmp_path, capsys):
    first, second = _results(tmp_path / "a", False), _results(tmp_path / "b", True)
    listing = tmp_path / "table.runs"
    listing.write_text(f"{second}\n{first}\n")
    assert summary.main([f"@{listing}"]) == 0
    lines = [ln.split(" | ") for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    assert [ln[1] for ln in lines] == ["1 + N", "full catalog", "1 + N"]  # the second folder first, as listed


def _paired(method, reference, protocol, kind, mean, low, high):
    other = "ratio" if kind == "difference" else "difference"
    return {"method": method, "reference": reference, "protocol": protocol,
            kind: {"mean": mean, "low": low, "high": high}, other: {"mean": 0.0, "low": 0.0, "high": 0.0}}  # fmt: skip


def _judged(summary, results) -> dict:
    return {(b["bar"], b["protocol"]): b for b in summary.judge_bars(results)}


def test_cold_item_bars_judge_the_best_row_and_the_weakest_peft_method_paired(summary):
    rows = [_row("lora", 10, 0.33), _row("ia3", 5, 0.31), _row("full", 100, 0.37), _row("tfidf", 0, 0.30)]
    results = {"dataset": "beauty", "split": "cold-item", "seed": 0, "preset": "cpu", "every_method": True, "wall_seconds": 3700,
               "protocol": {"full_catalog": False}, "results": rows,
               "paired": [_paired("lora", "tfidf", "sampled", "difference", 0.03, 0.01, 0.05),
                          _paired("ia3", "tfidf", "sampled", "difference", 0.01, -0.005, 0.025),
                          _paired("lora", "full", "sampled", "ratio", 0.96, 0.95, 0.975)]}  # fmt: skip
    judged = _judged(summary, results)
    # Full fine-tuning is the best row at 0.37 [0.36, 0.38]: the 0.36 bar is met by the whole interval.
    assert judged[("cold-item", "sampled")]["value"].startswith("full 0.370")
    assert judged[("cold-item", "sampled")]["verdict"] == "met, the interval too"
    # The weakest PEFT method by its paired lead (IA3, not LoRA; full is not PEFT) decides the bar.
    every = judged[("every-peft", "sampled")]
    assert every["value"].startswith("ia3 against tfidf: +0.0100") and every["verdict"] == "met by the mean, not by the interval"
    assert judged[("lora", "sampled")]["verdict"] == "missed by the mean, not by the interval"
    assert judged[("minutes", "—")]["verdict"] == "missed"
    assert not any(bar in ("lead", "catalog", "no-priors") for bar, _ in judged)  # cold-user bars only


def test_cold_user_bars_take_the_strongest_catalog_peer_and_hybrid_with_cooccurrence(summary):
    rows = [_row("lora", 10, 0.42, 0.070), _row("full", 100, 0.43, 0.072), _row("hybrid+cooc", 0, 0.41, 0.060),
            _row("item-knn", 0, 0.30, 0.065), _row("hybrid+nbr", 0, 0.425, 0.080), _row("tfidf", 0, 0.30, 0.04)]  # fmt: skip
    results = {"dataset": "beauty", "split": "cold-user", "seed": 0, "preset": "cpu", "every_method": False, "wall_seconds": 600,
               "protocol": {"full_catalog": True}, "settings": {"priors": ["popularity"]}, "results": rows,
               "paired": [_paired("full", "item-knn", "full", "ratio", 1.108, 1.02, 1.2),
                          _paired("full", "hybrid+cooc", "sampled", "difference", 0.02, 0.01, 0.03)]}  # fmt: skip
    judged = _judged(summary, results)
    # item-kNN is the strongest of the three named peers over the catalog; hybrid+nbr is not one of them.
    assert judged[("catalog", "full")]["value"].startswith("full against item-knn: 1.108×")
    assert judged[("catalog", "full")]["verdict"] == "met by the mean, not by the interval"
    assert judged[("lead", "sampled")]["verdict"] == "met by the mean, not by the interval"
    assert ("no-priors", "sampled") not in judged  # the run trained with priors
    assert ("minutes", "—") not in judged  # a --methods subset says nothing about the preset's time


def test_a_run_of_the_language_model_alone_says_so_in_its_rows(summary, tmp_path, capsys):
    recipe, alone = _results(tmp_path / "recipe", False), _results(tmp_path / "alone", False)
    results = json.loads((alone / "results.json").read_text())
    (alone / "results.json").write_text(json.dumps(results | {"settings": {"priors": []}}))
    assert summary.main([str(recipe), str(alone)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    assert "no priors" not in lines[0] and "uniform negatives, no priors)" in lines[1]


def test_a_run_without_ranks_is_judged_on_its_means_and_says_so(summary):
    rows = [_row("lora", 10, 0.309), _row("tfidf", 0, 0.305)]
    results = {"dataset": "beauty", "split": "cold-user", "seed": 0, "preset": "cpu", "wall_seconds": 300,
               "protocol": {"full_catalog": False}, "settings": {"priors": []}, "results": rows}  # fmt: skip
    judged = _judged(summary, results)
    assert judged[("no-priors", "sampled")]["value"] == "lora 0.309 against tfidf 0.305: +0.0040 (unpaired, no ranks kept)"
    assert judged[("no-priors", "sampled")]["verdict"] == "met"
    assert ("minutes", "—") not in judged  # one method trained, and the file predates `every_method`


def test_bars_are_a_second_table_only_when_asked(summary, tmp_path, capsys):
    run = _results(tmp_path / "a", True)
    assert summary.main([str(run)]) == 0
    assert "| run | commit | bar |" not in capsys.readouterr().out
    assert summary.main([str(run), "--bars"]) == 0
    bar_lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty cold-user") and "≥" in ln]
    assert any("LoRA ≥ 0.97× full fine-tuning" in ln and "unpaired" in ln for ln in bar_lines)


def test_without_ranks_the_weakest_peft_method_is_the_one_with_the_lowest_mean(summary):
    rows = [_row("lora", 10, 0.33), _row("prefix", 5, 0.294), _row("full", 100, 0.25), _row("tfidf", 0, 0.295)]
    results = {"dataset": "beauty", "split": "cold-item", "seed": 0, "protocol": {"full_catalog": False}, "results": rows}
    every = _judged(summary, results)[("every-peft", "sampled")]
    # Full fine-tuning trails TF-IDF too, but it is not a PEFT method; prefix is the one that decides.
    assert every["value"] == "prefix 0.294 against tfidf 0.295: -0.0010 (unpaired, no ranks kept)"
    assert every["verdict"] == "missed"


def test_a_run_of_some_methods_names_them_in_its_rows(summary, tmp_path, capsys):
    """Its "best fine-tuned" is the best of the methods it trained, which the row must say."""
    whole, some = _results(tmp_path / "whole", False), _results(tmp_path / "some", False)
    results = json.loads((some / "results.json").read_text())
    (some / "results.json").write_text(json.dumps(results | {"every_method": False}))
    assert summary.main([str(whole), str(some)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| beauty")]
    trained = sorted(r["method"] for r in results["results"] if r["trainable_params"] > 0)
    assert ", only" not in lines[0] and f", only {'+'.join(trained)})" in lines[1]


def test_readme_tables_are_rebuilt_between_their_marks_and_nothing_else_changes(summary, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the marks name their lists from the current directory
    _results(tmp_path / "a", True)
    Path("all.runs").write_text("a\n")
    readme = Path("README.md")
    readme.write_text("# Results\n\nProse before.\n\n<!-- summary.py table all.runs -->\n| stale | row |\n<!-- /summary.py -->\n\n"
                      "Prose between.\n\n<!-- summary.py bars all.runs -->\nold bars\n<!-- /summary.py -->\nProse after.\n")  # fmt: skip
    assert summary.main(["--readme", "README.md"]) == 0
    text = readme.read_text()
    assert "stale" not in text and "old bars" not in text
    assert text.startswith("# Results\n\nProse before.\n\n") and text.endswith("<!-- /summary.py -->\nProse after.\n")
    assert "\n\nProse between.\n\n" in text
    table = text.split("<!-- summary.py table all.runs -->\n")[1].split("<!-- /summary.py -->")[0]
    bars = text.split("<!-- summary.py bars all.runs -->\n")[1].split("<!-- /summary.py -->")[0]
    assert table.startswith("| split | protocol |") and "full 0.420" in table  # the run's best 1 + N row
    assert bars.startswith("| run | commit | bar |") and "| abc1234 |" in bars
    assert "2 tables rebuilt" in capsys.readouterr().out
    assert summary.main(["--readme", "README.md"]) == 0 and readme.read_text() == text  # a rebuild is stable
    assert "(no change)" in capsys.readouterr().out


@pytest.mark.parametrize("body, hint", [
    ("no marks at all\n", "marks no table"),
    ("<!-- summary.py table all.runs -->\n| row |\n", "lacks its"),
    ("<!-- summary.py table missing.runs -->\n| row |\n<!-- /summary.py -->\n", "missing.runs"),
])  # fmt: skip
def test_a_readme_that_cannot_be_rebuilt_is_refused_and_left_as_it_was(summary, tmp_path, monkeypatch, capsys, body, hint):
    monkeypatch.chdir(tmp_path)
    _results(tmp_path / "a", False)
    Path("all.runs").write_text("a\n")
    # A closed block first, so a failure in the second must not leave the first rebuilt on disk.
    text = "<!-- summary.py table all.runs -->\nold\n<!-- /summary.py -->\n" + body if "marks" not in hint else body
    Path("README.md").write_text(text)
    with pytest.raises(SystemExit):
        summary.main(["--readme", "README.md"])
    assert hint in capsys.readouterr().err
    assert Path("README.md").read_text() == text


def test_runs_and_readme_are_one_or_the_other(summary, tmp_path, capsys):
    for argv in ([], [str(_results(tmp_path / "a", False)), "--readme", str(tmp_path / "README.md")]):
        with pytest.raises(SystemExit):
            summary.main(argv)
        assert "one of the two" in capsys.readouterr().err


def test_the_committed_benchmark_readme_holds_the_tables_its_results_make(summary, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)  # the README's marks name their lists from the repository root
    text = (root / "benchmarks" / "README.md").read_text()

    def fail(message):
        raise AssertionError(message)

    assert summary.fill_marked_tables(text, fail) == text, "rebuild with: python benchmarks/summary.py --readme benchmarks/README.md"
