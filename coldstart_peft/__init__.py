"""coldstart-peft: cold-start search and recommendation with parameter-efficient fine-tuning.

The public API. Plugins import only from here.

Example:
    >>> from coldstart_peft import load_adapter
    >>> scorer = load_adapter("runs/demo/adapter")
    >>> scorer.score(["Clicked: red lipstick"], ["Matte red lipstick by Lumina"])
"""

__version__ = "0.1.0"

from coldstart_peft.errors import (  # noqa: E402
    AdapterError,
    ColdStartError,
    ConfigError,
    CorruptAdapterError,
    DataError,
    DuplicateNameError,
    FingerprintMismatchError,
    InputTooLongError,
    OutdatedAdapterError,
    PluginError,
    StaleIndexError,
    UnknownNameError,
    UnsafeFileError,
    UnsafePathError,
)
from coldstart_peft.examples import RankingCase, TrainGroup  # noqa: E402
from coldstart_peft.hookspecs import hookimpl  # noqa: E402
from coldstart_peft.losses import ranking_loss  # noqa: E402
from coldstart_peft.method import Method, MethodConfig, count_parameters  # noqa: E402
from coldstart_peft.peft_method import PeftMethod  # noqa: E402
from coldstart_peft.priors import Priors  # noqa: E402
from coldstart_peft.scorer import Scorer, ScorerConfig, own_offsets, pair_batch  # noqa: E402
from coldstart_peft.host import create_host, default_host, get_method, get_scorer  # noqa: E402
from coldstart_peft.assembly import apply_method, build_scorer, make_method  # noqa: E402
from coldstart_peft.artifact import adapter_bytes, adapter_fingerprint, load_adapter, save_adapter  # noqa: E402
from coldstart_peft.training import TrainConfig, TrainResult, train  # noqa: E402
from coldstart_peft.retrieval import ItemIndex, Recommendation, Recommender  # noqa: E402

__all__ = [
    "AdapterError",
    "ColdStartError",
    "ConfigError",
    "CorruptAdapterError",
    "DataError",
    "DuplicateNameError",
    "FingerprintMismatchError",
    "InputTooLongError",
    "OutdatedAdapterError",
    "ItemIndex",
    "Method",
    "MethodConfig",
    "PeftMethod",
    "PluginError",
    "Priors",
    "RankingCase",
    "Recommendation",
    "Recommender",
    "Scorer",
    "ScorerConfig",
    "StaleIndexError",
    "TrainConfig",
    "TrainGroup",
    "TrainResult",
    "UnknownNameError",
    "UnsafeFileError",
    "UnsafePathError",
    "adapter_bytes",
    "adapter_fingerprint",
    "apply_method",
    "build_scorer",
    "count_parameters",
    "create_host",
    "default_host",
    "get_method",
    "get_scorer",
    "hookimpl",
    "load_adapter",
    "make_method",
    "own_offsets",
    "pair_batch",
    "ranking_loss",
    "save_adapter",
    "train",
]
