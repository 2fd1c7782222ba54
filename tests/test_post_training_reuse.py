"""After training, calibration and test scoring embed each distinct text once: the weights no longer change."""

from __future__ import annotations

from collections import Counter

import numpy as np

from coldstart_peft import TrainConfig
from coldstart_peft import recipes
from coldstart_peft.data.cold_start import cold_user_split
from coldstart_peft.demo import demo_dataset
from coldstart_peft.evaluation.ranking import score_cases
from coldstart_peft_plugins.bi_encoder import BiEncoder


def test_calibration_and_test_scoring_share_one_embedding_per_text(tiny_base, monkeypatch):
    split = cold_user_split(demo_dataset(n_items=80, n_users=160, seed=0), k=3, n_negatives=19, seed=0)
    test = split.ranking_cases("test")[:20]
    encoded: Counter = Counter()
    after_training = {"on": False}
    real_encode, real_calibrate = BiEncoder._encode, recipes.calibrate_priors

    def counting_encode(self, texts, *args, **kwargs):
        if after_training["on"]:
            encoded.update(texts)
        return real_encode(self, texts, *args, **kwargs)

    def calibrate(*args, **kwargs):
        after_training["on"] = True
        return real_calibrate(*args, **kwargs)

    monkeypatch.setattr(BiEncoder, "_encode", counting_encode)
    monkeypatch.setattr(recipes, "calibrate_priors", calibrate)
    settings = recipes.FitSettings(base_model=tiny_base, scorer_config={"max_length": 32}, max_groups=32,
                                   valid_users=8, calibration_users=30)  # fmt: skip
    scorer, result = recipes.fit_on_split(split, settings, TrainConfig(max_steps=2, batch_size=8, progress=False),
                                          test_cases=test)  # fmt: skip
    shared_items = {t for c in test for t in c.candidate_texts} & {t for c in split.ranking_cases("valid")[:30] for t in c.candidate_texts}
    assert shared_items, "calibration and test share candidates, so reuse is observable"
    assert encoded and max(encoded.values()) == 1, f"re-embedded after training: {encoded.most_common(3)}"
    assert result.after_seconds > 0 and len(result.test_scores) == len(test)
    np.testing.assert_allclose(np.concatenate(result.test_scores), np.concatenate(score_cases(scorer.score, test)), rtol=1e-5, atol=1e-5)
