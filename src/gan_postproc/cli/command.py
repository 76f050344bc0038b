"""What a ``gan-postproc`` subcommand is, and collecting the plugins' commands.

The core's commands and every plugin's have one shape (:class:`Command`); plugins return theirs
from the hook ``gan_postproc_register_commands``.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple, Protocol

from ..errors import PluginError
from ..plugin_system.manager import PluginManager

__all__ = ["Command", "PluginCommand", "plugin_commands"]

_HOOK = "gan_postproc_register_commands"


class Command(Protocol):
    """A subcommand: usually a module with these four names (``gan_postproc.cli.sample_command``)."""

    #: The subcommand's name, as typed: ``gan-postproc NAME ...``.
    NAME: str
    #: One line for ``gan-postproc --help`` and the command's own ``--help``.
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's options to its parser."""

    def run(self, args: argparse.Namespace) -> int:
        """Run it with the parsed options; returns the exit code (0 on success)."""


class PluginCommand(NamedTuple):
    """A command and the name of the plugin that registered it."""

    command: Command
    plugin: str


def plugin_commands(pm: PluginManager) -> list[PluginCommand]:
    """Every plugin's commands, in plugin-name order, checked.

    Raises:
        PluginError: naming the plugin, if its hook returns something other than a list of commands
            (objects with ``NAME`` and ``HELP`` strings and callable ``add_arguments`` and ``run``), or
            if two plugins register the same name (naming both).
    """
    found: list[PluginCommand] = []
    owners: dict[str, str] = {}
    for impl in sorted(getattr(pm.hook, _HOOK).get_hookimpls(), key=lambda impl: impl.plugin_name):
        others = [plugin for plugin in pm.get_plugins() if plugin is not impl.plugin]
        try:
            results = pm.subset_hook_caller(_HOOK, remove_plugins=others)()
        except Exception as error:
            raise PluginError(f"plugin {impl.plugin_name!r} raised in {_HOOK}: {type(error).__name__}: {error}") from error
        returned = results[0] if results else None
        if returned is None:
            continue
        if not isinstance(returned, (list, tuple)):
            raise PluginError(f"plugin {impl.plugin_name!r}, hook {_HOOK}: expected a list of commands, got {type(returned).__name__}")
        for command in returned:
            _check(command, impl.plugin_name)
            if command.NAME in owners:
                raise PluginError(
                    f"command {command.NAME!r} is registered twice: by plugin {owners[command.NAME]!r} and by plugin "
                    f"{impl.plugin_name!r}; block one of them (GAN_POSTPROC_BLOCK_PLUGINS) or rename a command"
                )
            owners[command.NAME] = impl.plugin_name
            found.append(PluginCommand(command, impl.plugin_name))
    return found


def _check(command: object, plugin: str) -> None:
    missing = [name for name in ("NAME", "HELP") if not isinstance(getattr(command, name, None), str) or not getattr(command, name)]
    missing += [name for name in ("add_arguments", "run") if not callable(getattr(command, name, None))]
    if missing:
        raise PluginError(
            f"plugin {plugin!r}, hook {_HOOK}: {command!r} is not a command; it lacks {', '.join(missing)} "
            "(a command has NAME and HELP strings, add_arguments(parser) and run(args) -> int)"
        )
