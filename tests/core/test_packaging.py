"""Packaging: every package directory ships, every built-in plugin is an entry point."""

from __future__ import annotations

import ast
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ROOTS = {"gan_postproc": ROOT / "src" / "gan_postproc", "gan_postproc.plugins": ROOT / "plugins", "gan_postproc.integrations": ROOT / "integrations", "gan_postproc.benchmarks": ROOT / "benchmarks"}


def _package_dirs() -> set[str]:
    found = set()
    for package, base in ROOTS.items():
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            if package == "gan_postproc" and relative[:1] in (("plugins",), ("integrations",), ("benchmarks",)):
                continue
            found.add(".".join((package, *relative)))
    return found


def test_every_package_directory_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert _package_dirs() == listed


def _module(package: str, path: Path) -> str:
    parts = path.relative_to(ROOTS[package]).with_suffix("").parts
    return ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts))


def _implements_a_hook(path: Path) -> bool:
    """True when the module defines a function named like a hook (``def gan_postproc_...``) at its top level."""
    tree = ast.parse(path.read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name.startswith("gan_postproc_") for node in tree.body)


def test_every_builtin_plugin_module_has_an_entry_point():
    """Every module that implements a hook (methods, adapters, commands) is registered through the entry-point group."""
    declared = set(PYPROJECT["project"]["entry-points"]["gan_postproc"].values())
    modules = {
        _module(package, path)
        for package in ROOTS
        for path in ROOTS[package].rglob("*.py")
        if _implements_a_hook(path) and not (package == "gan_postproc" and path.name == "hookspecs.py")
    }
    assert modules == declared


def test_installed_entry_points_match_pyproject():
    installed = {ep.name: ep.value for ep in metadata.entry_points(group="gan_postproc") if ep.dist and ep.dist.name == "gan-postproc"}
    assert installed == PYPROJECT["project"]["entry-points"]["gan_postproc"], "re-run pip install -e . after editing entry points"


def test_every_shipped_benchmark_is_in_the_benchmarks_entry_point_group():
    """A module of benchmarks/ that defines ``NAME`` is a benchmark; `gan-postproc bench` finds it by its entry point."""
    declared = PYPROJECT["project"]["entry-points"]["gan_postproc.benchmarks"]
    names = {}
    for path in ROOTS["gan_postproc.benchmarks"].glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "NAME" for target in node.targets):
                names[ast.literal_eval(node.value)] = _module("gan_postproc.benchmarks", path)
    assert names == declared
