"""Shared fixtures: a tiny random BERT saved to disk, a toy task with a known answer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from coldstart_peft.examples import RankingCase, TrainGroup

# The method contract's toy task (shipped in coldstart_peft.testing), in a vocabulary small enough
# for a 2-layer BERT to learn colour matching in seconds.
from coldstart_peft.testing.toy import COLOURS, KINDS, WORDS, save_small_bundled_model  # noqa: F401
from coldstart_peft.testing.toy import toy_groups as _toy_groups  # noqa: F401  (tests/reliability/_resume_worker.py)

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config):
    # pytest-xdist workers share the cores: each gets its share of threads, and so do the CLI and
    # training subprocesses the tests start, or two workers' matmuls would fight over every core.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, min(2, (os.cpu_count() or 1) // workers))
    torch.set_num_threads(threads)
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Accelerate keeps one precision and device setup per process; tests must not inherit it."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """Folder of a tiny random BERT (2 layers, hidden 32) with a word-level tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = SPECIAL + WORDS + COLOURS + KINDS
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def small_pretrained_base(tmp_path_factory) -> str:
    """The bundled MiniLM cut to its first 2 layers: pretrained features at a third of the cost.

    Methods that only steer existing features (IA3, prompt and prefix tuning) cannot learn
    anything on a random model, so the method contract trains on this one.
    """
    return save_small_bundled_model(tmp_path_factory.mktemp("minilm-2-layers"))


@pytest.fixture(scope="session")
def toy_task() -> tuple[list[TrainGroup], list[RankingCase]]:
    """Colour matching: the positive item shares the colour of the user's clicks.

    Returns (training groups, ranking cases); a model that reads text ranks the positive
    first, while any text-blind scorer stays at chance.
    """
    from coldstart_peft.testing import toy_task as contract_task

    return contract_task()


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory) -> dict[str, str]:
    """Folders of tiny random decoder-only causal LMs by kind: ``llama``, ``qwen2``, ``gpt2`` (see ``_decoders``)."""
    from _decoders import KINDS_OF_DECODER, save_tiny_decoder

    return {kind: str(save_tiny_decoder(kind, tmp_path_factory.mktemp(f"tiny-{kind}"))) for kind in KINDS_OF_DECODER}
