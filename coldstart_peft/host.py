"""The plugin host: a pluggy manager plus the method and scorer registries it fills.

Built-in plugins are entry points of the ``coldstart_peft`` group declared by this
distribution, so they load through exactly the same code as third-party plugins. A
third-party plugin that fails to import or to register is reported, never fatal.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

import pluggy

from coldstart_peft import hookspecs
from coldstart_peft.errors import PluginError, RegistryError
from coldstart_peft.registry import Registry

DISTRIBUTION = "coldstart-peft"
ALLOW_ENV = "COLDSTART_PEFT_PLUGINS"
"""Comma-separated entry-point names of the third-party plugins to load; unset loads all,
an empty value loads none. Built-in plugins always load."""


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or registered."""

    plugin: str
    source: str
    stage: str
    error: str


@dataclass
class PluginHost:
    """Everything the plugins registered.

    Attributes:
        manager: the pluggy plugin manager.
        methods: registry of :class:`~coldstart_peft.method.Method` classes.
        scorers: registry of :class:`~coldstart_peft.scorer.Scorer` classes.
        failures: plugins that failed to import or register, with the reason.
        sources: plugin name → where it came from (``built-in`` or ``dist==version``).
    """

    manager: pluggy.PluginManager
    methods: Registry = field(default_factory=lambda: Registry("method"))
    scorers: Registry = field(default_factory=lambda: Registry("scorer"))
    failures: list[PluginFailure] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def method(self, name: str) -> type:
        """Return the method class registered as ``name`` (raises UnknownNameError)."""
        return self.methods.get(name)

    def scorer(self, name: str) -> type:
        """Return the scorer class registered as ``name`` (raises UnknownNameError)."""
        return self.scorers.get(name)


def _source(ep: EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return "unknown"
    if _is_builtin(ep):
        return "built-in"
    return f"{dist.name}=={dist.version}"


def _is_builtin(ep: EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name.replace("_", "-").lower() == DISTRIBUTION


def _allowed_third_party() -> set[str] | None:
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _report(host: PluginHost, failure: PluginFailure) -> None:
    host.failures.append(failure)
    warnings.warn(
        f"coldstart-peft plugin {failure.plugin!r} ({failure.source}) failed at {failure.stage}: "
        f"{failure.error}; it is skipped, the other plugins still work. "
        f"Fix or uninstall it, or leave it out with {ALLOW_ENV}.",
        RuntimeWarning,
        stacklevel=3,
    )


def _register_all(host: PluginHost) -> None:
    """Call each plugin's registration hooks one plugin at a time, so one bad plugin is isolated."""
    hooks = (("register_methods", host.methods), ("register_scorers", host.scorers))
    for hook_name, registry in hooks:
        for impl in getattr(host.manager.hook, hook_name).get_hookimpls():
            collected: list[type] = []
            try:
                impl.function(register=collected.append)
            except Exception as exc:  # a plugin's own bug must not take down the others
                source = host.sources.get(impl.plugin_name, "unknown")
                _report(host, PluginFailure(impl.plugin_name, source, hook_name, f"{type(exc).__name__}: {exc}"))
                continue
            for obj in collected:
                registry.add(obj, impl.plugin_name)


def create_host(load_entrypoints: bool = True, plugins: Iterable[tuple[str, object]] = ()) -> PluginHost:
    """Build a plugin host: built-in plugins, then third-party entry points, then ``plugins``.

    Args:
        load_entrypoints: load third-party entry points of the ``coldstart_peft`` group
            (tests pass ``False`` for a reproducible set). Built-ins always load.
        plugins: extra ``(name, module_or_object)`` plugins to register, e.g. in tests.

    Returns:
        The filled :class:`PluginHost`.

    Raises:
        PluginError: a hook implementation has a misspelled name (``check_pending``).
        DuplicateNameError: two plugins registered the same method or scorer name.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    host = PluginHost(manager=manager)
    allowed = _allowed_third_party()
    for ep in sorted(entry_points(group=hookspecs.PROJECT), key=lambda e: (not _is_builtin(e), e.name)):
        builtin = _is_builtin(ep)
        if not builtin and (not load_entrypoints or (allowed is not None and ep.name not in allowed)):
            continue
        if manager.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        source = _source(ep)
        host.sources[ep.name] = source
        try:
            module = ep.load()
        except Exception as exc:  # import errors of third-party code are reported, not raised
            if builtin:
                raise
            _report(host, PluginFailure(ep.name, source, "import", f"{type(exc).__name__}: {exc}"))
            continue
        manager.register(module, name=ep.name)
    for name, plugin in plugins:
        host.sources[name] = "registered in code"
        manager.register(plugin, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}; check the spelling of the plugin's @hookimpl functions") from exc
    _register_all(host)
    if not any(host.sources.get(n) == "built-in" for n in host.sources):
        raise PluginError(
            "no built-in plugins were found: coldstart-peft is not installed in this environment; "
            "run `pip install -e .` from the repository root"
        )
    return host


@lru_cache(maxsize=1)
def default_host() -> PluginHost:
    """The process-wide host with every installed plugin, built on first use."""
    return create_host()


def get_method(name: str) -> type:
    """Return the registered method class ``name`` from the default host."""
    return default_host().method(name)


def get_scorer(name: str) -> type:
    """Return the registered scorer class ``name`` from the default host."""
    return default_host().scorer(name)


__all__ = [
    "ALLOW_ENV",
    "PluginFailure",
    "PluginHost",
    "RegistryError",
    "create_host",
    "default_host",
    "get_method",
    "get_scorer",
]
