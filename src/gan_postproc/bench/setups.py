"""What a plugin contributes to the demo and the benchmarks.

The demo and the ``bench`` suites build a :class:`BenchmarkContext` (the
shipped models and real data of one suite) and call the hook
``gan_postproc_benchmark_setups(context)``; each plugin returns the
configurations of its methods that apply, as :class:`BenchmarkSetup` rows.
No list of methods is written anywhere else, so a third-party plugin shows up
in the demo and the benchmarks by implementing the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..pipeline.adapter import Adapter
from ..pipeline.batch import SampleBatch
from ..pipeline.chain import RunReport
from ..pipeline.refiner import Refiner
from ..pipeline.sampler import LatentSampler

__all__ = ["BenchmarkContext", "BenchmarkSetup", "FloorFn", "collect_setups", "generator_floor"]

#: Runs, once, the network passes a method cannot avoid for ``batch``
#: (``report`` is the method's own run on that batch, e.g. to read how many
#: proposals it made). The ``overhead`` benchmark times it beside the method.
FloorFn = Callable[[SampleBatch, RunReport], None]


def generator_floor(adapter: Adapter) -> FloorFn:
    """The floor of a method whose unavoidable work is one generator pass over its returned latents (and labels)."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        with torch.no_grad():
            adapter.generate(batch.latents, batch.labels)  # type: ignore[arg-type]

    return floor


@dataclass(frozen=True)
class BenchmarkContext:
    """The models and data of one benchmark suite.

    Attributes:
        suite: ``"demo"`` (quick settings, digits), ``"digits"`` or ``"toy2d"``.
        dataset: ``"digits"``, ``"25gaussians"`` or ``"swissroll"``.
        adapter: the unconditional generator with its discriminator attached
            (digits: non-saturating GAN discriminator, output ``"logit"``;
            toy2d: the WGAN-GP critic, output ``"critic"``).
        conditional_adapter: the class-conditional generator, if the suite has one.
        real_data: ``(n, seed) -> [n, ...]`` real training samples in chain
            convention, for methods that fit on real data.
        models: further shipped models by name. Digits: ``"classifier"``
            (normally trained), ``"robust_classifier"`` (L2 adversarially
            trained), both :class:`~gan_postproc.pipeline.scoring.Classifier`. A plugin
            loads its own method-specific shipped assets (a shaped
            discriminator, an importance network) itself. The measuring
            feature network is deliberately NOT here: methods must not be
            guided by it.
        seed: the suite's seed.
        quick: True in the demo (which must finish in under 2 minutes on a CPU):
            use cheaper settings where a method allows.
    """

    suite: str
    dataset: str
    adapter: Adapter
    conditional_adapter: Adapter | None
    real_data: Callable[[int, int], torch.Tensor]
    models: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    quick: bool = False


@dataclass(frozen=True)
class BenchmarkSetup:
    """One row of a benchmark table: a sampler and refiners to run on a suite.

    Attributes:
        name: the row name: the plugin's method ``name`` (e.g. ``"drs"``),
            or a variant of it (e.g. ``"bigroc_gt"``, ``"dot_latent"``).
        sampler: the sampler (``None``: plain prior sampling).
        refiners: refiners applied after the sampler.
        conditional: run on ``context.conditional_adapter`` instead of ``context.adapter``.
        floor: the unavoidable network passes, for the ``overhead`` benchmark.
        note: one line shown beside the row (settings worth knowing).
    """

    name: str
    sampler: LatentSampler | None = None
    refiners: Sequence[Refiner] = ()
    conditional: bool = False
    floor: FloorFn | None = None
    note: str = ""


def collect_setups(context: BenchmarkContext, pm: Any) -> list[BenchmarkSetup]:
    """Every plugin's rows for ``context``, checked: right types and unique names.

    Raises:
        PluginError: naming the plugin, for a row of the wrong type or a
            duplicate row name.
    """
    from ..errors import PluginError

    rows: list[BenchmarkSetup] = []
    owner: dict[str, str] = {}
    for impl in pm.hook.gan_postproc_benchmark_setups.get_hookimpls():
        others = [plugin for plugin in pm.get_plugins() if plugin is not impl.plugin]
        results = pm.subset_hook_caller("gan_postproc_benchmark_setups", remove_plugins=others)(context=context)
        for setup in results[0] if results else []:
            if not isinstance(setup, BenchmarkSetup):
                raise PluginError(f"plugin {impl.plugin_name!r}, hook gan_postproc_benchmark_setups: expected BenchmarkSetup rows, got {type(setup).__name__}")
            if setup.name in owner:
                raise PluginError(f"benchmark row {setup.name!r} is contributed twice: by plugin {owner[setup.name]!r} and by plugin {impl.plugin_name!r}")
            owner[setup.name] = impl.plugin_name
            rows.append(setup)
    return sorted(rows, key=lambda row: row.name)
