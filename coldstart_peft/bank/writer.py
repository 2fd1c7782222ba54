"""Write a bank folder: domain adapters, the global adapter, and the manifest after each one.

The manifest is rewritten after every adapter, so a long per-domain run that stops halfway
still leaves a loadable bank of the domains finished so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coldstart_peft.artifact import adapter_bytes, save_adapter
from coldstart_peft.bank.layout import GLOBAL_FOLDER, folder_for, new_manifest, read_manifest, write_manifest
from coldstart_peft.bank.prior_tables import share_tables
from coldstart_peft.errors import AdapterError
from coldstart_peft.scorer import Scorer


class BankWriter:
    """Builds a bank at ``root`` one adapter at a time.

    Args:
        root: the bank folder (created if missing; an existing bank is extended).
        scorer: any scorer of the bank (fixes base model, method and scorer in the manifest).
        training: facts about how the adapters were trained, stored under ``"training"``.

    Example:
        >>> writer = BankWriter("runs/bank", global_scorer)
        >>> writer.save_global(global_scorer, train_groups=5000)
        >>> writer.save_domain("Tools & Accessories", tools_scorer, train_groups=800)
        >>> writer.add_fallback("Fragrance", train_groups=40, reason="fewer than 200 training groups")
    """

    def __init__(self, root: str | Path, scorer: Scorer, training: dict[str, Any] | None = None):
        if scorer.method is None:
            raise AdapterError("the scorer has no method applied; train it before adding it to a bank")
        self.root = Path(root)
        if (self.root / "manifest.json").is_file():
            self.manifest = read_manifest(self.root)
            if self.manifest["base_model"]["fingerprint"] != scorer.base_fingerprint:
                raise AdapterError(
                    f"the bank at {self.root} holds adapters for another base model; write to a new folder"
                )
            self.manifest["training"].update(training or {})
        else:
            self.manifest = new_manifest(scorer, scorer.method, training)
        write_manifest(self.root, self.manifest)

    def _put(self, entry: dict[str, Any]) -> None:
        domains = [d for d in self.manifest["domains"] if d["name"] != entry["name"]]
        self.manifest["domains"] = sorted([*domains, entry], key=lambda d: d["name"])
        write_manifest(self.root, self.manifest)

    def save_manifest(self) -> Path:
        """Rewrite ``manifest.json`` after changing :attr:`manifest` by hand."""
        return write_manifest(self.root, self.manifest)

    def save_global(self, scorer: Scorer, metrics: Mapping[str, Any] | None = None, **facts: Any) -> Path:
        """Save the shared global adapter to ``<root>/_global`` and record it."""
        folder = save_adapter(scorer, self.root / GLOBAL_FOLDER, metrics=dict(metrics or {}), extra={"role": "global"})
        share_tables(self.root, folder)
        self.manifest["global"] = {"folder": GLOBAL_FOLDER, "bytes": adapter_bytes(folder), "metrics": dict(metrics or {}), **facts}
        write_manifest(self.root, self.manifest)
        return folder

    def save_domain(self, name: str, scorer: Scorer, metrics: Mapping[str, Any] | None = None, **facts: Any) -> Path:
        """Save ``scorer`` as the adapter of domain ``name`` (replacing an older one atomically).

        Args:
            name: the domain's real name.
            scorer: the trained scorer.
            metrics: its validation metrics on the domain.
            **facts: more facts for the manifest entry (``train_groups``, ``valid_cases``...).
        """
        folder_name = folder_for(self.manifest, name)
        folder = save_adapter(scorer, self.root / folder_name, metrics=dict(metrics or {}), extra={"domain": name})
        share_tables(self.root, folder)
        self._put({"name": name, "folder": folder_name, "status": "trained", "bytes": adapter_bytes(folder),
                   "metrics": dict(metrics or {}), **facts})  # fmt: skip
        return folder

    def add_fallback(self, name: str, reason: str, **facts: Any) -> None:
        """Record a domain that has no adapter of its own and is served by the fallback chain."""
        self._put({"name": name, "folder": None, "status": "fallback", "reason": reason, **facts})


def save_bank(
    root: str | Path, scorers: Mapping[str, Scorer], global_scorer: Scorer | None = None,
    training: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
    """Save already-trained scorers as a bank: one adapter per domain, optionally a global one.

    Args:
        root: the bank folder.
        scorers: domain name -> trained scorer (same base model, method and scorer).
        global_scorer: the shared fallback adapter, if any.
        training: facts for the manifest's ``"training"`` section.

    Returns:
        ``root``.
    """
    first = global_scorer or next(iter(scorers.values()), None)
    if first is None:
        raise AdapterError("save_bank needs at least one scorer")
    writer = BankWriter(root, first, training)
    if global_scorer is not None:
        writer.save_global(global_scorer)
    for name, scorer in scorers.items():
        writer.save_domain(name, scorer)
    return Path(root)
