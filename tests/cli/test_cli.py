"""The command line: plugin listing, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gan_postproc.cli import main
from gan_postproc.cli.command import plugin_commands
from gan_postproc.plugin_system.registry import get_registry

from ..core.test_packaging import PYPROJECT


def test_plugins_json_lists_every_builtin_plugin(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(set(row) >= {"name", "kind", "plugin", "version"} for row in rows)
    assert all(row["kind"] in {"sampler", "refiner", "adapter", "command"} for row in rows)
    builtin_plugins = set(PYPROJECT["project"]["entry-points"]["gan_postproc"])
    assert builtin_plugins <= {row["plugin"] for row in rows}
    assert {"prior", "torch"} <= {row["name"] for row in rows}


def test_plugins_table(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["NAME", "KIND", "PLUGIN", "VERSION"]
    assert any(line.startswith("prior ") for line in out.splitlines())


def test_bad_usage_exits_2():
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2


def _run_cli_with_failing_command(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter whose `plugins` command raises a user error."""
    code = (
        "import sys; from gan_postproc.cli import app; from gan_postproc.errors import InputError\n"
        "def fail(args): raise InputError('eps must be > 0, got -1')\n"
        "import gan_postproc.cli.plugins_command as command; command.run = fail\n"
        "sys.exit(app.main(sys.argv[1:]))"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_user_errors_print_one_line_and_exit_2():
    done = _run_cli_with_failing_command("plugins")
    assert done.returncode == 2
    assert done.stderr.strip() == "gan-postproc plugins: error: eps must be > 0, got -1"


def test_debug_shows_the_traceback():
    done = _run_cli_with_failing_command("--debug", "plugins")
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "InputError: eps must be > 0" in done.stderr


def test_console_script_is_installed():
    done = subprocess.run(["gan-postproc", "plugins", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    commands = {command.NAME for command, _ in plugin_commands(get_registry().plugin_manager)}
    assert {row["name"] for row in json.loads(done.stdout)} == {i.name for i in get_registry().infos()} | commands


def test_bench_lists_benchmarks_and_refuses_unknown_names(capsys):
    from gan_postproc.cli import bench_command

    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert set(bench_command.available()) <= set(listed)
    assert main(["bench", "no_such_benchmark"]) == 2
    assert "no benchmark named 'no_such_benchmark'" in capsys.readouterr().err
