"""Arbitrary JSON fed to every manifest and config reader: each returns or raises a named error, never a raw one.

``max_examples`` is small so the suite stays fast; nesting goes past the parser's stack limit.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldstart_peft import create_host
from coldstart_peft.artifact import read_manifest
from coldstart_peft.checkpoint import load_checkpoint
from coldstart_peft.cli.options import parse_key_values
from coldstart_peft.data import Dataset, Item
from coldstart_peft.data.schema import Interaction
from coldstart_peft.data.splits import ColdStartSplit
from coldstart_peft.errors import ColdStartError
from coldstart_peft.method import build_config

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
HOST = create_host(load_entrypoints=False)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)  # fmt: skip
FIELDS = ["format", "method", "method_config", "scorer", "scorer_config", "base_model", "priors", "extra", "metrics"]
MANIFESTISH = st.fixed_dictionaries({}, optional={name: JSON for name in FIELDS}).map(
    lambda m: {**m, "format": "coldstart-peft-adapter"} if m.get("format") is None else m
)
TEXT = st.one_of(JSON.map(json.dumps), st.integers(1, 5000).map(lambda n: "[" * n * 20 + "]" * n * 20), st.text(max_size=50))
CONFIG_CLASSES = [entry.obj.config_class for entry in HOST.methods] + [entry.obj.config_class for entry in HOST.scorers]
DATASET = Dataset("d", {"a": Item("a", "A")}, [Interaction("u", "a", 0.0)])


def _named_or_fine(call) -> None:
    try:
        call()
    except ColdStartError:
        pass


@FAST
@given(text=TEXT)
def test_manifest_reader_on_arbitrary_text(tmp_path, text):
    (tmp_path / "coldstart.json").write_text(text, encoding="utf-8")
    _named_or_fine(lambda: read_manifest(tmp_path))


@FAST
@given(manifest=MANIFESTISH)
def test_manifest_reader_on_arbitrary_fields(tmp_path, manifest):
    (tmp_path / "coldstart.json").write_text(json.dumps(manifest), encoding="utf-8")
    try:
        read = read_manifest(tmp_path)
    except ColdStartError:
        return
    assert isinstance(read["method_config"], dict) and isinstance(read["base_model"]["name_or_path"], str)


@FAST
@given(values=st.one_of(JSON, st.dictionaries(st.sampled_from(["r", "alpha", "dropout", "target_modules", "max_length", "pooling",
                                                                "head", "temperature", "num_virtual_tokens"]), JSON, max_size=4)),
       index=st.integers(0, len(CONFIG_CLASSES) - 1))  # fmt: skip
def test_every_method_and_scorer_config_on_arbitrary_values(values, index):
    _named_or_fine(lambda: build_config(CONFIG_CLASSES[index], values))


@FAST
@given(text=TEXT)
def test_split_reader_on_arbitrary_text(tmp_path, text):
    (tmp_path / "split.json").write_text(text, encoding="utf-8")
    _named_or_fine(lambda: ColdStartSplit.load(tmp_path / "split.json", DATASET))


@FAST
@given(text=TEXT)
def test_checkpoint_progress_reader_on_arbitrary_text(tmp_path, text):
    (tmp_path / "progress.json").write_text(text, encoding="utf-8")
    _named_or_fine(lambda: load_checkpoint(tmp_path))


@FAST
@given(value=TEXT)
def test_command_line_settings_on_arbitrary_text(value):
    _named_or_fine(lambda: parse_key_values([f"r={value}"], "--method-config"))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"format": "coldstart-peft-adapter", "method": ' + "[" * 100_000 + "]" * 100_000 + "}"])
def test_manifest_nested_past_the_stack_is_a_named_error(tmp_path, text):
    (tmp_path / "coldstart.json").write_text(text, encoding="utf-8")
    with pytest.raises(ColdStartError, match="not valid JSON"):
        read_manifest(tmp_path)


@FAST
@given(entry=JSON)
def test_priors_entry_of_a_manifest_on_arbitrary_json(tmp_path, entry):
    from coldstart_peft.artifact import read_safetensors
    from coldstart_peft.priors.storage import migrate_scorer_config, priors_from_manifest

    _named_or_fine(lambda: priors_from_manifest(entry, tmp_path, read_safetensors))
    _named_or_fine(lambda: priors_from_manifest({"features": entry, "tables": "0" * 16}, tmp_path, read_safetensors))
    if isinstance(entry, dict):
        _named_or_fine(lambda: migrate_scorer_config(entry, tmp_path))
