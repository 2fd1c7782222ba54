"""The ``--per-domain`` part of ``coldstart-peft train``: flags and the run, kept out of the CLI module."""

from __future__ import annotations

import argparse
from pathlib import Path

from coldstart_peft.bank.training import PerDomainSettings, train_per_domain
from coldstart_peft.cli.options import fit_settings_from_args, train_config_from_args
from coldstart_peft.data.commands import build_split_from_args


def add_per_domain_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--per-domain`` and the flags of the per-domain recipe."""
    group = parser.add_argument_group("per-domain adapters (with --dataset)")
    group.add_argument("--per-domain", action="store_true",
                       help="train a global adapter, then give each domain its own prior weights (calibrated on "
                            "its validation users); --out becomes a bank folder")  # fmt: skip
    group.add_argument("--domain-adapters", action="store_true",
                       help="also train one adapter per domain on top of the global one (lost to the default at "
                            "equal budget on Beauty: benchmarks/results/bank-budget-60)")  # fmt: skip
    group.add_argument("--min-calibration-users", type=int, default=PerDomainSettings.min_calibration_users,
                       help="domains with fewer validation users fall back to the global adapter "
                            f"(default: {PerDomainSettings.min_calibration_users})")  # fmt: skip
    group.add_argument("--from-global", default=True, action=argparse.BooleanOptionalAction,
                       help="with --domain-adapters, start each domain adapter from the global one (default: on)")  # fmt: skip
    group.add_argument("--min-groups", type=int, default=PerDomainSettings.min_groups,
                       help="with --domain-adapters, domains with fewer training groups fall back to the global "
                            f"adapter (default: {PerDomainSettings.min_groups})")  # fmt: skip
    group.add_argument("--max-groups-per-domain", type=int, default=None,
                       help="with --domain-adapters, cap on each domain's training groups")  # fmt: skip
    group.add_argument("--domains", default=None, help="comma-separated domains to train (default: all)")


def run_per_domain(args: argparse.Namespace) -> int:
    """Build the split, train the bank into ``args.out`` and print one line per domain."""
    split = build_split_from_args(args)
    per_domain = PerDomainSettings(
        domain_adapters=args.domain_adapters, min_calibration_users=args.min_calibration_users,
        from_global=args.from_global, min_groups=args.min_groups, max_groups_per_domain=args.max_groups_per_domain,
        domains=[d.strip() for d in args.domains.split(",")] if args.domains else None,
    )  # fmt: skip
    manifest = train_per_domain(split, Path(args.out), fit_settings_from_args(args), per_domain, train_config_from_args(args))
    for entry in manifest["domains"]:
        size = f"{entry['bytes']:,} bytes" if entry.get("bytes") else entry.get("reason", "")
        print(f"{entry['name']}: {entry['status']} ({size})")
    print(f"bank: {args.out} (load it with coldstart_peft.bank.AdapterBank.load)")
    return 0
