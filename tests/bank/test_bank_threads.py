"""An AdapterBank under threads: every result equals the single-threaded score of the adapter live
when it ran, hot swaps are atomic, and concurrent adds of one domain let exactly one win."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from _bank_helpers import DOMAINS, ITEMS, MIXED, USERS, load_fp32, tiny_bank, tiny_scorer
from coldstart_peft import AdapterError, save_adapter

THREADS, CALLS = 4, 6


def _close(a, b) -> bool:
    return bool(np.allclose(a, b, atol=1e-5))


def _run_all(jobs):
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return [f.result() for f in [pool.submit(job) for job in jobs]]


def test_threads_scoring_different_domains_and_mixed_batches_get_single_threaded_results(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    expected = {d: bank.score(USERS, ITEMS, domains=d) for d in DOMAINS}
    expected["mixed"] = bank.score(USERS, ITEMS, domains=MIXED)
    expected["grouped"] = bank.score(USERS, ITEMS, domains=MIXED, mixed=False)
    calls = {**{d: (lambda d=d: bank.score(USERS, ITEMS, domains=d)) for d in DOMAINS},
             "mixed": lambda: bank.score(USERS, ITEMS, domains=MIXED),
             "grouped": lambda: bank.score(USERS, ITEMS, domains=MIXED, mixed=False)}  # fmt: skip
    jobs = [(name, call) for _ in range(CALLS) for name, call in calls.items()]
    results = _run_all([lambda name=name, call=call: (name, call()) for name, call in jobs])
    wrong = [name for name, scores in results if not _close(scores, expected[name])]
    assert not wrong and len(results) == CALLS * len(calls)


def test_a_hot_swap_is_atomic_for_concurrent_readers(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    old = bank.score(USERS, ITEMS, domains="Makeup")
    replacements = [tiny_scorer(tiny_base, "lora", seed) for seed in (11, 12)]
    folders = [save_adapter(s, tmp_path / f"new{i}") for i, s in enumerate(replacements)]
    allowed = [old, *[s.score(USERS, ITEMS) for s in replacements]]
    stop = threading.Event()

    def swapper():
        for i in range(CALLS):
            bank.add("Makeup", folders[i % 2], replace=True)
        stop.set()
        return None

    def reader():
        seen = []
        while not stop.is_set() or not seen:
            seen.append(bank.score(USERS, ITEMS, domains="Makeup"))
        return seen

    results = _run_all([swapper, reader, reader, reader])
    read = [scores for batch in results[1:] for scores in batch]
    torn = [s for s in read if not any(_close(s, a) for a in allowed)]
    assert read and not torn, f"{len(torn)} of {len(read)} results match no adapter"
    assert _close(bank.score(USERS, ITEMS, domains="Makeup"), allowed[1 + (CALLS - 1) % 2])


def test_concurrent_adds_of_one_domain_let_exactly_one_win(tmp_path, tiny_base):
    tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    candidates = [tiny_scorer(tiny_base, "lora", seed) for seed in range(20, 20 + THREADS)]
    folders = [save_adapter(s, tmp_path / f"nails{i}") for i, s in enumerate(candidates)]
    barrier = threading.Barrier(THREADS)

    def add(folder):
        barrier.wait()
        try:
            bank.add("Nails", folder)
            return folder
        except AdapterError as exc:
            assert "replace=True" in str(exc)
            return None

    winners = [f for f in _run_all([lambda f=f: add(f) for f in folders]) if f is not None]
    assert len(winners) == 1
    won = candidates[folders.index(winners[0])]
    assert _close(bank.score(USERS, ITEMS, domains="Nails"), won.score(USERS, ITEMS))
    for domain in DOMAINS:  # nothing else broke: every later score works
        bank.score(USERS, ITEMS, domains=domain)


def test_serving_holds_the_model_on_one_route(tmp_path, tiny_base):
    scorers, _ = tiny_bank(tmp_path / "bank", tiny_base)
    bank = load_fp32(tmp_path / "bank")
    other = threading.Thread(target=lambda: bank.score(USERS, ITEMS, domains="Hair Care"))
    with bank.serving("Makeup") as scorer:
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive(), "the other thread waits for the block"
        assert _close(scorer.score(USERS, ITEMS), scorers["Makeup"].score(USERS, ITEMS))
    other.join()
    assert not other.is_alive()


def test_removing_the_last_adapter_gives_a_named_error(tmp_path, tiny_base):
    from coldstart_peft.errors import EmptyBankError

    tiny_bank(tmp_path / "bank", tiny_base, with_global=False)
    bank = load_fp32(tmp_path / "bank")
    for domain in DOMAINS:
        bank.remove(domain)
    with pytest.raises(EmptyBankError, match="bank.add"):
        bank.score(USERS, ITEMS, domains="Makeup")
    bank.add("Makeup", save_adapter(tiny_scorer(tiny_base, "lora", 3), tmp_path / "again"))
    assert len(bank.score(USERS, ITEMS, domains="Makeup")) == len(USERS)
