"""Priors: what training interactions know (popularity, co-occurrence) and exact word matches,
as a small learned component beside any scorer. See :mod:`coldstart_peft.priors.model`."""

from coldstart_peft.priors.model import DEFAULT_FEATURES, FEATURES, Priors, check_features, check_new_item_share
from coldstart_peft.priors.tables import LEXICAL_UNITS, PriorTables, id_key

__all__ = ["DEFAULT_FEATURES", "FEATURES", "LEXICAL_UNITS", "PriorTables", "Priors", "check_features", "check_new_item_share", "id_key"]
