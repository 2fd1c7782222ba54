"""Real cold-start data: loaders, text serialization, cold-start splits and training groups.

Example:
    >>> from coldstart_peft.data import load_dataset, cold_user_split, training_groups
    >>> split = cold_user_split(load_dataset("beauty"), k=3, max_test_users=1000)
    >>> cases = split.ranking_cases("test")      # list[RankingCase], 1 positive + 99 negatives
    >>> groups = training_groups(split, n_negatives=4)  # list[TrainGroup], positive first
"""

from coldstart_peft.data.amazon2014 import load_amazon2014, read_recbole_items
from coldstart_peft.data.amazon2023 import load_amazon2023, load_pixrec
from coldstart_peft.data.cold_start import K_CHOICES, cold_domain_split, cold_item_split, cold_user_split, make_split
from coldstart_peft.data.movielens import load_movielens100k
from coldstart_peft.data.pairs import training_groups
from coldstart_peft.data.recbole import load_recbole
from coldstart_peft.data.registry import DATA_ENV, DATASETS, GENERATED_DATASETS, data_dir, load_dataset
from coldstart_peft.data.schema import FALLBACK_DOMAIN, Dataset, Interaction, Item, LoadReport
from coldstart_peft.data.splits import SPLIT_KINDS, CaseRecord, ColdStartSplit, sample_negatives
from coldstart_peft.data.tables import Table, read_rows, read_table
from coldstart_peft.data.tabular import ColumnMapping, load_tabular
from coldstart_peft.data.text import TextConfig, TextSerializer, truncate
from coldstart_peft.data.unisrec import SCIENTIFIC_DOMAINS, load_unisrec

__all__ = [
    "DATASETS", "DATA_ENV", "FALLBACK_DOMAIN", "GENERATED_DATASETS", "K_CHOICES", "SCIENTIFIC_DOMAINS", "SPLIT_KINDS",
    "CaseRecord", "ColdStartSplit", "ColumnMapping", "Dataset", "Interaction", "Item", "LoadReport",
    "Table", "TextConfig", "TextSerializer",
    "cold_domain_split", "cold_item_split", "cold_user_split", "data_dir", "load_amazon2014",
    "load_amazon2023", "load_dataset", "load_movielens100k", "load_pixrec", "load_recbole", "load_tabular",
    "load_unisrec", "make_split", "read_recbole_items", "read_rows", "read_table", "sample_negatives", "training_groups",
    "truncate",
]  # fmt: skip
