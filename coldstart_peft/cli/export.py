"""``coldstart-peft export``: write a trained adapter in another library's format."""

from __future__ import annotations

HELP = "export a bi-encoder adapter as a sentence-transformers model (weights merged)"
FORMATS = ("sentence-transformers",)


def register(commands) -> None:
    parser = commands.add_parser(
        "export", help=HELP,
        description="Write a bi-encoder adapter as a sentence-transformers model folder: the adapter merged into "
                    "the base weights, with the pooling and normalization it trained with. The priors and the "
                    "score's scale and bias are not exported (see README, Export).",
    )  # fmt: skip
    parser.add_argument("--adapter", required=True, help="the adapter folder (coldstart-peft train --out)")
    parser.add_argument("--to", required=True, choices=FORMATS, help="the format to write")
    parser.add_argument("--base-model", default=None, help="load the adapter onto this base model instead of the recorded one")
    parser.add_argument("out", metavar="OUT", help="the folder to write (an earlier export there is replaced)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from coldstart_peft.export import export_sentence_transformers

    out = export_sentence_transformers(args.adapter, args.out, base_model=args.base_model)
    print(f"wrote {out}: load it with SentenceTransformer({str(out)!r})")
    return 0
