"""Building the plugin manager: discovery, blocking, validation and tracing.

Built-in plugins are registered exactly like third-party ones: through the
entry-point group ``gan_postproc``. A plugin is blocked by its entry-point
name, through :func:`get_plugin_manager` (``block=``) or the environment
variable ``GAN_POSTPROC_BLOCK_PLUGINS`` (comma-separated names). A plugin that
fails to import is reported (a :class:`PluginLoadWarning` and an entry in
:attr:`PluginManager.load_errors`) and the others still load. Setting
``GAN_POSTPROC_TRACE=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import inspect
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from .. import hookspecs
from ..errors import PluginError, PluginLoadError

__all__ = [
    "ENTRY_POINT_GROUP",
    "BLOCK_ENV",
    "TRACE_ENV",
    "PluginLoadWarning",
    "PluginInfo",
    "PluginManager",
    "get_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "gan_postproc"
BLOCK_ENV = "GAN_POSTPROC_BLOCK_PLUGINS"
TRACE_ENV = "GAN_POSTPROC_TRACE"
_HOOK_PREFIX = "gan_postproc_"


class PluginLoadWarning(UserWarning):
    """Warns that a plugin failed to import; the others were loaded."""


@dataclass(frozen=True)
class PluginInfo:
    """Where a registered plugin came from.

    Attributes:
        name: the plugin's name (its entry-point name, or the name given to
            :meth:`PluginManager.register_plugin`).
        module: the importable module path (``gan_postproc.plugins.bigroc``).
        distribution: the installed distribution that declared it, if any.
        version: that distribution's version, if any.
    """

    name: str
    module: str
    distribution: str | None
    version: str | None


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus provenance of every plugin and loud failures on mistakes."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.plugin_info: dict[str, PluginInfo] = {}
        self.load_errors: list[PluginLoadError] = []

    def register_plugin(self, plugin: Any, name: str, *, distribution: str | None = None, version: str | None = None) -> None:
        """Register ``plugin`` under ``name`` and check its hooks.

        Raises:
            PluginError: naming the plugin and hook, if a hook implementation
                has arguments the hook does not define, if a function named
                like a hook lacks ``@hookimpl``, or if the name is taken.
        """
        if self.is_blocked(name):
            return
        if self.get_plugin(name) is not None:
            raise PluginError(f"a plugin named {name!r} is already registered; give the second one another name")
        _check_undecorated(plugin, name)
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            detail = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise PluginError(f"plugin {name!r} has an invalid hook implementation: {detail}. {_hook_arguments(detail)}") from error
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        self.plugin_info[name] = PluginInfo(name=name, module=module, distribution=distribution, version=version)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Import and register every plugin of the entry-point group, skipping blocked ones.

        Import failures are collected in :attr:`load_errors` and warned about;
        other mistakes (bad hooks) raise :class:`PluginError`.
        """
        for entry_point in sorted(metadata.entry_points(group=group), key=lambda ep: ep.name):
            if self.is_blocked(entry_point.name) or self.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
            except Exception as cause:  # any import-time failure of third-party code
                error = PluginLoadError(entry_point.name, cause)
                self.load_errors.append(error)
                warnings.warn(str(error), PluginLoadWarning, stacklevel=2)
                continue
            dist = entry_point.dist
            self.register_plugin(
                plugin,
                entry_point.name,
                distribution=None if dist is None else dist.metadata["Name"],
                version=None if dist is None else dist.version,
            )

    def check_pending(self) -> None:
        """pluggy's check for implementations of unknown (e.g. misspelled) hooks, with the plugin named."""
        try:
            super().check_pending()
        except pluggy.PluginValidationError as error:
            name = self.get_name(error.plugin) if error.plugin is not None else "?"
            known = ", ".join(sorted(h for h in dir(self.hook) if h.startswith(_HOOK_PREFIX)))
            raise PluginError(f"plugin {name!r}: {error}. Known hooks: {known}") from error

    def enable_tracing(self, stream: Any = None) -> None:
        """Print every hook call, its arguments' names and its result to ``stream`` (stderr)."""
        out = stream if stream is not None else sys.stderr

        def before(hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
            plugins = ", ".join(self.get_name(impl.plugin) or "?" for impl in hook_impls)
            print(f"[gan_postproc trace] {hook_name}({', '.join(kwargs)}) -> [{plugins}]", file=out)

        def after(outcome: Any, hook_name: str, hook_impls: list[Any], kwargs: dict[str, Any]) -> None:
            status = "raised " + repr(outcome.exception) if outcome.exception is not None else "ok"
            print(f"[gan_postproc trace] {hook_name} {status}", file=out)

        self.add_hookcall_monitoring(before, after)

    def plugin_of_traceback(self, error: BaseException) -> str | None:
        """Name the plugin whose hook implementation raised ``error``, if one did."""
        codes = {}
        for hook_name in dir(self.hook):
            if hook_name.startswith(_HOOK_PREFIX):
                for impl in getattr(self.hook, hook_name).get_hookimpls():
                    codes[getattr(impl.function, "__code__", None)] = impl.plugin_name
        tb = error.__traceback__
        found = None
        while tb is not None:
            found = codes.get(tb.tb_frame.f_code, found)
            tb = tb.tb_next
        return found


def _hook_arguments(detail: str) -> str:
    """'Hook X takes (a, b)' for the hook named in a pluggy validation message."""
    for hook_name in dir(hookspecs):
        if hook_name.startswith(_HOOK_PREFIX) and f"'{hook_name}'" in detail:
            params = ", ".join(inspect.signature(getattr(hookspecs, hook_name)).parameters)
            return f"Hook {hook_name} takes ({params})."
    return ""


def _check_undecorated(plugin: Any, name: str) -> None:
    """Refuse functions named like hooks that forgot ``@hookimpl`` (they would never run)."""
    for attr, value in inspect.getmembers(plugin):
        if attr.startswith(_HOOK_PREFIX) and callable(value):
            if not hasattr(value, hookspecs.PROJECT + "_impl"):
                raise PluginError(
                    f"plugin {name!r} defines {attr}() without @hookimpl, so it would never be called; "
                    "decorate it with @gan_postproc.hookimpl"
                )


def _blocked_from_env() -> set[str]:
    return {part.strip() for part in os.environ.get(BLOCK_ENV, "").split(",") if part.strip()}


_lock = threading.Lock()
_cached: dict[tuple[frozenset[str], bool], PluginManager] = {}


def get_plugin_manager(*, block: Iterable[str] = (), trace: bool | None = None, entry_points: bool = True) -> PluginManager:
    """The plugin manager with every installed plugin registered.

    Built on first use and cached per set of blocked names. Pass ``block`` to
    block plugins by name in addition to those in ``GAN_POSTPROC_BLOCK_PLUGINS``.

    Args:
        block: plugin names not to register.
        trace: print every hook call (default: ``GAN_POSTPROC_TRACE`` is set to
            a non-empty value other than ``0``).
        entry_points: load plugins from the ``gan_postproc`` entry-point group.
            ``False`` gives a manager with no plugins, for tests and embedding.
    """
    blocked = frozenset(block) | _blocked_from_env()
    if trace is None:
        trace = os.environ.get(TRACE_ENV, "") not in ("", "0")
    key = (blocked, trace)
    with _lock:
        if entry_points and key in _cached:
            return _cached[key]
        pm = PluginManager()
        for name in blocked:
            pm.set_blocked(name)
        if trace:
            pm.enable_tracing()
        if entry_points:
            pm.load_entry_points()
            pm.check_pending()
            _cached[key] = pm
        return pm


def reset_plugin_manager() -> None:
    """Forget cached managers, so the next call rediscovers plugins (after installing one).

    The registry is cached per manager (:func:`~gan_postproc.get_registry`), so the next
    manager also gets a fresh registry.
    """
    with _lock:
        _cached.clear()
