"""Where an adapter's bytes go, alone and in a six-domain bank that stores its prior tables once.

Takes a trained adapter folder (the default recipe: LoRA + priors), saves it as the adapter of
every Beauty domain of a new bank, and reports the bytes of each part: the method's weights, the
head (prior weights included), the prior tables, the manifest; per domain in the bank and at the
bank root. Results go to <out>/adapter_sizes.json and <out>/adapter_sizes.md.

Example:
    python benchmarks/adapter_sizes.py --adapter runs/priors-adapters/lora --out benchmarks/results/adapter-sizes
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from coldstart_peft import adapter_bytes, load_adapter
from coldstart_peft.bank import save_bank
from coldstart_peft.bank.layout import read_manifest
from coldstart_peft.hardware import hardware_facts
from coldstart_peft.outputs import check_report_files, write_report_files
from coldstart_peft.provenance import git_revision

DOMAINS = ["Bath & Body", "Fragrance", "Hair Care", "Makeup", "Skin Care", "Tools & Accessories"]


def files(folder: Path) -> dict[str, int]:
    """Bytes per file, relative names."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", required=True, help="a trained adapter folder")
    parser.add_argument("--out", default="runs/adapter-sizes")
    args = parser.parse_args()
    out = Path(args.out)
    check_report_files(out, "adapter_sizes")
    scorer = load_adapter(args.adapter)
    with tempfile.TemporaryDirectory() as tmp:
        root = save_bank(Path(tmp) / "bank", dict.fromkeys(DOMAINS, scorer))
        manifest = read_manifest(root)
        domains = {e["name"]: adapter_bytes(root / e["folder"]) for e in manifest["domains"]}
        result = {
            "adapter": {"files": files(Path(args.adapter)), "total": adapter_bytes(args.adapter)},
            "bank": {"domains": domains, "domain_files": files(root / manifest["domains"][0]["folder"]),
                     "shared_priors": files(root / "priors"), "total": adapter_bytes(root)},  # fmt: skip
            "method": scorer.method.name, "priors": list(scorer.priors.features) if scorer.priors else [],
            "hardware": hardware_facts(), "commit": git_revision(Path(__file__).resolve().parents[1]),
        }
    lines = ["# Adapter sizes", "", f"One adapter ({result['method']}, priors {result['priors']}): "
             f"{result['adapter']['total'] / 1e6:.2f} MB", "", "| file | bytes |", "|---|---|"]  # fmt: skip
    lines += [f"| {name} | {size:,} |" for name, size in result["adapter"]["files"].items()]
    lines += ["", f"A bank of {len(DOMAINS)} domains: {result['bank']['total'] / 1e6:.2f} MB in all", "",
              "| part | bytes |", "|---|---|"]  # fmt: skip
    lines += [f"| domain {name} | {size:,} |" for name, size in domains.items()]
    lines += [f"| root priors/{name} (shared) | {size:,} |" for name, size in result["bank"]["shared_priors"].items()]
    text = "\n".join(lines) + "\n"
    write_report_files(out, "adapter_sizes", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
