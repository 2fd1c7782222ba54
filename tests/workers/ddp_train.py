"""Worker for tests/test_distributed.py, started by torchrun: train the toy task, report.

The run is cut by a time budget that each rank's own clock would end at a different step.
Each rank writes rank<N>.json with a checksum of its trainable parameters and the learning
rate of every parameter group at every optimizer step; only the main process saves the
adapter, exactly as the ``train`` command does.
"""

import json
import sys
from pathlib import Path

import torch

from coldstart_peft import apply_method, build_scorer, create_host, save_adapter, train
from coldstart_peft.labeled_pairs import group_pairs, read_pairs
from coldstart_peft.training import TrainConfig, make_accelerator, plan_steps

base, pairs_file, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
host = create_host(load_entrypoints=False)
config = TrainConfig(epochs=200, batch_size=4, lr=5e-3, progress=False, precision="fp32", seed=0, time_budget_s=3.0)
lrs = []
real_step = torch.optim.AdamW.step


def recording_step(self, *args, **kwargs):
    lrs.append([group["lr"] for group in self.param_groups])
    return real_step(self, *args, **kwargs)


torch.optim.AdamW.step = recording_step
accelerator = make_accelerator(config)
groups = group_pairs(read_pairs(pairs_file))
scorer = build_scorer("cross-encoder", base, {"max_length": 48, "dropout": 0.0}, host=host)
method = host.method("lora")()
apply_method(scorer, method, total_steps=plan_steps(len(groups), config, accelerator.num_processes))
result = train(scorer, method, groups, None, config, accelerator=accelerator)
checksum = [float(p.detach().double().sum()) for p in scorer.parameters() if p.requires_grad]
if accelerator.is_main_process:
    save_adapter(scorer, out / "adapter")
(out / f"rank{accelerator.process_index}.json").write_text(
    json.dumps({"world": accelerator.num_processes, "steps": result.steps, "checksum": checksum, "lrs": lrs,
                "stopped_early": result.stopped_early, "distributed_type": str(accelerator.distributed_type)})
)
accelerator.wait_for_everyone()
