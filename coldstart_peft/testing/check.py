"""One call that runs the whole method contract on a plugin's method: what a plugin's own test calls."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from coldstart_peft.host import PluginHost, default_host
from coldstart_peft.method import Method
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
from coldstart_peft.testing.toy import save_small_bundled_model, toy_task

@dataclasses.dataclass
class ContractReport:
    """What :func:`check_method` found for one method.

    Attributes:
        method: the method's registered name.
        outcomes: one per scorer, by scorer name.
        failures: one line per broken clause (empty when the method passed).
    """

    method: str
    outcomes: dict[str, PairOutcome]
    failures: list[str]

    @property
    def trainable_params(self) -> dict[str, int]:
        """Trainable parameters of the method under each scorer."""
        return {scorer: outcome.counted[0] for scorer, outcome in self.outcomes.items()}


def _host_and_name(method: str | type[Method], host: PluginHost | None) -> tuple[PluginHost, str, list[type] | None]:
    if isinstance(method, str):
        return host or default_host(), method, None
    if not (isinstance(method, type) and issubclass(method, Method)):
        raise TypeError(f"check_method takes a registered method name or a Method subclass, got {method!r}")
    return host or host_with([method]), method.name, [method]


def check_method(
    method: str | type[Method], *, scorers: tuple[str, ...] = ("bi-encoder",),
    base_model: str | None = None, host: PluginHost | None = None, workdir: str | Path | None = None,
) -> ContractReport:  # fmt: skip
    """Run the method contract on ``method``: the suite every built-in method passes.

    Under each scorer, on the toy task (:func:`~coldstart_peft.testing.toy_task`): training lowers
    the loss; the trainable-parameter count is reported; the saved adapter, its trainable weights
    moved off their initial values, reloads in a fresh process onto a fresh base model with
    identical scores; and the saved head without the method's weights scores differently, so a
    method weight that is not saved would show.

    Args:
        method: a registered method name (an installed plugin's), or a ``Method`` subclass,
            which is registered beside the built-in plugins (it must be importable by its
            module and name, as a class at the top of a test module or plugin is).
        scorers: registered scorer names to train the method under; the default recipe's
            bi-encoder unless told (this repository's suite runs every scorer).
        base_model: the base model; ``None`` for the bundled MiniLM cut to two layers, saved in
            ``workdir`` (pretrained features, a third of the cost).
        host: the plugin host to resolve names in; ``None`` for the installed plugins (a name)
            or the built-in ones plus the class.
        workdir: folder for the adapters (and the cut model), kept for inspection; if ``None``, a
            temporary one, deleted on return.

    Returns:
        The report, when every clause held.

    Raises:
        ContractFailure: listing every clause that broke, under which scorer.

    Example:
        >>> from coldstart_peft.testing import check_method
        >>> def test_bitfit_meets_the_contract():
        ...     check_method("bitfit")
    """
    host, name, classes = _host_and_name(method, host)
    host.method(name)  # an unknown name fails here, listing the known ones
    with tempfile.TemporaryDirectory(prefix="coldstart-contract-") as scratch:
        root = Path(workdir) if workdir is not None else Path(scratch)
        base = base_model if base_model is not None else save_small_bundled_model(root / "base")
        task = toy_task()
        outcomes, failures = {}, []
        for scorer in scorers:
            try:
                outcomes[scorer] = train_and_save(f"{scorer}-{name}", name, base, task, root / f"{scorer}-{name}",
                                                  host, ContractSettings(scorer=scorer))  # fmt: skip
            except Exception as exc:  # a crash is a broken clause too; the other scorers still run
                failures.append(f"{scorer}-{name}: training or saving raised {type(exc).__name__}: {exc}")
        reload_in_fresh_process(list(outcomes.values()), *probe_pairs(task[1]), method_classes=classes)
        for outcome in outcomes.values():
            for clause in (assert_loss_lowered, assert_parameters_reported, assert_reload_identical,
                           lambda o: assert_method_weights_saved(o, host, task[1])):  # fmt: skip
                try:
                    clause(outcome)
                except ContractFailure as exc:
                    failures.append(str(exc))
    if failures:
        raise ContractFailure(f"method {name!r} broke the contract:\n- " + "\n- ".join(failures))
    return ContractReport(name, outcomes, failures)
