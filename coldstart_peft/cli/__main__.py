"""``python -m coldstart_peft.cli``: what ``torchrun -m`` needs to start the command line."""

import sys

from coldstart_peft.cli import main

sys.exit(main())
