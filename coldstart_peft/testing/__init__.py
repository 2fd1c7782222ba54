"""The method contract, shipped for plugin authors: a plugin's own test runs the suite every built-in method passes.

Example:
    A plugin's test file, run with ``pytest`` after ``pip install`` of the plugin::

        from coldstart_peft.testing import check_method

        def test_bitfit_meets_the_contract():
            check_method("bitfit")

The steps (:mod:`coldstart_peft.testing.contract`) are public too, for a suite parametrized
over many methods, as this repository's ``tests/test_method_contract.py`` is.
"""

from coldstart_peft.testing.check import ContractReport, check_method
from coldstart_peft.testing.contract import (
    ContractFailure,
    ContractSettings,
    PairOutcome,
    assert_loss_lowered,
    assert_method_weights_saved,
    assert_parameters_reported,
    assert_reload_identical,
    probe_pairs,
    reload_in_fresh_process,
    train_and_save,
)
from coldstart_peft.testing.registering import host_with
from coldstart_peft.testing.toy import save_small_bundled_model, toy_groups, toy_task

__all__ = [
    "ContractFailure",
    "ContractReport",
    "ContractSettings",
    "PairOutcome",
    "assert_loss_lowered",
    "assert_method_weights_saved",
    "assert_parameters_reported",
    "assert_reload_identical",
    "check_method",
    "host_with",
    "probe_pairs",
    "reload_in_fresh_process",
    "save_small_bundled_model",
    "toy_groups",
    "toy_task",
    "train_and_save",
]
