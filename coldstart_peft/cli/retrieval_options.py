"""What ``recommend`` and ``search`` share: the catalog and adapter options, and the result table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from coldstart_peft.cli.options import add_precision_argument
from coldstart_peft.cli.table import format_table
from coldstart_peft.data.commands import add_dataset_arguments, dataset_argument
from coldstart_peft.retrieval.ann import ANN_THRESHOLD, INDEX_KINDS
from coldstart_peft.retrieval.recommender import Recommendation, Recommender

TITLE_WIDTH = 60


def add_recommender_arguments(parser: argparse.ArgumentParser) -> None:
    """Options choosing the adapters, the catalog and how many items to show."""
    parser.add_argument("--adapters", default=None,
                        help="bi-encoder adapter folder (default: the zero-shot bundled MiniLM)")  # fmt: skip
    add_dataset_arguments(parser, what="catalog: ")
    parser.add_argument("--reranker", default=None, help="cross-encoder adapter folder that reranks the candidates")
    parser.add_argument("--candidates", type=int, default=50, help="candidates retrieved for the reranker (default: 50)")
    parser.add_argument("--index", default=None,
                        help="item index file (default: <adapters>/index/<dataset>.safetensors, built on first use)")  # fmt: skip
    parser.add_argument("--index-kind", choices=INDEX_KINDS, default="auto",
                        help=f"search: exact | ann (FAISS, pip install 'coldstart-peft[ann]') | auto: ann from "
                             f"{ANN_THRESHOLD:,} items when FAISS is installed (default: auto)")  # fmt: skip
    parser.add_argument("--history", default="", help="comma-separated item ids (or titles) the user clicked, oldest first")
    parser.add_argument("--domain", default=None, help="only return items of this domain")
    parser.add_argument("--k", type=int, default=10, help="items to show (default: 10)")
    parser.add_argument("--base-model", default=None, help="base model the adapters were trained on (default: recorded)")
    add_precision_argument(parser)


def load_recommender(args: argparse.Namespace) -> Recommender:
    """Build the :class:`Recommender` the options describe."""
    return Recommender.load(
        args.adapters, dataset=dataset_argument(args), reranker=args.reranker, index=args.index,
        n_candidates=args.candidates, base_model=args.base_model, precision=args.precision,
        index_kind=args.index_kind,
    )  # fmt: skip


def parse_history(text: str) -> list[str]:
    """Split ``--history`` on commas, dropping blanks."""
    return [part.strip() for part in text.split(",") if part.strip()]


def format_recommendations(results: Sequence[Recommendation]) -> str:
    """A table of ranked items: rank, id, title, brand, category, price, score."""
    rows = []
    for rank, result in enumerate(results, start=1):
        item = result.item
        title = item.title if len(item.title) <= TITLE_WIDTH else item.title[: TITLE_WIDTH - 1] + "…"
        # The first level ("Beauty") is the same for every item of a catalog, so it says nothing.
        path = item.categories[1:] if len(item.categories) > 1 else item.categories
        price = f"${item.price:.2f}" if item.price is not None else "-"
        rows.append([rank, item.item_id, title, item.brand or "-", " > ".join(path) or "-", price, f"{result.score:.3f}"])
    return format_table(["#", "item", "title", "brand", "category", "price", "score"], rows)
