"""Write the synthetic labeled-pairs file the FSDP check of ``run_decoder_checks.sh`` trains on."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decoder_lora import synthetic_groups  # noqa: E402

from coldstart_peft.labeled_pairs import write_pairs  # noqa: E402

if __name__ == "__main__":
    write_pairs(sys.argv[1], synthetic_groups(64, 64))
