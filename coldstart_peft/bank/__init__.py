"""Per-domain banks: train one, save it as a folder, serve every domain from one base model.

By default a domain's entry is the global adapter with its own calibrated prior weights;
``PerDomainSettings(domain_adapters=True)`` also trains an adapter per domain.

Example:
    >>> from coldstart_peft.bank import AdapterBank, PerDomainSettings, train_per_domain
    >>> train_per_domain(split, "runs/beauty-bank", per_domain=PerDomainSettings(min_calibration_users=50))
    >>> bank = AdapterBank.load("runs/beauty-bank")
    >>> bank.score(users, items, domains=item_domains)
"""

from coldstart_peft.bank.bank import AdapterBank, Ranking
from coldstart_peft.bank.fallback import FallbackConfig, Route
from coldstart_peft.bank.layout import BASE, GLOBAL, read_manifest, slugify
from coldstart_peft.bank.training import PerDomainSettings, train_per_domain
from coldstart_peft.bank.writer import BankWriter, save_bank

__all__ = [
    "BASE", "GLOBAL", "AdapterBank", "BankWriter", "FallbackConfig", "PerDomainSettings", "Ranking", "Route",
    "read_manifest", "save_bank", "slugify", "train_per_domain",
]  # fmt: skip
