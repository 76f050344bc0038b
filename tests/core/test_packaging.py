"""Packaging: every package directory ships, every built-in plugin is an entry point."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def test_every_builtin_plugin_module_has_an_entry_point():
    declared = set(PYPROJECT["project"]["entry-points"]["gan_postproc"].values())
    modules = {
        f"{package}.{path.stem}"
        for package in ("gan_postproc.plugins", "gan_postproc.integrations")
        for path in ROOTS[package].glob("*.py")
        if path.stem != "__init__" and not path.stem.startswith("_")
    }
    assert modules == declared


def test_installed_entry_points_match_pyproject():
    installed = {ep.name: ep.value for ep in metadata.entry_points(group="gan_postproc") if ep.dist and ep.dist.name == "gan-postproc"}
    assert installed == PYPROJECT["project"]["entry-points"]["gan_postproc"], "re-run pip install -e . after editing entry points"
