"""The method comparison benchmark, smoke preset on the demo shop: schema, table and plot."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

from _scripts import BENCHMARKS, load_benchmark

from coldstart_peft.evaluation import metrics_from_ranks

SCRIPT = BENCHMARKS / "compare_methods.py"
FULL_METRICS = {"recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr"}


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_methods.py")


def _first_table_ndcgs(table: str) -> list[float]:
    """NDCG@10 of each row of the sampled table (the one before the first blank line after it)."""
    rows = []
    for line in table.splitlines():
        if line.startswith("| ") and "NDCG" not in line:
            rows.append(float(line.split("|")[3].split()[0]))
        elif rows:
            break
    return rows


def _check_full(row: dict) -> None:
    assert set(row["metrics_full"]) == FULL_METRICS == set(row["ci95_full"])
    for name, (low, high) in row["ci95_full"].items():
        assert 0.0 <= low <= row["metrics_full"][name] <= high <= 1.0
    assert row["metrics_full"]["recall@10"] <= row["metrics_full"]["recall@20"]


@pytest.mark.slow
def test_smoke_preset_writes_the_promised_files(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dataset", "demo", "--preset", "smoke", "--methods",
         "popularity,hybrid+cooc,zero-shot,lora,prompt", "--full-catalog", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["machine"]) >= {"cpu", "cores", "gpu", "torch", "transformers", "peft"}
    assert isinstance(results["machine"]["cores"], int)
    assert results["dataset"] == "demo" and results["split"] == "cold-user" and results["preset"] == "smoke"
    assert results["every_method"] is False  # --methods named a subset, so its wall time is no preset's
    protocol = results["protocol"]
    assert {k: protocol[k] for k in ("split", "k_context", "n_negatives", "negatives", "n_test_users", "full_catalog")} == {
        "split": "cold-user", "k_context": 3, "n_negatives": 99, "negatives": "uniform", "n_test_users": 40, "full_catalog": True}
    assert protocol["full_catalog_pool"] == 600 and protocol["split_config"]["max_test_users"] == 40  # the demo catalog
    assert protocol["repeat_purchases_kept"] is True and protocol["repeat_purchase_share"] == results["audit"]["target_in_context"]
    assert len(results["data_fingerprint"]) == 16 and len(results["split_fingerprint"]) == 16
    audit = results["audit"]
    assert audit["cases"] == 40 and all(0.0 <= audit[k] <= 1.0 for k in audit if k != "cases")
    assert "audit of the test targets" in proc.stdout and results["code"]["commit"]
    rows = {r["method"]: r for r in results["results"]}
    assert set(rows) == {"popularity", "hybrid+cooc", "zero-shot", "lora", "prompt"}
    keys = {"method", "scorer", "trainable_params", "trainable_pct", "adapter_bytes", "train_seconds",
            "train_pairs_per_s", "score_pairs_per_s", "peak_rss_mb", "metrics"}  # fmt: skip
    for row in rows.values():
        assert keys <= set(row)
        assert set(row["metrics"]) == {"ndcg@10", "hr@10", "mrr", "auc"}
        assert all(0.0 <= v <= 1.0 for v in row["metrics"].values())
        _check_full(row)  # bi-encoder methods and baselines alike
    assert rows["popularity"]["trainable_params"] == 0 and rows["zero-shot"]["adapter_bytes"] == 0
    assert 0 < rows["prompt"]["trainable_params"] < rows["lora"]["trainable_params"]
    assert rows["lora"]["adapter_bytes"] > 0 and rows["lora"]["train_seconds"] > 0
    # auto resolves per machine (one probe per process), so every trained row says what it ran in.
    for name in ("lora", "prompt"):
        ran = rows[name]["precision"]
        assert ran["training"] in ("fp32", "bf16") and ran["scoring"] == ran["training"]
    assert "precision" not in rows["popularity"]
    assert results["settings"]["train_negatives"] == 1  # the bi-encoder's default, resolved
    assert results["settings"]["lexical_units"] == "words"
    # Without --lr each method trains at its own recommended rate, and its row says which.
    assert results["settings"]["lr"] is None
    assert (rows["lora"]["lr"], rows["prompt"]["lr"]) == (1e-3, 1e-2) and "lr" not in rows["popularity"]
    # The whole run includes every method's training, so it cannot be shorter than their sum.
    assert results["wall_seconds"] >= sum(r["train_seconds"] for r in rows.values())
    table = (tmp_path / "results.md").read_text()
    ndcgs = _first_table_ndcgs(table)
    assert ndcgs == sorted(ndcgs, reverse=True) and len(ndcgs) == 5
    ran = rows["lora"]["precision"]
    assert f"lora {ran['training']}/{ran['scoring']}" in table.split("## Full catalog")[0]
    assert "## Full catalog" in table and all(f"| {name} |" in table.split("## Full catalog")[1] for name in rows)
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _check_paired(results, table)


def _check_paired(results: dict, table: str) -> None:
    """Each row keeps its users' ranks, which give back its figures; fine-tuned rows are compared user by user."""
    rows = {r["method"]: r for r in results["results"]}
    for row in rows.values():
        for protocol, means in (("sampled", row["metrics"]), ("full", row["metrics_full"])):
            ranks = row["ranks"][protocol]
            assert len(ranks["better"]) == len(ranks["tied"]) == 40
            per_user = metrics_from_ranks(ranks["better"], ranks["tied"], ks=(10,))["ndcg@10"]
            assert per_user.mean() == pytest.approx(means["ndcg@10"], abs=1e-9), (row["method"], protocol)
    found = {(c["method"], c["protocol"], c["reference"]): c for c in results["paired"]}
    # hybrid+cooc is the only reference this run has, on both protocols (no tfidf, hybrid+nbr, item-knn or sasrec row).
    assert set(found) == {(m, p, "hybrid+cooc") for m in ("lora", "prompt") for p in ("sampled", "full")}
    for (method, protocol, reference), c in found.items():
        key = "metrics" if protocol == "sampled" else "metrics_full"
        difference = rows[method][key]["ndcg@10"] - rows[reference][key]["ndcg@10"]
        assert c["difference"]["mean"] == pytest.approx(difference, abs=1e-9) and c["n"] == 40
        assert c["difference"]["low"] <= c["difference"]["mean"] <= c["difference"]["high"]
    assert "## Paired against the no-LM references" in table and "| lora | 1 + 99 | hybrid+cooc |" in table


def test_cold_item_popularity_negatives_and_full_catalog_for_baselines(compare, tmp_path, capsys):
    assert compare.main(["--dataset", "demo", "--preset", "smoke", "--split", "cold-item", "--negatives", "popularity",
                         "--full-catalog", "--methods", "popularity,tfidf", "--out", str(tmp_path)]) == 0  # fmt: skip
    results = json.loads((tmp_path / "results.json").read_text())
    protocol = results["protocol"]
    assert protocol["split"] == "cold-item" and protocol["negatives"] == "popularity" and protocol["full_catalog"]
    assert protocol["split_config"]["negative_sampling"] == "popularity" and protocol["split_config"]["negative_pool"] == "cold"
    assert protocol["full_catalog_pool"] == 60 and protocol["full_catalog_pool_kind"] == "the cold items"  # 10% of 600
    rows = {r["method"]: r for r in results["results"]}
    assert set(rows) == {"popularity", "tfidf"}
    for row in rows.values():
        _check_full(row)
    # Cold items were never bought in training: popularity ties them all, text does not.
    assert rows["tfidf"]["metrics_full"]["ndcg@10"] > rows["popularity"]["metrics_full"]["ndcg@10"]
    table = (tmp_path / "results.md").read_text()
    assert "popularity-sampled negatives" in table and "60 items of the pool (the cold items)" in table
    assert (tmp_path / "pareto.png").is_file() and "audit of the test targets" in capsys.readouterr().out


def test_a_pair_scorer_gets_a_note_not_a_crash(compare):
    class PairsOnly:  # a cross-encoder: no item embeddings
        pass

    row = compare.full_catalog_of_method(PairsOnly(), None, argparse.Namespace(scorer="cross-encoder", seed=0))
    assert "cross-encoder" in row["full_catalog_note"] and "metrics_full" not in row
    note = {"method": "x", "scorer": "cross-encoder", **row}
    assert row["full_catalog_note"] in "\n".join(compare.full_catalog_table(
        {"protocol": {"full_catalog": True, "full_catalog_pool": 5, "full_catalog_pool_kind": "the whole catalog"},
         "results": [note]}))  # fmt: skip


def test_domain_without_the_cold_domain_split_is_refused(compare, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--dataset", "demo", "--domain", "Makeup"])
    assert exit_info.value.code == 2 and "--split cold-domain" in capsys.readouterr().err


def test_priors_names_the_features_trained_with_and_refuses_unknown_ones(compare, tmp_path, capsys):
    assert compare.main(["--dataset", "demo", "--preset", "smoke", "--priors", "cooccurrence+popularity",
                         "--methods", "popularity", "--out", str(tmp_path)]) == 0  # fmt: skip
    settings = json.loads((tmp_path / "results.json").read_text())["settings"]
    assert settings["priors"] == ["popularity", "cooccurrence"]  # the library's order, not the flag's
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--dataset", "demo", "--priors", "popularity+bogus"])
    assert exit_info.value.code == 2 and "bogus" in capsys.readouterr().err


def test_a_learning_rate_that_is_not_positive_is_refused(compare, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--dataset", "demo", "--lr", "0"])
    assert exit_info.value.code == 2 and "--lr must be a positive learning rate" in capsys.readouterr().err


def test_cold_domain_holds_out_the_named_domain_or_the_most_common(compare):
    def split(domain=None):
        return compare._split(argparse.Namespace(dataset="demo", preset="smoke", split="cold-domain", k_context=3,
                                                 seed=0, negatives="uniform", domain=domain))  # fmt: skip

    default, named = split(), split("Skin Care")
    counts = {d: sum(i.domain == d for i in default.dataset.items.values()) for d in default.dataset.domains}
    assert default.config["domain"] == max(counts, key=counts.get) != "Skin Care"
    assert named.config["domain"] == "Skin Care" and set(named.candidate_pool()) == set(named.excluded_items)
    assert all(named.dataset.items[i].domain == "Skin Care" for i in named.candidate_pool())
    assert all(r.target in named.excluded_items for r in named.test)


@pytest.mark.slow
def test_peers_run_by_name_with_the_presets_budget(compare, tmp_path):
    assert "sasrec" in compare.baseline_names() and "item-knn" in compare.baseline_names()
    assert compare.main(["--dataset", "demo", "--preset", "smoke", "--full-catalog", "--methods", "sasrec,popularity",
                         "--out", str(tmp_path)]) == 0  # fmt: skip
    rows = {r["method"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    assert set(rows) == {"sasrec", "popularity"}
    for row in rows.values():
        _check_full(row)
    peer = rows["sasrec"]["peer"]
    assert peer["budget_s"] == compare.PRESETS["smoke"]["peer_seconds"] and peer["epochs"] >= 1
    assert peer["validation"] and all("valid_ndcg@10" in r for r in peer["validation"])
    assert "peer" not in rows["popularity"]


def test_id_peers_are_skipped_by_default_only_where_no_target_was_ever_bought(compare):
    names = ["popularity", "sasrec", "lora"]
    blind = compare.blind_peers(names, {"cases": 10, "target_unseen_in_training": 1.0})
    assert set(blind) == {"sasrec"} and "--methods" in blind["sasrec"]
    assert compare.blind_peers(names, {"cases": 10, "target_unseen_in_training": 0.9}) == {}
    assert compare.blind_peers(names, {"cases": 0}) == {}


def test_the_default_list_on_cold_items_skips_sasrec_and_says_so(compare, tmp_path, capsys, monkeypatch):
    import coldstart_peft

    # The default list without the fine-tuning methods: every baseline and peer, in seconds.
    monkeypatch.setattr(coldstart_peft, "default_host", lambda: argparse.Namespace(methods=argparse.Namespace(names=list)))
    monkeypatch.setattr(compare, "baseline_names", lambda: ["popularity", "tfidf", *compare.peers()])
    assert compare.main(["--dataset", "demo", "--preset", "smoke", "--split", "cold-item", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert {r["method"] for r in results["results"]} == {"popularity", "tfidf"}
    assert set(results["skipped"]) == {"sasrec"}
    assert "skipping sasrec" in capsys.readouterr().out
    assert "Not run: sasrec (no test target was bought in training" in (tmp_path / "results.md").read_text()


def test_paired_compares_each_fine_tuned_row_with_the_bars_references(compare):
    def row(name, scorer, better, full_better, full_ndcg):
        ranks = {"sampled": {"better": better, "tied": [0] * 4}, "full": {"better": full_better, "tied": [0] * 4}}
        return {"method": name, "scorer": scorer, "ranks": ranks, "metrics_full": {"ndcg@10": full_ndcg}}

    rows = [row("tfidf", "baseline", [3, 3, 3, 3], [50] * 4, 0.0), row("hybrid+cooc", "baseline", [1, 2, 3, 4], [9, 9, 50, 50], 0.2),
            row("item-knn", "baseline", [9] * 4, [0, 50, 50, 50], 0.25), row("sasrec", "baseline", [9] * 4, [50] * 4, 0.0),
            row("hybrid+nbr", "baseline", [0, 2, 3, 4], [50] * 4, 0.0), row("lora", "bi-encoder", [0, 0, 3, 4], [0, 0, 50, 50], 0.5)]  # fmt: skip
    found = {(c["protocol"], c["reference"]): c for c in compare.paired({"results": rows})}
    # Over the full pool the bar's reference is the best of hybrid+cooc, item-knn and sasrec: item-knn here.
    assert set(found) == {("sampled", "tfidf"), ("sampled", "hybrid+cooc"), ("sampled", "hybrid+nbr"),
                          ("full", "item-knn"), ("full", "hybrid+nbr")}  # fmt: skip
    ndcg = lambda better: float(np.mean([1 / np.log2(b + 2) if b < 10 else 0.0 for b in better]))  # noqa: E731
    assert found[("sampled", "hybrid+cooc")]["difference"]["mean"] == pytest.approx(ndcg([0, 0, 3, 4]) - ndcg([1, 2, 3, 4]))
    assert found[("full", "item-knn")]["ratio"]["mean"] == pytest.approx(ndcg([0, 0, 50, 50]) / ndcg([0, 50, 50, 50]))
    assert all(c["method"] == "lora" and c["n"] == 4 for c in found.values())


def test_each_parameter_efficient_row_is_also_paired_with_full_fine_tuning(compare):
    def row(name, scorer, better):
        ranks = {"sampled": {"better": better, "tied": [0] * 4}, "full": {"better": [b * 10 for b in better], "tied": [0] * 4}}
        return {"method": name, "scorer": scorer, "ranks": ranks}

    rows = [row("hybrid+cooc", "baseline", [5, 5, 5, 5]), row("full", "bi-encoder", [0, 1, 2, 3]),
            row("lora", "bi-encoder", [0, 1, 2, 9]), row("prompt", "bi-encoder", [3, 3, 3, 3])]  # fmt: skip
    comparisons = compare.paired({"results": rows})
    against_full = {(c["method"], c["protocol"]): c for c in comparisons if c["reference"] == "full"}
    # Full fine-tuning is not compared with itself, nor is a baseline with it.
    assert set(against_full) == {(m, p) for m in ("lora", "prompt") for p in ("sampled", "full")}
    ndcg = lambda better: float(np.mean([1 / np.log2(b + 2) if b < 10 else 0.0 for b in better]))  # noqa: E731
    lora = against_full[("lora", "sampled")]
    assert lora["ratio"]["mean"] == pytest.approx(ndcg([0, 1, 2, 9]) / ndcg([0, 1, 2, 3]))
    assert lora["ratio"]["low"] <= lora["ratio"]["mean"] <= lora["ratio"]["high"] < 1.0 + 1e-12
    # Over the full pool only full's first user is in the top 10 (ranks 0, 10, 20, 30): lora ties it.
    assert against_full[("lora", "full")]["difference"]["mean"] == pytest.approx(0.0)
    assert {(c["method"], c["reference"]) for c in comparisons if c["reference"] != "full"} == {
        (m, "hybrid+cooc") for m in ("full", "lora", "prompt")}
    table = "\n".join(compare.paired_table({"paired": comparisons}))
    no_lm, with_full = table.split("## Paired against full fine-tuning")
    assert "## Paired against the no-LM references" in no_lm and "| full | 1 + 99 | hybrid+cooc |" in no_lm
    assert "| 1 + 99 | full |" not in no_lm and "| full pool | full |" not in no_lm
    assert "| lora | 1 + 99 | full |" in with_full and "hybrid+cooc" not in with_full


def test_resume_keeps_the_rows_it_has_and_runs_only_the_rest(compare, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--dataset", "demo", "--preset", "smoke", "--out", str(out)]
    assert compare.main([*common, "--methods", "popularity,tfidf"]) == 0
    first = json.loads((out / "results.json").read_text())
    # A mark the popularity row could only keep by not being run again.
    first["results"][0]["fit_seconds"] = 123.0
    first["wall_seconds"] = 60.0
    (out / "results.json").write_text(json.dumps(first))
    capsys.readouterr()
    assert compare.main([*common, "--methods", "popularity,tfidf,bm25", "--resume"]) == 0
    assert "resuming: 2 rows kept (popularity, tfidf), 1 to run" in capsys.readouterr().out
    resumed = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in resumed["results"]] == ["popularity", "tfidf", "bm25"]
    assert resumed["results"][0]["fit_seconds"] == 123.0 and resumed["segments"] == 2 and resumed["wall_seconds"] >= 60.0
    assert "Resumed: the rows come from 2 runs" in (out / "results.md").read_text()
    # Another seed is another run: refused by name, and the stopped run's file is left as it was.
    saved = (out / "results.json").read_bytes()
    with pytest.raises(SystemExit):
        compare.main([*common, "--methods", "popularity,tfidf,bm25", "--resume", "--seed", "1"])
    assert "differs from this one in seed" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == saved
    with pytest.raises(SystemExit):
        compare.main(["--dataset", "demo", "--preset", "smoke", "--resume", "--out", str(tmp_path / "none")])
    assert "does not exist; run without --resume" in capsys.readouterr().err


def test_a_method_whose_process_fails_is_named_and_the_run_goes_on(compare, tmp_path):
    out = tmp_path / "run"
    # A learning rate no loss survives: the worker stops on the NaN, the baseline after it still runs.
    # 1e9 was not enough: under AMX's bf16 kernels the cosine loss stayed finite with weights near 1e9.
    assert compare.main(["--dataset", "demo", "--preset", "smoke", "--methods", "lora,popularity", "--lr", "1e30",
                         "--out", str(out)]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["results"]] == ["popularity"]
    assert results["failed"]["lora"].startswith("coldstart_peft.errors.TrainingDivergedError: training diverged")
    assert "Failed (`--resume` runs them again): lora (coldstart_peft.errors.TrainingDivergedError" in (out / "results.md").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["--methods", "popularity,lroa"], "--methods: unknown 'lroa'; choose from popularity"),
    (["--methods", "lora", "--scorer-config", "max_length=4"], "max_length must be at least 8 tokens, got 4"),
    (["--methods", "lora", "--scorer", "nope"], "--scorer nope / --scorer-config: unknown scorer"),
    (["--methods", "popularity,lora", "--save-adapters", "KEPT"], "holds files that are not an adapter this library wrote"),
])  # fmt: skip
def test_a_bad_method_or_scorer_setting_is_refused_before_any_work(compare, tmp_path, capsys, argv, message):
    if "--save-adapters" in argv:  # a folder of someone's files where the lora adapter would go
        (tmp_path / "kept" / "lora").mkdir(parents=True)
        (tmp_path / "kept" / "lora" / "notes.txt").write_text("mine")
        argv = [str(tmp_path / "kept") if a == "KEPT" else a for a in argv]
    with pytest.raises(SystemExit):
        compare.main(["--dataset", "demo", "--preset", "smoke", *argv, "--out", str(tmp_path / "run")])
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()
    if "--save-adapters" in argv:
        assert (tmp_path / "kept" / "lora" / "notes.txt").read_text() == "mine"
