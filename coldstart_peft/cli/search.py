"""``coldstart-peft search``: rank a whole catalog for a free-text query."""

from __future__ import annotations

from coldstart_peft.cli.retrieval_options import (
    add_recommender_arguments,
    format_recommendations,
    load_recommender,
    parse_history,
)


def register(commands) -> None:
    """Add the ``search`` sub-command."""
    parser = commands.add_parser("search", help="search a catalog with a free-text query")
    parser.add_argument("query", help='what to look for, e.g. "waterproof mascara"')
    add_recommender_arguments(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    """Print the ranked items as a table; returns the exit code."""
    recommender = load_recommender(args)
    history = parse_history(args.history)
    results = recommender.search(args.query, k=args.k, history=history, domain=args.domain)
    print(f"query context: {recommender.user_text(history, args.query)}")
    print(format_recommendations(results))
    return 0
