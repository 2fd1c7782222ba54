"""Hook specifications: the only functions a plugin implements.

Hooks only *register* things. Behaviour lives on the registered classes (:class:`Method`,
:class:`Scorer`), because a pluggy hook fires for every installed plugin while only one
method is active in a run.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "coldstart_peft"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorate a plugin's hook functions with this marker."""


@hookspec
def register_methods(register: Callable[[type], None]) -> None:
    """Register fine-tuning methods.

    Called once for every plugin when the plugin manager starts. Not ``firstresult``: every
    plugin's implementation runs.

    Args:
        register: call it with each :class:`coldstart_peft.Method` subclass the plugin
            provides. The class's ``name`` must be lowercase and unique across plugins.

    Example:
        >>> @hookimpl
        ... def register_methods(register):
        ...     register(MyMethod)
    """


@hookspec
def register_scorers(register: Callable[[type], None]) -> None:
    """Register scorers: models that turn (user context, item) text pairs into scores.

    Called once for every plugin when the plugin manager starts. Not ``firstresult``: every
    plugin's implementation runs.

    Args:
        register: call it with each :class:`coldstart_peft.Scorer` subclass the plugin
            provides. The class's ``name`` must be lowercase and unique across plugins.
    """
