"""Exceptions raised by gan-postproc.

Every error a user can cause derives from :class:`GanPostprocError`, so a
caller can catch the library's errors without catching its own bugs. Input
errors also derive from ``ValueError`` (or ``TypeError``) so code written
against plain PyTorch conventions keeps working.

Messages follow one pattern: what was expected, what came, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "GanPostprocError",
    "InputError",
    "InputTypeError",
    "MissingModelError",
    "AcceptanceError",
    "UncalibratedDiscriminatorError",
    "PluginError",
    "PluginLoadError",
    "HookError",
    "CheckpointError",
    "UnsafeCheckpointError",
    "OptionalDependencyError",
]


class GanPostprocError(Exception):
    """Base class of every error raised on purpose by gan-postproc.

    ``exit_code`` is what the CLI exits with: 2 for bad usage (the caller can
    fix the input), 1 for a failure of the run.
    """

    exit_code = 1


class InputError(GanPostprocError, ValueError):
    """A value given to a public function is outside what it accepts."""

    exit_code = 2


class InputTypeError(GanPostprocError, TypeError):
    """A value given to a public function has the wrong type."""

    exit_code = 2


class MissingModelError(GanPostprocError, ValueError):
    """A method needs a discriminator or classifier that nobody provided."""

    exit_code = 2


class AcceptanceError(GanPostprocError, RuntimeError):
    """A sampler accepted too few proposals to finish within its bound."""


class UncalibratedDiscriminatorError(GanPostprocError, ValueError):
    """A density-ratio method was given a critic that does not estimate p(real | x)."""

    exit_code = 2


class PluginError(GanPostprocError, RuntimeError):
    """A plugin broke a rule of the hook system (bad hook, bad class, duplicate name)."""


class PluginLoadError(PluginError):
    """A plugin module could not be imported. Carries the plugin name and the cause."""

    def __init__(self, plugin: str, cause: BaseException) -> None:
        self.plugin = plugin
        self.cause = cause
        super().__init__(
            f"plugin {plugin!r} failed to import: {type(cause).__name__}: {cause}. "
            f"The other plugins were loaded; fix or uninstall {plugin!r}, or block it with "
            f"GAN_POSTPROC_BLOCK_PLUGINS={plugin}."
        )


class HookError(PluginError):
    """A hook implementation raised while a run was in progress."""


class CheckpointError(GanPostprocError, ValueError):
    """A checkpoint file is missing, unreadable, or does not match the model."""

    exit_code = 2


class UnsafeCheckpointError(CheckpointError):
    """Loading a checkpoint would execute code and the caller did not opt in."""


class OptionalDependencyError(GanPostprocError, ImportError):
    """An optional dependency needed by a feature is not installed.

    The message names the command that installs it: the extra of
    gan-postproc that pulls it in, or ``install`` for packages that no extra
    can carry (such as torch-mimicry, which must be installed ``--no-deps``).
    """

    exit_code = 2

    def __init__(self, package: str, extra: str | None, feature: str, *, install: str | None = None) -> None:
        self.package = package
        self.extra = extra
        self.install = install if install is not None else f"pip install 'gan-postproc[{extra}]'"
        super().__init__(f"{feature} needs the package {package!r}, which is not installed. Install it with: {self.install}")
