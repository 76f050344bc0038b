"""``gan-postproc bench NAME``: run a benchmark.

Benchmarks are found through the entry-point group ``gan_postproc.benchmarks``
(name -> module), so a third-party package adds one the way it adds a plugin.
A benchmark module has ``NAME`` (its entry-point name), ``HELP``,
``add_arguments(parser)`` and ``run(args)``, which returns what ``--json`` prints.
It may also add rows to ``gan-postproc demo`` with a function
``demo_rows(n, seed, out)`` (``out``: the demo's ``--out`` folder or ``None``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import warnings
from importlib import metadata
from types import ModuleType

from ..errors import InputError, PluginError
from ..plugin_system.manager import PluginLoadWarning

NAME = "bench"
HELP = "run a benchmark (list them with `gan-postproc bench --list`)"
#: The entry-point group benchmarks are registered in.
GROUP = "gan_postproc.benchmarks"


def available() -> dict[str, ModuleType]:
    """Benchmark modules by name, from the entry-point group :data:`GROUP`.

    A benchmark that fails to import is warned about (:class:`PluginLoadWarning`) and left out.

    Raises:
        PluginError: if a module lacks ``HELP``, ``add_arguments`` or ``run``, or its ``NAME`` differs
            from its entry-point name.
    """
    found: dict[str, ModuleType] = {}
    for entry_point in sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name):
        try:
            module = entry_point.load()
        except Exception as cause:  # a third-party benchmark's import failure must not hide the others
            warnings.warn(
                f"benchmark {entry_point.name!r} ({entry_point.value}) failed to import: {type(cause).__name__}: {cause}; "
                "the other benchmarks are listed. Fix or uninstall the package that declares it",
                PluginLoadWarning,
                stacklevel=2,
            )
            continue
        missing = [name for name in ("HELP", "add_arguments", "run") if not hasattr(module, name)]
        if missing or getattr(module, "NAME", None) != entry_point.name:
            raise PluginError(
                f"benchmark {entry_point.name!r} ({entry_point.value}, group {GROUP}) is not a benchmark module: it needs "
                f"NAME = {entry_point.name!r}, HELP, add_arguments(parser) and run(args)"
                + (f"; it lacks {', '.join(missing)}" if missing else f"; its NAME is {getattr(module, 'NAME', None)!r}")
            )
        found[entry_point.name] = module
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="benchmark name")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's own options (see `gan-postproc bench NAME --help`)")


def run(args: argparse.Namespace) -> int:
    benchmarks = available()
    if args.list or not args.name:
        for name in sorted(benchmarks):
            print(f"{name:16s} {benchmarks[name].HELP}")
        return 0
    if args.name not in benchmarks:
        raise InputError(f"no benchmark named {args.name!r}; available: {sorted(benchmarks)}")
    module = benchmarks[args.name]
    parser = argparse.ArgumentParser(prog=f"gan-postproc bench {args.name}", description=module.HELP)
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (the tables go to stderr)")
    module.add_arguments(parser)
    options = parser.parse_args(args.options)
    if not options.json:
        module.run(options)
        return 0
    with contextlib.redirect_stdout(sys.stderr):  # the tables go to stderr, so stdout is pure JSON
        result = module.run(options)
    print(json.dumps(standard_json(result), indent=2, allow_nan=False))
    return 0


def standard_json(value: object) -> object:
    """``value`` with NaN and infinities as ``null`` (a metric that could not be computed), so any JSON parser reads it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: standard_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [standard_json(item) for item in value]
    return value
