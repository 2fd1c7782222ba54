"""Peer recommenders that live outside the library core, registered by name for the benchmarks.

``PEERS`` maps a name to a :class:`~coldstart_peft.evaluation.Baseline` subclass that builds
with no arguments, like :data:`coldstart_peft.evaluation.BASELINES`; a benchmark script looks
a name up in both.
"""

from .sasrec import SASRecBaseline, SASRecConfig

PEERS = {"sasrec": SASRecBaseline}
"""Peer name -> Baseline class."""

__all__ = ["PEERS", "SASRecBaseline", "SASRecConfig"]
