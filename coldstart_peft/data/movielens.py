"""MovieLens-100k: ``u.data`` ratings, ``u.item`` movies with genre flags, ``u.user`` demographics.

Every rating counts as an interaction (implicit feedback, the usual next-item protocol);
the rating itself is kept as the label. A movie's domain is its first genre in the
official ``u.genre`` order, which puts each movie in exactly one domain.
"""

from __future__ import annotations

from pathlib import Path

from coldstart_peft.data.files import open_text
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport, check_unique
from coldstart_peft.data.timestamps import count_ties

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)  # fmt: skip
"""The 19 genre flags of ``u.item``, in file order (from ``u.genre``)."""


def _read_items(path: Path, report: LoadReport) -> dict[str, Item]:
    items: dict[str, Item] = {}
    ids: list[str] = []
    with open_text(path, encoding="latin-1") as stream:
        for line in stream:
            report.rows_read[path.name] += 1
            fields = line.rstrip("\r\n").split("|")
            if len(fields) != 5 + len(GENRES):
                report.skip("wrong_field_count", line)
                continue
            genres = tuple(g for g, flag in zip(GENRES, fields[5:]) if flag == "1" and g != "unknown")
            ids.append(fields[0])
            items[fields[0]] = Item(
                item_id=fields[0],
                title=fields[1].strip(),
                categories=genres,
                domain=genres[0] if genres else FALLBACK_DOMAIN,
                attributes={"release_date": fields[2], "imdb_url": fields[4]},
            )
    check_unique(ids, "movie", str(path))
    return items


def _read_users(path: Path, report: LoadReport) -> dict[str, dict]:
    users: dict[str, dict] = {}
    with open_text(path, encoding="latin-1") as stream:
        for line in stream:
            report.rows_read[path.name] += 1
            fields = line.rstrip("\r\n").split("|")
            if len(fields) != 5 or not fields[1].isdigit():
                report.skip("bad_user_row", line)
                continue
            gender = {"M": "male", "F": "female"}.get(fields[2], fields[2])
            users[fields[0]] = {"age": int(fields[1]), "gender": gender, "occupation": fields[3], "zip": fields[4]}
    return users


def load_movielens100k(folder: str | Path, name: str = "movielens") -> Dataset:
    """Load the ``ml-100k`` folder.

    Args:
        folder: holds ``u.data`` (or ``u.data.gz``), ``u.item`` and ``u.user``.
        name: dataset name.

    Returns:
        A validated :class:`Dataset`; interactions ordered by timestamp, ties in file order.

    Example:
        >>> ds = load_movielens100k("ml-100k")
        >>> ds.user_attributes["1"]["occupation"]
        'technician'
    """
    folder = Path(folder)
    report = LoadReport(source=[str(folder / f) for f in ("u.data", "u.item", "u.user")])
    items = _read_items(folder / "u.item", report)
    users = _read_users(folder / "u.user", report)
    interactions = []
    with open_text(folder / "u.data") as stream:
        for line in stream:
            report.rows_read["u.data"] += 1
            fields = line.split()
            if len(fields) != 4 or not fields[3].isdigit():
                report.skip("bad_rating_row", line)
                continue
            interactions.append(Interaction(fields[0], fields[1], float(fields[3]), float(fields[2])))
    report.order, report.order_ties = "sorted by column 'timestamp' (epoch-s)", count_ties(interactions)
    return Dataset(name, items, interactions, user_attributes=users, report=report).validate()
