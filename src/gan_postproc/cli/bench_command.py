"""``gan-postproc bench NAME``: run one of the shipped benchmarks."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import pkgutil
import sys
from types import ModuleType

from ..errors import InputError

NAME = "bench"
HELP = "run a benchmark (list them with `gan-postproc bench --list`)"
PACKAGE = "gan_postproc.benchmarks"


def available() -> dict[str, ModuleType]:
    """Benchmark modules by ``NAME``: the modules of gan_postproc.benchmarks that define ``NAME`` and ``run``."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            found[module.NAME] = module
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
