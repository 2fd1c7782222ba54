"""write_pairs and read_pairs are inverses, and pairs sharing a context regroup."""

from __future__ import annotations

from coldstart_peft import TrainGroup
from coldstart_peft.labeled_pairs import group_pairs, read_pairs, write_pairs


def test_written_groups_read_back_identically(tmp_path):
    groups = [
        TrainGroup("likes red", ["red cream", "blue soap"], [1.0, 0.0], domain="Skin Care"),
        TrainGroup("likes gold", ["gold brush"], [1.0]),
    ]
    path = write_pairs(tmp_path / "pairs.jsonl", groups)
    assert len(read_pairs(path)) == 3
    assert group_pairs(read_pairs(path)) == groups
