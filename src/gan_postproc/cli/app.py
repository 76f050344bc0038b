"""Entry point of the ``gan-postproc`` console script.

Exit codes: 0 success, 1 the run failed, 2 bad usage (wrong arguments or
input), 130 interrupted. Errors print one message, no traceback, unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import GanPostprocError, PluginError
from ..plugin_system.manager import PluginManager, get_plugin_manager
from . import bench_command, demo_command, plugins_command, refine_command, sample_command
from .command import Command, plugin_commands

#: The core's own subcommand modules; each has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
#: ``run(args) -> int``. Method families add theirs through the hook ``gan_postproc_register_commands``.
COMMANDS: tuple[ModuleType, ...] = (demo_command, plugins_command, sample_command, refine_command, bench_command)


def commands(pm: PluginManager | None = None) -> list[Command]:
    """The core's commands (:data:`COMMANDS`), then every plugin's (``gan_postproc_register_commands``).

    Raises:
        PluginError: if a plugin's command is malformed or takes a name already taken (see
            :func:`~gan_postproc.cli.command.plugin_commands`), naming the plugin.
    """
    found: list[Command] = list(COMMANDS)
    core = {command.NAME for command in COMMANDS}
    for command, plugin in plugin_commands(pm if pm is not None else get_plugin_manager()):
        if command.NAME in core:
            raise PluginError(
                f"plugin {plugin!r} registers the command {command.NAME!r}, which gan-postproc itself has; "
                "rename the plugin's command, or block the plugin (GAN_POSTPROC_BLOCK_PLUGINS)"
            )
        found.append(command)
    return found


def build_parser(pm: PluginManager | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-postproc",
        description="Better samples from already-trained generative models, without retraining.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in commands(pm):
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it).

    Exit codes: 0 success; 2 bad usage (argparse's own errors, and
    :class:`~gan_postproc.errors.GanPostprocError` with ``exit_code`` 2: the
    user can fix the input); 1 a failed run (other library errors, operating
    system errors such as a full disk, and unexpected exceptions); 130 when
    interrupted (Ctrl-C). Errors print one line to stderr; ``--debug``
    re-raises them with their traceback instead.
    """
    try:
        parser = build_parser()
    except GanPostprocError as error:  # a plugin's broken command: say which plugin, no traceback
        print(f"gan-postproc: error: {error}", file=sys.stderr)
        return error.exit_code
    args = parser.parse_args(argv)
    prefix = f"gan-postproc {args.command}"
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted; re-run the same command to resume where it stopped", file=sys.stderr)
        return 130
    except GanPostprocError as error:
        if args.debug:
            raise
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:  # disk full, permission denied, ...: the environment, not the input
        if args.debug:
            raise
        print(f"{prefix}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        if args.debug:
            raise
        print(
            f"{prefix}: unexpected error: {type(error).__name__}: {error} "
            "(this is probably a bug in gan-postproc or a plugin; re-run with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def console_main() -> None:
    """``gan-postproc`` console script."""
    sys.exit(main())
