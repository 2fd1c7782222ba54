"""The data flags, split building and metric table the CLI wires in."""

import argparse

import pytest

from coldstart_peft.data.commands import add_data_arguments, build_split_from_args, format_metric_table, run_baseline_evaluation


def _folder(tmp_path):
    titles = ["red lipstick", "pink lipstick", "beard oil", "dry shampoo", "hair spray", "nail polish"]
    (tmp_path / "items.csv").write_text("item_id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(titles)))
    rows = [(f"u{u}", (u + j) % 6, j) for u in range(40) for j in range(3)]
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    return tmp_path


def _parse(*argv):
    parser = add_data_arguments(argparse.ArgumentParser())
    parser.add_argument("--method", default="popularity")
    return parser.parse_args(list(argv))


def test_defaults_are_the_headline_protocol():
    args = _parse()
    assert (args.dataset, args.split, args.k_context, args.n_negatives, args.seed, args.max_test_users) == (
        "beauty", "cold-user", 3, 99, 0, 1000,
    )  # fmt: skip
    with pytest.raises(SystemExit):
        _parse("--split", "warm-user")


def test_build_split_from_args_on_a_folder_and_save(tmp_path):
    (tmp_path / "data").mkdir()
    folder = _folder(tmp_path / "data")
    args = _parse("--dataset", str(folder), "--k-context", "1", "--n-negatives", "2", "--save-split", str(tmp_path / "s.json"))
    split = build_split_from_args(args)
    assert split.config["k"] == 1 and all(len(r.candidates) == 3 for r in split.test)
    assert (tmp_path / "s.json").exists()


def test_run_baseline_evaluation_and_table(tmp_path):
    args = _parse("--dataset", str(_folder(tmp_path)), "--k-context", "1", "--n-negatives", "2", "--method", "hybrid")
    summary = run_baseline_evaluation(args)
    assert summary["n_cases"] == summary["report"]["overall"]["n"]["mean"] > 0
    assert "lambda" in summary
    table = format_metric_table(summary)
    assert table.startswith("hybrid on ") and "overall" in table and "ndcg@10" in table
    flat = format_metric_table(summary["report"]["overall"])
    assert flat.splitlines()[2].startswith("overall")
