"""A plugin host holding given method classes beside the built-in plugins, without any entry point."""

from __future__ import annotations

from coldstart_peft.hookspecs import hookimpl
from coldstart_peft.host import PluginHost, create_host


class _Registers:
    """A plugin object whose hook registers the given method classes."""

    def __init__(self, methods: list[type]):
        self.methods = list(methods)

    @hookimpl
    def register_methods(self, register) -> None:
        for method in self.methods:
            register(method)


def host_with(methods: list[type]) -> PluginHost:
    """The built-in plugins plus ``methods``, and no third-party entry points.

    Args:
        methods: ``Method`` subclasses (a class whose name is built in raises ``DuplicateNameError``).

    Returns:
        A fresh :class:`~coldstart_peft.host.PluginHost`.
    """
    return create_host(load_entrypoints=False, plugins=[("contract-kit", _Registers(methods))])
