"""``coldstart-peft search`` and ``recommend`` print a readable table for the demo shop."""

from __future__ import annotations

import sys

import pytest
from _retrieval_fakes import save_tiny_adapter

import coldstart_peft.data.registry as registry
from coldstart_peft.cli import main
from coldstart_peft.demo import demo_dataset


@pytest.fixture
def small_demo(monkeypatch):
    """``--dataset demo`` as a 60-item, 40-user shop, so the test encodes little."""
    monkeypatch.setitem(registry.GENERATED_DATASETS, "demo", lambda: demo_dataset(n_items=60, n_users=40))
    monkeypatch.setattr(registry, "_CACHE", {})


@pytest.fixture
def adapter(tmp_path, tiny_base):
    return save_tiny_adapter(tiny_base, tmp_path / "adapter")


def table_rows(output: str) -> list[str]:
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "item"])
    return lines[header + 2 :]


def test_search_prints_a_table_and_caches_the_index(small_demo, adapter, capsys):
    assert main(["search", "--adapters", str(adapter), "--dataset", "demo", "--k", "5", "red lipstick"]) == 0
    out = capsys.readouterr().out
    assert "query context: Query: red lipstick" in out
    for column in ("title", "brand", "category", "price", "score"):
        assert column in out
    rows = table_rows(out)
    assert len(rows) == 5 and rows[0].startswith("1  D")
    assert "$" in rows[0]
    assert (adapter / "index" / "demo.safetensors").is_file()


def test_recommend_leaves_out_the_history(small_demo, adapter, capsys):
    assert main(["recommend", "--adapters", str(adapter), "--dataset", "demo", "--history", "D00001, D00002", "--k", "58"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("user context: Recently bought:")
    rows = table_rows(out)
    assert len(rows) == 58
    assert not any(" D00001 " in row or " D00002 " in row for row in rows)


def test_unknown_dataset_is_one_clear_line(adapter, capsys):
    assert main(["search", "--adapters", str(adapter), "--dataset", "no-such-shop", "x"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'no-such-shop'" in err and "demo" in err


def test_index_kind_ann_caches_the_faiss_index_with_the_embeddings(small_demo, adapter, capsys):
    pytest.importorskip("faiss")
    from safetensors import safe_open

    assert main(["search", "--adapters", str(adapter), "--dataset", "demo", "--index-kind", "ann", "--k", "5", "red"]) == 0
    assert len(table_rows(capsys.readouterr().out)) == 5
    with safe_open(str(adapter / "index" / "demo.safetensors"), framework="pt") as handle:
        assert "ann_index" in handle.keys()


def test_index_kind_ann_without_faiss_names_the_install_command(adapter, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes ``import faiss`` raise ImportError
    assert main(["search", "--adapters", str(adapter), "--dataset", "demo", "--index-kind", "ann", "x"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'coldstart-peft[ann]'" in err and "--index-kind exact" in err
