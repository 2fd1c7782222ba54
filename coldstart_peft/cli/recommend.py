"""``coldstart-peft recommend``: the top items of a whole catalog for a user known by a few clicks."""

from __future__ import annotations

from coldstart_peft.cli.retrieval_options import (
    add_recommender_arguments,
    format_recommendations,
    load_recommender,
    parse_history,
)


def register(commands) -> None:
    """Add the ``recommend`` sub-command."""
    parser = commands.add_parser("recommend", help="recommend catalog items for a user's clicked items")
    add_recommender_arguments(parser)
    parser.add_argument("--query", default=None, help="optional search text added to the user's context")
    parser.add_argument("--include-seen", action="store_true", help="allow items of --history in the results")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Print the ranked items as a table; returns the exit code."""
    recommender = load_recommender(args)
    history = parse_history(args.history)
    results = recommender.recommend(
        history=history, query=args.query, k=args.k, domain=args.domain, exclude_seen=not args.include_seen
    )
    print(f"user context: {recommender.user_text(history, args.query)}")
    print(format_recommendations(results))
    return 0
