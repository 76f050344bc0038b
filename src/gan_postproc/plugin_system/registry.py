"""The registry of samplers, refiners and adapters, collected from every plugin."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import GanPostprocError, InputError, InputTypeError, PluginError
from ..pipeline.adapter import Adapter
from ..pipeline.refiner import Refiner
from ..pipeline.sampler import LatentSampler
from ..validation import check_options
from .manager import PluginManager, get_plugin_manager

__all__ = ["MethodInfo", "Registry", "get_registry", "reset_registry", "KINDS"]

Kind = Literal["sampler", "refiner", "adapter"]

#: kind -> (registration hook, required base class)
KINDS: dict[str, tuple[str, type]] = {
    "sampler": ("gan_postproc_register_samplers", LatentSampler),
    "refiner": ("gan_postproc_register_refiners", Refiner),
    "adapter": ("gan_postproc_register_adapters", Adapter),
}


@dataclass(frozen=True)
class MethodInfo:
    """A registered class and where it came from.

    Attributes:
        name: the class's unique ``name``.
        kind: ``"sampler"``, ``"refiner"`` or ``"adapter"``.
        cls: the class.
        plugin: name of the plugin that registered it.
        module: module path of that plugin.
        version: version of the distribution that ships the plugin, if known.
    """

    name: str
    kind: str
    cls: type
    plugin: str
    module: str
    version: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``name``, ``kind``, ``plugin``, ``module``, ``version``, ``summary``."""
        doc = (self.cls.__doc__ or "").strip().splitlines()
        return {
            "name": self.name,
            "kind": self.kind,
            "plugin": self.plugin,
            "module": self.module,
            "version": self.version,
            "summary": doc[0] if doc else "",
        }


class Registry:
    """Every sampler, refiner and adapter class registered by the plugins of a manager."""

    def __init__(self, pm: PluginManager) -> None:
        self.plugin_manager = pm
        self._by_kind: dict[str, dict[str, MethodInfo]] = {kind: {} for kind in KINDS}
        for kind, (hook_name, base) in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                for cls in _call_registration(pm, impl, hook_name):
                    self._add(kind, base, cls, impl.plugin_name)

    def _add(self, kind: str, base: type, cls: Any, plugin: str) -> None:
        where = f"plugin {plugin!r}, hook {KINDS[kind][0]}"
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"{where} returned {cls!r}; expected a subclass of gan_postproc.{base.__name__}")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{where} returned {cls.__qualname__} without a class attribute `name` (a non-empty str)")
        existing = self._by_kind[kind].get(name)
        if existing is not None:
            raise PluginError(
                f"{kind} name {name!r} is registered twice: by plugin {existing.plugin!r} ({existing.cls.__qualname__}) "
                f"and by plugin {plugin!r} ({cls.__qualname__}); block one of them or rename a class"
            )
        info = self.plugin_manager.plugin_info.get(plugin)
        self._by_kind[kind][name] = MethodInfo(
            name=name,
            kind=kind,
            cls=cls,
            plugin=plugin,
            module=info.module if info else cls.__module__,
            version=info.version if info else None,
        )

    def names(self, kind: str) -> list[str]:
        """Sorted names of the registered classes of one kind."""
        return sorted(self._by_kind[_check_kind(kind)])

    def infos(self, kinds: Iterable[str] = tuple(KINDS)) -> list[MethodInfo]:
        """Every registered class of the given kinds, sorted by kind then name."""
        return [self._by_kind[k][n] for k in kinds for n in self.names(k)]

    def get(self, kind: str, name: str) -> type:
        """The registered class of ``kind`` called ``name``, or an error listing the valid names."""
        entries = self._by_kind[_check_kind(kind)]
        if name not in entries:
            raise InputError(f"no {kind} named {name!r}; registered {kind}s: {sorted(entries)}")
        return entries[name].cls

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Instantiate the registered class with ``options``.

        Missing or unknown options are refused before the class is built, with
        the list of options it takes (read from its signature, so every
        plugin gets this without writing it).
        """
        cls = self.get(kind, name)
        check_options(cls, options, f"cannot create {kind} {name!r}")
        try:
            return cls(**options)
        except GanPostprocError:
            raise
        except TypeError as error:  # an option of a type the class does not check itself
            raise InputTypeError(f"cannot create {kind} {name!r} with options {options!r}: {error}") from error


def _call_registration(pm: PluginManager, impl: Any, hook_name: str) -> list[Any]:
    """Call one plugin's registration hook through pluggy (so tracing sees it) and check the result."""
    others = [plugin for plugin in pm.get_plugins() if plugin is not impl.plugin]
    try:
        results = pm.subset_hook_caller(hook_name, remove_plugins=others)()
        result = results[0] if results else None
    except Exception as error:
        raise PluginError(f"plugin {impl.plugin_name!r} raised in {hook_name}: {type(error).__name__}: {error}") from error
    if result is None:
        return []
    if not isinstance(result, (list, tuple)):
        raise PluginError(f"plugin {impl.plugin_name!r}, hook {hook_name}: expected a list of classes, got {type(result).__name__}")
    return list(result)


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    return kind


_lock = threading.Lock()
#: One registry per manager, forgotten with the manager (so a reset manager means a fresh registry).
_cached: weakref.WeakKeyDictionary[PluginManager, Registry] = weakref.WeakKeyDictionary()


def get_registry(pm: PluginManager | None = None) -> Registry:
    """The registry for ``pm`` (default: :func:`~gan_postproc.get_plugin_manager`), built once per manager."""
    pm = pm if pm is not None else get_plugin_manager()
    with _lock:
        registry = _cached.get(pm)
        if registry is None:
            registry = _cached[pm] = Registry(pm)
        return registry


def reset_registry() -> None:
    """Forget cached registries, also those of managers still in use (after registering a plugin on one)."""
    with _lock:
        _cached.clear()
