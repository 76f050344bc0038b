"""Entry point of the ``gan-postproc`` console script.

Exit codes: 0 success, 1 the run failed, 2 bad usage (wrong arguments or
input). Errors the user can fix print one message, no traceback, unless
``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import GanPostprocError
from . import (
    bench_command,
    calibrate_command,
    demo_command,
    plugins_command,
    refine_command,
    sample_command,
    shape_command,
    train_classifier_command,
    train_importance_command,
)

#: Subcommand modules; each has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS: tuple[ModuleType, ...] = (
    demo_command, plugins_command, sample_command, calibrate_command, shape_command, refine_command,
    train_classifier_command, train_importance_command, bench_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-postproc",
        description="Better samples from already-trained generative models, without retraining.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except GanPostprocError as error:
        if args.debug:
            raise
        print(f"gan-postproc {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"gan-postproc {args.command}: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:
    """``gan-postproc`` console script."""
    sys.exit(main())
