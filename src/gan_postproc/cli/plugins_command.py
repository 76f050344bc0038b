"""``gan-postproc plugins``: list every registered sampler, refiner and adapter."""

from __future__ import annotations

import argparse
import json
import sys

from ..plugin_system.registry import get_registry

NAME = "plugins"
HELP = "list the registered samplers, refiners and adapters, and plugins that failed to load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, kind, plugin, module, version, summary}")


def run(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = [info.as_dict() for info in registry.infos()]
    for error in registry.plugin_manager.load_errors:
        print(f"warning: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    headers = ("name", "kind", "plugin", "version", "summary")
    widths = {h: max([len(h)] + [len(str(row[h] or "")) for row in rows]) for h in headers[:-1]}
    print("  ".join(h.upper().ljust(widths.get(h, 0)) for h in headers))
    for row in rows:
        print("  ".join(str(row[h] or "").ljust(widths.get(h, 0)) for h in headers))
    return 0
