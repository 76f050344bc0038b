"""Every hook of gan-postproc, grouped by phase.

A plugin is a module (or any object) with functions decorated by
``@gan_postproc.hookimpl`` whose names are hook names below. Hooks are called
with keyword arguments only; an implementation may accept any subset of a
hook's arguments.

Registration hooks run once, when the registry is built. Run hooks run for
every chain run, in every batch, on the process that runs the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import torch

    from .bench.setups import BenchmarkContext, BenchmarkSetup
    from .cli.command import Command
    from .pipeline.adapter import Adapter
    from .pipeline.batch import SampleBatch
    from .pipeline.chain import Chain, RunReport
    from .pipeline.refiner import Refiner
    from .pipeline.sampler import LatentSampler, SampleRequest

PROJECT = "gan_postproc"

#: Marks a function as a hook specification (used only in this module).
hookspec = pluggy.HookspecMarker(PROJECT)
#: Marks a function as a hook implementation: ``@hookimpl def gan_postproc_...``.
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration: which methods and adapters exist -------------------------


@hookspec
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    """Return the latent sampler classes this plugin provides.

    Called once when the registry is built. Each class must subclass
    :class:`gan_postproc.LatentSampler` and carry a class attribute ``name``
    that is unique across all plugins. Results of all plugins are collected.
    """


@hookspec
def gan_postproc_register_refiners() -> list[type[Refiner]]:
    """Return the refiner classes this plugin provides.

    Called once when the registry is built. Each class must subclass
    :class:`gan_postproc.Refiner` and carry a unique class attribute ``name``.
    Results of all plugins are collected.
    """


@hookspec
def gan_postproc_register_adapters() -> list[type[Adapter]]:
    """Return the framework adapter classes this plugin provides.

    Called once when the registry is built. Each class must subclass
    :class:`gan_postproc.Adapter` and carry a unique class attribute ``name``.
    Results of all plugins are collected.
    """


@hookspec
def gan_postproc_register_commands() -> list[Command]:
    """Return the ``gan-postproc`` subcommands this plugin provides.

    Called once when the command line builds its parser. Each command is an
    object, usually a module, with ``NAME`` (the subcommand, e.g.
    ``"calibrate"``), ``HELP`` (one line), ``add_arguments(parser)`` (adds its
    options to an ``argparse.ArgumentParser``) and ``run(args) -> int`` (the
    exit code); see :class:`gan_postproc.cli.command.Command`. Names must be
    unique across all plugins and the core's own commands. Results of all
    plugins are collected.
    """


# --- run: around sampling and refinement ------------------------------------


@hookspec
def gan_postproc_run_start(chain: Chain, n: int, seed: int) -> None:
    """Called once when ``chain`` starts a run of ``n`` samples with ``seed``.

    Runs after the sampler's and refiners' ``setup``. Return value ignored.
    """


@hookspec
def gan_postproc_before_sample(chain: Chain, request: SampleRequest, batch_index: int) -> None:
    """Called before the sampler handles ``request`` (batch ``batch_index`` of the run).

    Observe only; return value ignored.
    """


@hookspec
def gan_postproc_after_sample(chain: Chain, sampler: LatentSampler, batch: SampleBatch, batch_index: int) -> None:
    """Called after ``sampler`` produced ``batch`` and the generator ran (``batch.images`` is set).

    Observe only; return value ignored.
    """


@hookspec
def gan_postproc_before_refine(chain: Chain, refiner: Refiner, batch: SampleBatch, batch_index: int) -> None:
    """Called before ``refiner`` refines ``batch``. Observe only; return value ignored."""


@hookspec
def gan_postproc_after_refine(
    chain: Chain, refiner: Refiner, before: SampleBatch, after: SampleBatch, batch_index: int
) -> None:
    """Called after ``refiner`` turned ``before`` into ``after``. Observe only; return value ignored."""


@hookspec
def gan_postproc_filter_batch(chain: Chain, batch: SampleBatch, batch_index: int) -> torch.Tensor | None:
    """Veto samples of a finished batch.

    Return a ``[N]`` bool tensor, True for samples to keep, or ``None`` to keep
    all. The masks of all plugins are combined with AND. The chain re-draws the
    rejected samples (fresh random numbers, same indices) and runs them through
    the sampler, refiners and this hook again, so a run always returns exactly
    the number of samples asked for; after ``filter_max_attempts`` attempts it
    raises an error.
    """


@hookspec
def gan_postproc_batch_done(chain: Chain, batch: SampleBatch, batch_index: int) -> None:
    """Called with each finished batch (after filtering), before it is returned or written.

    The place to log, save or measure every batch. Return value ignored.
    """


@hookspec
def gan_postproc_run_end(chain: Chain, report: RunReport) -> None:
    """Called once when a run finished, with its :class:`~gan_postproc.pipeline.chain.RunReport`."""


# --- measurement: the demo and the benchmarks ---------------------------------


@hookspec
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup] | None:
    """Return this plugin's rows for the demo or a benchmark suite.

    Called once per suite and dataset by ``gan-postproc demo`` and
    ``gan-postproc bench``, with the suite's shipped models and real data.
    Return the configurations of this plugin's methods that apply to what
    ``context`` holds (an empty list or ``None`` when none applies; a method
    that needs a model the context lacks simply contributes no row). Results
    of all plugins are collected; row names must be unique.
    """
