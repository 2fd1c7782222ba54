"""IA3: the expected vectors are trained, the adapter reloads, and merging is exact."""

from __future__ import annotations

import torch
from _helpers import HOST, perturb, prepared, scores

from coldstart_peft import count_parameters, load_adapter, save_adapter


def test_ia3_trains_one_vector_per_target(tiny_base):
    scorer, _ = prepared(tiny_base, "ia3")
    trainable, _ = count_parameters(scorer.backbone)
    hidden, intermediate, layers = 32, 64, 2
    # key and value scale outputs, the attention output projection its input, the FFN output its input.
    assert trainable == layers * (3 * hidden + intermediate)


def test_ia3_reloads_and_merges(tiny_base, tmp_path):
    scorer, method = prepared(tiny_base, "ia3")
    perturb(scorer)
    folder = save_adapter(scorer, tmp_path / "ia3")
    before = scores(scorer)
    assert scores(load_adapter(folder, host=HOST)) == before
    scorer.backbone = method.merge(scorer.backbone)
    assert torch.allclose(torch.tensor(scores(scorer)), torch.tensor(before), atol=1e-5)
