"""Every CLI command: exit 0 / 1 / 2 / 130, one line for errors, a traceback only with --debug.

The tests iterate over ``cli.app.commands()`` (the core's and every plugin's), so a new command is covered (and
must add its representative bad input to ``BAD_INPUTS``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gan_postproc.cli import app
from gan_postproc.errors import AcceptanceError, GanPostprocError, InputError

NAMES = [command.NAME for command in app.commands()]


def BAD_INPUTS(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Per command: a representative bad input and a fragment of the one-line error it must print (exit 2)."""
    missing = str(tmp / "missing")
    return {
        "demo": (["demo", "--n", "0"], "n must be an integer >= 1, got 0"),
        "plugins": (["plugins", "--format", "xml"], "unrecognized arguments: --format xml"),
        "sample": (["sample", "--model", "tests.helpers.sample_models:image_adapter", "--n", "-5", "--output", str(tmp / "s")], "n must be an integer >= 1, got -5"),
        "calibrate": (["calibrate", "--model", "no_such_module:adapter", "--real-data", "x:y", "--output", str(tmp / "c.safetensors")],
                      "--model 'no_such_module:adapter': cannot import 'no_such_module'"),
        "shape-discriminator": (["shape-discriminator", "--model", "digits", "--real-data", "digits", "--out", str(tmp / "d.safetensors"), "--steps", "-1"],
                                "steps must be an integer >= 0, got -1"),
        "refine": (["refine", "--refiner", "bigroc", "--input", missing, "--output", str(tmp / "r")], f"--input {missing} does not exist"),
        "train-robust-classifier": (["train-robust-classifier", "--data", str(tmp), "--output", str(tmp / "c.pt"), "--eps", "0.5", "--epochs", "1"],
                                    "--output must be a .safetensors file"),
        "train-importance": (["train-importance", "--model", "toy2d-25gaussians", "--data", "toy2d-25gaussians", "--out", str(tmp)],
                             f"--out {tmp} is a folder; give a file name"),
        "train-dg": (["train-dg", "--pipeline", "digits", "--extractor", "digits", "--real", "digits", "--generate", "4",
                      "--out", str(tmp / "d.safetensors")], "--generate needs --num-inference-steps"),
        "bench": (["bench", "no_such_benchmark"], "no benchmark named 'no_such_benchmark'"),
    }


def _run(argv: list[str]) -> int:
    try:
        return app.main(argv)
    except SystemExit as done:  # argparse's own usage errors
        return int(done.code)


def test_every_command_has_a_representative_bad_input(tmp_path):
    assert set(BAD_INPUTS(tmp_path)) == set(NAMES), "add the new command's bad input to BAD_INPUTS"


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_input_exits_2_with_one_clear_line(name, tmp_path, capsys):
    argv, message = BAD_INPUTS(tmp_path)[name]
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    if not err.startswith("usage:"):  # argparse prints its usage line first; ours is exactly one line
        assert err.count("\n") == 1 and err.startswith(f"gan-postproc {name}: error: ")


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_option_is_a_usage_error(name, capsys):
    assert _run([name, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-option" in err or "the following arguments are required" in err
    assert "Traceback" not in err


def _parseable(name: str) -> list[str]:
    """The shortest command line that parses: every required option and positional given the value "1"."""
    parser = app.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    argv = [name]
    for action in sub._actions:
        if action.required:
            count = action.nargs if isinstance(action.nargs, int) else 1
            argv += ([action.option_strings[0]] if action.option_strings else []) + ["1"] * count
    assert isinstance(app.build_parser().parse_args(argv), argparse.Namespace)
    return argv


FAILURES = [
    (InputError("eps must be > 0, got -1"), 2, "error: eps must be > 0, got -1"),
    (AcceptanceError("accepted 0 of 10000 proposals"), 1, "error: accepted 0 of 10000 proposals"),
    (OSError(28, "No space left on device"), 1, "error: [Errno 28] No space left on device"),
    (ZeroDivisionError("division by zero"), 1, "unexpected error: ZeroDivisionError: division by zero"),
    (KeyboardInterrupt(), 130, "interrupted; re-run the same command to resume"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("raised, code, message", FAILURES, ids=[type(f[0]).__name__ for f in FAILURES])
def test_how_a_run_ends_sets_the_exit_code(name, raised, code, message, monkeypatch, capsys):
    command = next(c for c in app.commands() if c.NAME == name)

    def fail(args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr(command, "run", fail)
    assert app.main(_parseable(name)) == code
    err = capsys.readouterr().err
    assert err == f"gan-postproc {name}: {message}" + err[len(f"gan-postproc {name}: {message}"):]
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("raised", [InputError("bad"), ZeroDivisionError("bug"), OSError(13, "Permission denied")])
def test_debug_re_raises_with_the_traceback(raised, monkeypatch):
    command = app.COMMANDS[0]

    def fail(args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr(command, "run", fail)
    with pytest.raises(type(raised)):
        app.main(["--debug", *_parseable(command.NAME)])


def test_library_errors_carry_their_exit_code():
    assert InputError.exit_code == 2 and AcceptanceError.exit_code == 1 and GanPostprocError.exit_code == 1
