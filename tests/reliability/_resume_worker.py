"""Train the toy task with checkpoints in a subprocess; the resume tests kill and restart it.

Usage: python _resume_worker.py BASE OUT_JSON CHECKPOINT_DIR [resume]

``COLDSTART_TEST_KILL_AT_STEP=N`` makes the process SIGKILL itself inside step N (after the
optimizer step, before the step's checkpoint), which is as abrupt as an out-of-memory kill.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import _toy_groups  # noqa: E402

from coldstart_peft import TrainConfig, apply_method, build_scorer, create_host, train  # noqa: E402
from coldstart_peft.training import plan_steps  # noqa: E402


def main() -> None:
    base, out, checkpoint_dir = sys.argv[1:4]
    resume = len(sys.argv) > 4 and sys.argv[4] == "resume"
    method_name = os.environ.get("COLDSTART_TEST_METHOD", "lora")
    torch.set_num_threads(1)
    host = create_host(load_entrypoints=False)
    groups = _toy_groups(48, 3, seed=1)
    cases = [g for g in _toy_groups(8, 3, seed=2)]
    from coldstart_peft.examples import RankingCase

    cases = [RankingCase(g.user_text, g.item_texts, 0) for g in cases]
    config = TrainConfig(
        epochs=2, batch_size=4, lr=5e-3, seed=3, progress=False, precision="fp32", eval_every=5,
        checkpoint_dir=checkpoint_dir, checkpoint_every=4, resume=resume, early_stopping_patience=100,
    )
    torch.manual_seed(0)
    scorer = build_scorer("cross-encoder", base, {"max_length": 32, "dropout": 0.1}, host=host)
    method = host.method(method_name)({"dropout": 0.1} if method_name == "lora" else None)
    apply_method(scorer, method, total_steps=plan_steps(len(groups), config))
    kill_at = int(os.environ.get("COLDSTART_TEST_KILL_AT_STEP", "0"))
    if kill_at:
        on_step = method.on_step

        def dying_on_step(model, step):
            if step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            on_step(model, step)

        method.on_step = dying_on_step
    result = train(scorer, method, groups, cases, config)
    weights = {n: p.detach().double().flatten().tolist() for n, p in scorer.named_parameters() if p.requires_grad}
    Path(out).write_text(json.dumps({"steps": result.steps, "history": result.history, "best": result.best["value"], "weights": weights}))


if __name__ == "__main__":
    main()
