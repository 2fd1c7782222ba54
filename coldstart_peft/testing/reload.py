"""Child process of :func:`~coldstart_peft.testing.contract.reload_in_fresh_process`: load adapters, print scores.

Reads ``{"users", "items", "folders": {name: folder}, "plugins": [[module, qualname], ...] | null}``
as JSON on stdin and prints ``RESULT`` followed by ``{name: scores}`` for every folder that loaded.
"""

from __future__ import annotations

import importlib
import json
import sys

from coldstart_peft.artifact import load_adapter
from coldstart_peft.testing.registering import host_with


def main() -> None:
    """Load every requested folder in this fresh process and print its scores of the probe pairs."""
    request = json.loads(sys.stdin.read())
    host = None
    if request["plugins"] is not None:
        classes = []
        for module, qualname in request["plugins"]:
            found = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
            classes.append(found)
        host = host_with(classes)
    out = {}
    for name, folder in request["folders"].items():
        try:
            scorer = load_adapter(folder, host=host)
        except Exception as exc:  # reported per pair by the parent, the others still load
            print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        scorer.precision = "fp32"
        out[name] = scorer.score(request["users"], request["items"]).tolist()
    print("RESULT" + json.dumps(out))


if __name__ == "__main__":
    main()
