"""The hook ``gan_postproc_register_commands``: plugin commands join the parser, mistakes name the plugin."""

from __future__ import annotations

import argparse
import types

import pytest

from gan_postproc import hookimpl
from gan_postproc.cli import app
from gan_postproc.cli.command import plugin_commands
from gan_postproc.errors import PluginError


def _command(name: str, **overrides: object) -> types.SimpleNamespace:
    fields = {"NAME": name, "HELP": f"the {name} command", "add_arguments": lambda parser: parser.add_argument("--x", type=int, default=1),
              "run": lambda args: args.x}
    return types.SimpleNamespace(**{**fields, **overrides})


def _plugin(*commands: object) -> object:
    class Plugin:
        @hookimpl
        def gan_postproc_register_commands(self):
            return list(commands)

    return Plugin()


def test_plugin_commands_are_parsed_and_run(bare_pm):
    bare_pm.register_plugin(_plugin(_command("hello")), "hello_plugin")
    assert [c.plugin for c in plugin_commands(bare_pm)] == ["hello_plugin"]
    parser = app.build_parser(bare_pm)
    args = parser.parse_args(["hello", "--x", "7"])
    assert args.handler(args) == 7
    assert [c.NAME for c in app.commands(bare_pm)] == [c.NAME for c in app.COMMANDS] + ["hello"]


def test_without_plugins_only_the_core_commands_exist(bare_pm):
    names = [c.NAME for c in app.commands(bare_pm)]
    assert names == ["demo", "plugins", "sample", "refine", "bench"]
    with pytest.raises(SystemExit):
        app.build_parser(bare_pm).parse_args(["calibrate"])


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ([("a", [_command("twice")]), ("b", [_command("twice")])], r"command 'twice' is registered twice: by plugin 'a' and by plugin 'b'"),
        ([("a", [_command("sample")])], r"plugin 'a' registers the command 'sample', which gan-postproc itself has"),
        ([("a", [_command("nameless", NAME="")])], r"plugin 'a'.*lacks NAME"),
        ([("a", [_command("norun", run=None)])], r"plugin 'a'.*lacks run"),
        ([("a", [_command("nohelp", HELP=None), ])], r"plugin 'a'.*lacks HELP"),
    ],
)
def test_bad_commands_name_the_plugin(bare_pm, plugins, message):
    for name, commands in plugins:
        bare_pm.register_plugin(_plugin(*commands), name)
    with pytest.raises(PluginError, match=message):
        app.commands(bare_pm)


def test_a_hook_that_returns_no_list_or_raises_is_named(bare_pm):
    class NotAList:
        @hookimpl
        def gan_postproc_register_commands(self):
            return _command("single")

    class Raises:
        @hookimpl
        def gan_postproc_register_commands(self):
            raise RuntimeError("boom")

    bare_pm.register_plugin(NotAList(), "not_a_list")
    with pytest.raises(PluginError, match=r"plugin 'not_a_list'.*expected a list of commands, got SimpleNamespace"):
        plugin_commands(bare_pm)
    bare_pm.unregister(name="not_a_list")
    bare_pm.register_plugin(Raises(), "raises")
    with pytest.raises(PluginError, match=r"plugin 'raises' raised in gan_postproc_register_commands: RuntimeError: boom"):
        plugin_commands(bare_pm)


def test_a_broken_plugin_command_is_one_line_at_the_command_line(monkeypatch, capsys, bare_pm):
    bare_pm.register_plugin(_plugin(_command("sample")), "clash")
    monkeypatch.setattr(app, "get_plugin_manager", lambda: bare_pm)
    assert app.main(["demo"]) == 1  # a PluginError: the plugin is broken, not the user's input
    err = capsys.readouterr().err
    assert err.startswith("gan-postproc: error: plugin 'clash' registers the command 'sample'") and err.count("\n") == 1


def test_the_families_commands_come_through_the_hook():
    owners = {command.NAME: plugin for command, plugin in plugin_commands(app.get_plugin_manager())}
    assert owners == {
        "calibrate": "density_ratio_commands",
        "shape-discriminator": "collaborative_commands",
        "train-importance": "latent_reweighting_commands",
        "train-robust-classifier": "bigroc_commands",
        "train-dg": "diffusers_train_dg",  # the diffusers integration's: it reads a diffusers pipeline
    }
    assert isinstance(app.build_parser(), argparse.ArgumentParser)
