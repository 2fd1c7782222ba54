"""The TALLRec benchmark's data: training prompts rebuilt from the baseline CSV in the published layout."""

from __future__ import annotations

import pytest

from _scripts import load_benchmark


def _tallrec():
    return load_benchmark("tallrec.py", register=True)


@pytest.mark.realdata
def test_rebuilt_prompts_equal_the_published_validation_file_and_parse_into_pairs():
    tallrec = _tallrec()
    if not (tallrec.DEFAULT_DATA / "data" / "movie" / "valid.json.gz").is_file() or not tallrec.DEFAULT_ITEMS.is_file():
        pytest.skip("TALLRec data not in ../shared/data")
    names = tallrec.titles(tallrec.DEFAULT_ITEMS)
    assert tallrec.check_rebuild(tallrec.DEFAULT_DATA, names) == 1000
    train = tallrec.rebuild(tallrec.DEFAULT_DATA / "baseline" / "movielens" / "train.csv.gz", names)
    assert len(train) == 8000 and {p["output"] for p in train} == {"Yes.", "No."}
    prompt = train[0]
    liked, disliked = (tallrec.TITLES.findall(line) for line in tallrec.PROMPT.match(prompt["input"]).groups()[:2])
    assert len(liked) + len(disliked) == 10
    tagged = tallrec.to_pair(prompt, "tagged")
    assert tagged.user_text.count("disliked ") == len(disliked)
    assert tagged.user_text.count("liked ") == len(liked) + len(disliked)  # "disliked" ends in "liked"
    assert tallrec.to_pair(prompt, "prompt").user_text == prompt["input"].rsplit("\n", 1)[0]
    balanced = tallrec.sample(train, 16, seed=3, balanced=True)
    assert sum(p["output"] == "Yes." for p in balanced) == 8 and len({id(p) for p in balanced}) == 16
    assert tallrec.sample(train, 16, seed=3, balanced=False) == tallrec.sample(train, 16, seed=3, balanced=False)
