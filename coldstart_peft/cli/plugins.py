"""``coldstart-peft plugins``: what is installed, where it came from, what failed."""

from __future__ import annotations

from coldstart_peft.cli.table import print_table
from coldstart_peft.host import default_host


def register(commands) -> None:
    parser = commands.add_parser("plugins", help="list installed methods and scorers, and plugin failures")
    parser.set_defaults(func=run)


def run(args) -> int:
    host = default_host()
    rows = []
    for kind, registry in (("method", host.methods), ("scorer", host.scorers)):
        for entry in registry:
            source = host.sources.get(entry.plugin, "unknown")
            rows.append([entry.name, kind, f"{entry.plugin} ({source})", entry.obj.description()])
    print_table(["name", "kind", "plugin (source)", "description"], rows)
    if host.failures:
        print("\nfailed plugins:")
        print_table(
            ["plugin", "source", "stage", "error"],
            [[f.plugin, f.source, f.stage, f.error] for f in host.failures],
        )
    return 0
