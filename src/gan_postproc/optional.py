"""Optional dependencies, checked in one place.

Framework integrations import their framework only when it is used, through
:func:`require`, so every integration plugin registers (and ``gan-postproc
plugins`` lists it) whether or not its framework is installed. A missing
package gives an :class:`~gan_postproc.errors.OptionalDependencyError` that
names the command installing it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from .errors import OptionalDependencyError

__all__ = ["OptionalPackage", "OPTIONAL_PACKAGES", "is_available", "require", "require_installed"]


@dataclass(frozen=True)
class OptionalPackage:
    """An optional dependency.

    Attributes:
        module: the top-level import name.
        distribution: the name pip installs it under.
        install: the command that installs it next to gan-postproc.
    """

    module: str
    distribution: str
    install: str


#: Every optional dependency of the integrations, by import name.
OPTIONAL_PACKAGES: dict[str, OptionalPackage] = {
    package.module: package
    for package in (
        OptionalPackage("diffusers", "diffusers", "pip install 'gan-postproc[diffusers]'"),
        OptionalPackage("pytorch_pretrained_biggan", "pytorch-pretrained-biggan", "pip install 'gan-postproc[biggan]'"),
        # A plain install of torch-mimicry replaces torch with a CUDA build and pulls tensorflow.
        OptionalPackage("torch_mimicry", "torch-mimicry", "pip install --no-deps torch-mimicry"),
    )
}


def _package(module: str) -> OptionalPackage:
    if module not in OPTIONAL_PACKAGES:
        raise KeyError(f"{module!r} is not a registered optional dependency; add it to OPTIONAL_PACKAGES")
    return OPTIONAL_PACKAGES[module]


def is_available(module: str) -> bool:
    """Whether the optional package ``module`` is installed (found without importing it)."""
    _package(module)
    return importlib.util.find_spec(module) is not None


def require_installed(module: str, feature: str) -> OptionalPackage:
    """Raise :class:`OptionalDependencyError` unless ``module`` is installed; does not import it.

    For packages whose ``__init__`` must not run (torch-mimicry on torch 2).
    """
    package = _package(module)
    if importlib.util.find_spec(module) is None:
        raise OptionalDependencyError(package.distribution, None, feature, install=package.install)
    return package


def require(module: str, feature: str) -> ModuleType:
    """Import the optional package ``module`` (or a submodule, ``"diffusers.callbacks"``) for ``feature``.

    Raises:
        OptionalDependencyError: naming the install command, if the package is missing.
    """
    require_installed(module.partition(".")[0], feature)
    return importlib.import_module(module)
