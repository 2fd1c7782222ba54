"""Benchmark report files: a rerun replaces its own JSON, markdown and plots, never someone else's."""

import json

import pytest

from coldstart_peft.errors import OverwriteRefusedError
from coldstart_peft.outputs import (
    MARKDOWN_MARK,
    REPORT_FORMAT,
    check_report_files,
    is_markdown_report,
    write_report_files,
)


def test_a_rerun_replaces_its_own_report_files(tmp_path):
    write_report_files(tmp_path / "run", "results", {"ndcg": 0.1}, "# first\n")
    write_report_files(tmp_path / "run", "results", {"ndcg": 0.2}, "# second\n")
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == {"format": REPORT_FORMAT, "ndcg": 0.2}
    assert (tmp_path / "run" / "results.md").read_text() == f"{MARKDOWN_MARK}\n# second\n"
    assert is_markdown_report(tmp_path / "run" / "results.md")


@pytest.mark.parametrize("foreign", ["results.json", "results.md", "pareto.png", "pareto.png alone"])
def test_a_file_the_library_did_not_write_is_refused_and_kept(tmp_path, foreign):
    if foreign == "pareto.png":  # a plot is ours only beside our report: here the report is someone else's
        (tmp_path / "results.json").write_text('{"mine": true}')
    (tmp_path / foreign.split()[0]).write_text("mine")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(OverwriteRefusedError, match={"pareto.png": "results.json"}.get(foreign, foreign.split()[0])):
        check_report_files(tmp_path, "results", plots=("pareto.png",))
    if not foreign.startswith("pareto"):  # the writer checks the report pair again; plots are the caller's
        with pytest.raises(OverwriteRefusedError):
            write_report_files(tmp_path, "results", {"ndcg": 0.3}, "# table\n")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_a_plot_beside_our_own_report_may_be_replaced(tmp_path):
    write_report_files(tmp_path, "results", {"ndcg": 0.1}, "# table\n")
    (tmp_path / "pareto.png").write_bytes(b"\x89PNG old plot")
    check_report_files(tmp_path, "results", plots=("pareto.png",))  # no error: the folder is ours


def test_markdown_without_the_mark_is_not_ours(tmp_path):
    (tmp_path / "notes.md").write_text(f"# notes\n{MARKDOWN_MARK}\n")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00")
    assert not is_markdown_report(tmp_path / "notes.md") and not is_markdown_report(tmp_path / "binary.md")
    assert not is_markdown_report(tmp_path / "missing.md")


def test_lists_of_numbers_take_one_line_and_nothing_else_changes(tmp_path):
    report = {"ranks": list(range(1000)), "ci": [0.25, -1e-07, 2.5e20], "nested": [[1, 2], [3]], "mixed": [1, "x"],
              "text": "[\n 1,\n 2\n]", "tight": "[1,2]", "empty": []}  # fmt: skip
    write_report_files(tmp_path, "results", report, "# r\n")
    text = (tmp_path / "results.json").read_text()
    assert json.loads(text) == {"format": REPORT_FORMAT, **report}
    assert len(text.splitlines()) < 30, "a thousand per-user ranks are one line, not a thousand"
    assert '"ranks": [0, 1, 2, ' in text and '"ci": [0.25, -1e-07, 2.5e+20]' in text
