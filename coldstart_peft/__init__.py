"""coldstart-peft: cold-start search and recommendation with parameter-efficient fine-tuning.

The public API. Plugins import only from here.

Example:
    >>> from coldstart_peft import load_adapter
    >>> scorer = load_adapter("runs/demo/adapter")
    >>> scorer.score(["Clicked: red lipstick"], ["Matte red lipstick by Lumina"])
"""

__version__ = "0.1.0"

# Each public name and the module it lives in. They are imported on first use (PEP 562), so
# ``coldstart-peft --version`` and ``-h`` answer without importing torch, transformers or peft.
_EXPORTS = {
    "coldstart_peft.errors": (
        "AdapterError", "ColdStartError", "ConfigError", "CorruptAdapterError", "DataError", "DuplicateNameError",
        "FingerprintMismatchError", "InputTooLongError", "OutdatedAdapterError", "PluginError", "StaleIndexError",
        "UnknownNameError", "UnsafeFileError", "UnsafePathError",
    ),
    "coldstart_peft.examples": ("RankingCase", "TrainGroup"),
    "coldstart_peft.hookspecs": ("hookimpl",),
    "coldstart_peft.length_blocks": ("blockwise",),
    "coldstart_peft.losses": ("ranking_loss",),
    "coldstart_peft.method": ("Method", "MethodConfig", "count_parameters"),
    "coldstart_peft.peft_method": ("PeftMethod",),
    "coldstart_peft.priors": ("Priors",),
    "coldstart_peft.scorer": ("Scorer", "ScorerConfig", "own_offsets", "pair_batch"),
    "coldstart_peft.pair_scorer": ("PairScorer", "PairScorerConfig"),
    "coldstart_peft.host": ("create_host", "default_host", "get_method", "get_scorer"),
    "coldstart_peft.assembly": ("apply_method", "build_scorer", "make_method"),
    "coldstart_peft.artifact": ("adapter_bytes", "adapter_fingerprint", "load_adapter", "save_adapter"),
    "coldstart_peft.training": ("TrainConfig", "TrainResult", "train"),
    "coldstart_peft.retrieval": ("ItemIndex", "Recommendation", "Recommender"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'coldstart_peft' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once; later reads skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


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
    "PairScorer",
    "PairScorerConfig",
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
    "blockwise",
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
