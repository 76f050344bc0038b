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
    train_dg_command,
    train_importance_command,
)

#: Subcommand modules; each has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
COMMANDS: tuple[ModuleType, ...] = (
    demo_command, plugins_command, sample_command, calibrate_command, shape_command, refine_command,
    train_classifier_command, train_importance_command, train_dg_command, bench_command,
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
    """Run the CLI; returns the exit code (the console script exits with it).

    Exit codes: 0 success; 2 bad usage (argparse's own errors, and
    :class:`~gan_postproc.errors.GanPostprocError` with ``exit_code`` 2: the
    user can fix the input); 1 a failed run (other library errors, operating
    system errors such as a full disk, and unexpected exceptions); 130 when
    interrupted (Ctrl-C). Errors print one line to stderr; ``--debug``
    re-raises them with their traceback instead.
    """
    parser = build_parser()
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
