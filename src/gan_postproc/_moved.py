"""Old import paths that still work for one release: modules and names that moved.

When a module or a name moves (``gan_postproc.density_ratio`` into the
density-ratio family, ``gan_postproc.adapter`` into ``gan_postproc.pipeline``),
its old path keeps importing until version 0.3, with a
:class:`DeprecationWarning` naming the new path. The table of moves is package
metadata, the entry-point group ``gan_postproc.moved`` (``pyproject.toml``), so
the core names no plugin module; a third-party plugin that moves its own
modules can declare its moves the same way. Each entry is either

* ``"old.module" = "new.module"``: the module moved; every name of the old path
  is looked up in the new module, or
* ``"old.module:name" = "new.module:name"``: one name moved (for a module whose
  names went to several new homes).

An old module path imports as a small forwarding module: ``from old.module
import X`` gives the very object ``new.module.X``; importing it warns once. A
name that left a module which still exists (``gan_postproc.validation:check_batch``)
is served by that module's ``__getattr__``, which calls :func:`moved_name`; it
warns on first use. The method fields of ``gan_postproc.DEFAULTS`` moved to their
families' tables (entry-point group ``gan_postproc.moved_defaults``); reading one
from the core's table still works, with a warning (:func:`moved_default`).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
import warnings
from collections.abc import Sequence
from importlib import metadata
from typing import Any

__all__ = ["GROUP", "DEFAULTS_GROUP", "REMOVED_IN", "Moves", "moves", "moved_name", "moved_default", "install"]

#: The entry-point group of the table of moves.
GROUP = "gan_postproc.moved"
#: The entry-point group of the defaults tables that took fields out of ``gan_postproc.DEFAULTS``
#: (name -> ``module:DEFAULTS``); their fields keep their 0.1 names.
DEFAULTS_GROUP = "gan_postproc.moved_defaults"
#: The release that drops the old paths.
REMOVED_IN = "0.3"


class Moves:
    """The table of moves: old module -> new module, and (old module, name) -> (new module, name)."""

    def __init__(self, entries: Sequence[tuple[str, str]]) -> None:
        self.modules: dict[str, str] = {}
        self.names: dict[str, dict[str, tuple[str, str]]] = {}
        for old, new in entries:
            if ":" in old:
                old_module, _, name = old.partition(":")
                new_module, _, new_name = new.partition(":")
                self.names.setdefault(old_module, {})[name] = (new_module, new_name or name)
            else:
                self.modules[old] = new

    def knows(self, module: str) -> bool:
        """True when ``module`` is an old path (moved itself, or some of its names moved)."""
        return module in self.modules or module in self.names

    def is_package(self, module: str) -> bool:
        """True when some old path lies below ``module`` (so it must import as a package)."""
        prefix = module + "."
        return any(old.startswith(prefix) for old in (*self.modules, *self.names))

    def new_homes(self, module: str) -> str:
        """The new modules of an old module's names, for the warning: ``"a"``, ``"a and b"``, ``"a, b and c"``."""
        homes = {new for new, _ in self.names.get(module, {}).values()}
        if module in self.modules:
            homes.add(self.modules[module])
        ordered = sorted(homes)
        return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1]

    def resolve(self, module: str, name: str) -> Any:
        """The object the old ``module.name`` refers to now; AttributeError if it never existed."""
        moved = self.names.get(module, {}).get(name)
        if moved is not None:
            new_module, new_name = moved
            target: Any = importlib.import_module(new_module)
            for part in new_name.split("."):
                target = getattr(target, part)
            return target
        if module in self.modules:
            new = importlib.import_module(self.modules[module])
            if hasattr(new, name):
                return getattr(new, name)
            raise AttributeError(f"module {module!r} (moved to {self.modules[module]!r}) has no attribute {name!r}")
        raise AttributeError(f"module {module!r} has no attribute {name!r}")


_lock = threading.RLock()
_moves: Moves | None = None


def moves() -> Moves:
    """The table read from the installed packages' metadata (once per process)."""
    global _moves
    with _lock:
        if _moves is None:
            entries = [(ep.name, ep.value) for ep in metadata.entry_points(group=GROUP)]
            _moves = Moves(entries)
        return _moves


def moved_name(module: str, name: str) -> Any:
    """The new home's object for ``module.name``, a name that left ``module`` (warns once), else AttributeError.

    For a module's ``__getattr__``: ``def __getattr__(name): return moved_name(__name__, name)``.
    """
    table = moves()
    moved = table.names.get(module, {}).get(name)
    if moved is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    value = table.resolve(module, name)
    warnings.warn(
        f"{module}.{name} moved to {moved[0]}.{moved[1]}; import it from there "
        f"(the old path is removed in gan-postproc {REMOVED_IN})",
        DeprecationWarning,
        stacklevel=3,
    )
    setattr(sys.modules[module], name, value)  # warn once; later look-ups find it directly
    return value


def moved_default(field: str) -> Any:
    """``gan_postproc.DEFAULTS.<field>`` for a field that moved to a family's table (warns), else AttributeError."""
    for entry_point in sorted(metadata.entry_points(group=DEFAULTS_GROUP), key=lambda ep: ep.name):
        module_name, _, attribute = entry_point.value.partition(":")
        table = getattr(importlib.import_module(module_name), attribute or "DEFAULTS")
        if field in getattr(type(table), "__dataclass_fields__", {}):
            warnings.warn(
                f"gan_postproc.DEFAULTS.{field} moved to {module_name}.{attribute or 'DEFAULTS'}.{field} "
                f"(the old place is removed in gan-postproc {REMOVED_IN})",
                DeprecationWarning,
                stacklevel=3,
            )
            return getattr(table, field)
    raise AttributeError(f"gan_postproc.DEFAULTS has no field {field!r}")


class _MovedModule(types.ModuleType):
    """What an old path imports as: forwards every attribute to the name's new home."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = moves().resolve(self.__name__, name)
        setattr(self, name, value)  # later look-ups skip the table
        return value

    def __dir__(self) -> list[str]:
        table = moves()
        names = set(table.names.get(self.__name__, {}))
        if self.__name__ in table.modules:
            names.update(n for n in dir(importlib.import_module(table.modules[self.__name__])) if not n.startswith("_"))
        return sorted(names | set(super().__dir__()))


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        homes = moves().new_homes(module.__name__)
        warnings.warn(
            f"{module.__name__} moved to {homes}; import from there (the old path is removed in gan-postproc {REMOVED_IN})",
            DeprecationWarning,
            stacklevel=2,
        )


class _Finder(importlib.abc.MetaPathFinder):
    """Finds old paths of the table, after every other finder failed to find them."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("gan_postproc."):
            return None
        table = moves()
        if not (table.knows(fullname) or table.is_package(fullname)):
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=table.is_package(fullname))


def install() -> None:
    """Put the finder at the end of ``sys.meta_path`` (once): old paths are tried only when nothing else has them."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
