"""``gan-postproc plugins``: list every registered sampler, refiner and adapter, and the plugins' commands."""

from __future__ import annotations

import argparse
import json
import sys

from ..plugin_system.registry import Registry, get_registry
from .command import Command, plugin_commands

NAME = "plugins"
HELP = "list the registered samplers, refiners, adapters and plugin commands, and plugins that failed to load"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list of {name, kind, plugin, module, version, summary} (kind: sampler, refiner, adapter or command)")


def run(args: argparse.Namespace) -> int:
    registry = get_registry()
    rows = [info.as_dict() for info in registry.infos()]
    rows += [_command_row(registry, command, plugin) for command, plugin in plugin_commands(registry.plugin_manager)]
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


def _command_row(registry: Registry, command: Command, plugin: str) -> dict[str, object]:
    """A plugin's command as a row of the listing (kind ``command``)."""
    info = registry.plugin_manager.plugin_info.get(plugin)
    return {
        "name": command.NAME,
        "kind": "command",
        "plugin": plugin,
        "module": info.module if info else getattr(command, "__name__", type(command).__module__),
        "version": info.version if info else None,
        "summary": command.HELP,
    }
