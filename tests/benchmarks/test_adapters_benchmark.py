"""The AdapterBank speed benchmark at toy sizes on a tiny random BERT: what it records, never how fast.

Each ratio must be the quotient of the rates it names, every bank size must have an add and a
hot-swap time, and the file must say which commit, machine and precision produced it.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from _scripts import load_benchmark
from coldstart_peft.outputs import REPORT_FORMAT


@pytest.fixture(scope="module")
def report(tiny_base, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapters")
    threads = torch.get_num_threads()
    try:
        returned = load_benchmark("adapters.py", "adapters_benchmark").main(
            ["--base-model", tiny_base, "--counts", "1,3", "--repeats", "1", "--add-rounds", "2", "--pairs", "8",
             "--mixed-domains", "2,3", "--max-length", "32", "--out", str(out)])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return returned, out


def test_writes_json_and_markdown_that_agree_with_the_returned_report(report):
    returned, out = report
    assert json.loads((out / "adapters.json").read_text()) == {"format": REPORT_FORMAT, **json.loads(json.dumps(returned))}
    table = (out / "adapters.md").read_text()
    assert f"commit {returned['commit']}" in table and returned["precision"]["name"] in table
    assert "mixed batch of 3 domains / single-domain throughput (gathered LoRA)" in table


def test_records_the_machine_code_and_precision(report):
    returned, _ = report
    assert returned["commit"] and isinstance(returned["dirty"], bool)
    assert returned["precision"]["name"] in ("fp32", "bf16") and returned["precision"]["reason"]
    machine = returned["machine_start"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and machine["cpu"]


def test_every_bank_size_has_add_and_swap_times(report):
    returned, _ = report
    for figure in ("add_ms", "swap_ms", "load_s"):
        assert set(returned[figure]) == {1, 3}
        assert all(math.isfinite(v) and v > 0 for v in returned[figure].values())


def test_each_ratio_is_the_quotient_of_the_rates_it_names(report):
    returned, _ = report
    rates = returned["pairs_per_second"]
    assert {"single_domain", "mixed_batch_2", "mixed_batch_3_peft", "grouped_by_domain_3", "merged_single_domain"} <= set(rates)
    assert set(returned["mixed_vs_single"]) == {"2", "2_peft", "3", "3_peft"}
    for name, ratio in returned["mixed_vs_single"].items():
        assert ratio == pytest.approx(rates[f"mixed_batch_{name}"] / rates["single_domain"])


def test_a_folder_holding_someone_elses_markdown_is_refused_before_any_work(tiny_base, tmp_path, monkeypatch):
    from coldstart_peft.errors import OverwriteRefusedError

    script = load_benchmark("adapters.py", "adapters_benchmark_refusal")
    (tmp_path / "adapters.md").write_text("my notes\n")
    monkeypatch.setattr(script, "AdapterBank", None)  # any use of the bank would fail: nothing may run
    with pytest.raises(OverwriteRefusedError, match="adapters.md"):
        script.main(["--base-model", tiny_base, "--counts", "1", "--repeats", "1", "--out", str(tmp_path)])
    assert (tmp_path / "adapters.md").read_text() == "my notes\n" and not (tmp_path / "adapters.json").exists()
