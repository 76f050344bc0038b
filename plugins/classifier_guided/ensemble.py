"""Plugin ``ensemble``: several generators behind one sampler, one generator per block of samples.

Slim, "Boosting Generative Networks for Incremental Learning" (2020), Sec. 5.1:
with a set ``G`` of generators, "we randomly select a generator from G for
each batch", with equal probabilities (the baseline) or given weights (the
"weighted" variant, ``w = (3/4, 1/4)`` for two generators).

How it fits a chain, which generates from a single adapter: the ensemble
generates the images itself, each with the generator chosen for it, and the
chain's adapter must be one of the members (it sets the device and value
range the chain checks). Refiners receive the chain's adapter, so only
image-space refiners (e.g. BIGRoC) are meaningful after an ensemble.

Which generator: global sample indices are cut into fixed blocks of
``block_size`` consecutive indices (block ``b`` holds ``b * block_size ..
(b + 1) * block_size - 1``), and block ``b`` draws its generator from the
weights with a uniform keyed by ``(seed, b)``. The choice therefore depends
on the index alone, not on the runtime batch size or on which process runs
it; a training loop whose batches are aligned blocks of ``block_size`` gets
one generator per batch, as in the paper, and ``block_size=1`` picks a
generator per sample.

Labels: if every member is conditional with the same classes, labels are
shared (requested, or drawn uniformly per index) and set on the batch. If any
member is unconditional, the batch has no labels; conditional members draw
their own labels, recorded in ``provenance["label"]`` (``-1`` for samples of
unconditional members). ``provenance["generator"]`` records the member index
of every sample. ``latents`` are kept when all members share a latent shape
(else ``None``); the members' own scores and provenance are not carried over,
so every batch has the same fields.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gan_postproc import hookimpl, rng
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, FloorFn
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.sampler import LatentSampler, PriorSampler, SampleRequest
from gan_postproc.plugins.classifier_guided.proposals import draw_categorical, propose_images
from gan_postproc.validation import check_count, check_weights

from .defaults import DEFAULTS

__all__ = ["Ensemble", "generator_choice"]


def generator_choice(seed: int, indices: torch.Tensor, weights: Sequence[float], block_size: int) -> torch.Tensor:
    """Member index ``[N]`` int64 of each global sample index: one draw from ``weights`` per block of indices."""
    blocks = torch.div(indices.cpu().to(torch.int64), block_size, rounding_mode="floor")
    u = rng.uniform(seed, blocks, (), "ensemble", dtype=torch.float64)
    return draw_categorical(u, torch.tensor(weights, dtype=torch.float64))


class Ensemble(LatentSampler):
    """Weighted multi-generator sampling (Slim 2020, Sec. 5.1).

    Args:
        generators: two or more adapters (any frameworks) whose samples share
            a value range and a shape. Build the chain with one of them, e.g.
            ``Chain(generators[0], sampler=Ensemble(generators))``.
        weights: probability of each generator, non-negative and summing to 1
            (default equal).
        samplers: optional inner sampler per generator (``None`` entries mean
            prior sampling), e.g. a ``classifier_filter`` for each.
        block_size: consecutive global indices that share one generator.

    Output batch: ``images`` from the chosen generators (on the chain
    adapter's device), ``labels`` (all members conditional) or
    ``provenance["label"]`` (mixed), ``provenance["generator"]`` (``[N]``
    int64 member index), ``latents`` when all latent shapes agree.
    """

    name = "ensemble"

    def __init__(
        self,
        generators: Sequence[Adapter],
        weights: Sequence[float] | None = None,
        *,
        samplers: Sequence[LatentSampler | None] | None = None,
        block_size: int = DEFAULTS.ensemble_block_size,
    ) -> None:
        super().__init__()
        generators = list(generators) if isinstance(generators, (list, tuple)) else generators
        if not isinstance(generators, list) or len(generators) < 2:
            raise InputError(f"ensemble needs a list of at least two generators (adapters), got {generators!r}")
        for position, member in enumerate(generators):
            if not isinstance(member, Adapter):
                raise InputTypeError(f"generators[{position}] must be a gan_postproc.Adapter (e.g. TorchAdapter(G)), got {type(member).__name__}")
        ranges = {member.value_range for member in generators}
        if len(ranges) > 1:
            raise InputError(f"all generators of an ensemble must produce samples in one value range, got {sorted(map(str, ranges))}")
        self.generators = generators
        count = len(generators)
        self.weights = [1.0 / count] * count if weights is None else check_weights(weights, "weights", length=count)
        samplers = [None] * count if samplers is None else list(samplers)
        if len(samplers) != count:
            raise InputError(f"samplers must hold one entry per generator ({count}), got {len(samplers)}")
        for position, sampler in enumerate(samplers):
            if sampler is not None and not isinstance(sampler, LatentSampler):
                raise InputTypeError(f"samplers[{position}] must be a gan_postproc.LatentSampler or None, got {type(sampler).__name__}")
        self.samplers = [PriorSampler() if sampler is None else sampler for sampler in samplers]
        self.block_size = check_count(block_size, "block_size")
        classes = {member.num_classes for member in generators}
        if None not in classes and len(classes) > 1:
            raise InputError(f"conditional generators of an ensemble must share their classes, got num_classes {sorted(classes)}")
        #: True when every member is conditional: labels are shared and set on the batch.
        self.shares_labels = None not in classes
        self._same_latents = len({member.prior.shape for member in generators}) == 1

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Check the chain's adapter is a member and the members' samples have one shape; set up inner samplers."""
        if not any(adapter is member for member in self.generators):
            raise InputError(
                "the chain's adapter must be one of the ensemble's generators (it sets the device and value range); "
                "build the chain as Chain(generators[0], sampler=Ensemble(generators, ...))"
            )
        probe = SampleRequest(indices=torch.zeros(1, dtype=torch.int64), seed=seed)
        shapes = []
        for member, sampler in zip(self.generators, self.samplers):
            sampler.setup(member, seed)
            with torch.no_grad():
                shapes.append(tuple(member.generate(probe.draw_latents(member), probe.draw_labels(member)).shape[1:]))
        if len(set(shapes)) > 1:
            raise InputError(f"the ensemble's generators produce samples of different shapes {shapes}; they must agree")

    def begin_run(self) -> None:
        for sampler in self.samplers:
            sampler.begin_run()

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        if request.labels is not None and not self.shares_labels:
            raise InputError("this ensemble mixes conditional and unconditional generators, so it cannot honour requested labels")
        if self.shares_labels:
            request = SampleRequest(
                indices=request.indices,
                seed=request.seed,
                labels=request.draw_labels(self.generators[0]).cpu(),
                latents=request.latents,
                attempt=request.attempt,
            )
        choice = generator_choice(request.seed, request.indices, self.weights, self.block_size)
        parts: list[SampleBatch] = []
        rows_in_order: list[torch.Tensor] = []
        for position, (member, sampler) in enumerate(zip(self.generators, self.samplers)):
            rows = torch.nonzero(choice == position)[:, 0]
            if len(rows) == 0:
                continue
            own = propose_images(sampler, member, request.subset(rows))
            provenance = {"generator": torch.full((len(rows),), position, dtype=torch.int64)}
            if not self.shares_labels:
                labels = own.labels.cpu() if own.labels is not None else torch.full((len(rows),), -1, dtype=torch.int64)
                provenance["label"] = labels
            parts.append(
                SampleBatch(
                    images=own.images.to(adapter.device),
                    latents=own.latents.to(adapter.device) if self._same_latents else None,
                    labels=own.labels.cpu() if self.shares_labels else None,
                    indices=request.indices[rows],
                    provenance=provenance,
                    value_range=adapter.value_range,
                )
            )
            rows_in_order.append(rows)
        merged = SampleBatch.cat(parts)
        batch = merged.select(torch.argsort(torch.cat(rows_in_order)))
        batch = batch.replace(labels=None if batch.labels is None else batch.labels.to(adapter.device))
        self.stats.record(torch.ones(len(batch), dtype=torch.bool), batch.labels)
        return batch

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "generators": [member.describe() for member in self.generators],
            "weights": self.weights,
            "samplers": [sampler.describe() for sampler in self.samplers],
            "block_size": self.block_size,
        }


def _ensemble_floor(generators: Sequence[Adapter]) -> FloorFn:
    """The passes an ensemble cannot avoid: each sample generated once by its generator."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        for position, member in enumerate(generators):
            count = int((batch.provenance["generator"] == position).sum())
            if count:
                request = SampleRequest(indices=torch.arange(count), seed=report.seed)
                with torch.no_grad():
                    member.generate(request.draw_latents(member), request.draw_labels(member))

    return floor


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [Ensemble]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup] | None:
    """The unconditional and the conditional digits GAN (drawing its own labels), equal weights."""
    if context.dataset != "digits" or context.conditional_adapter is None:
        return None
    generators = [context.adapter, context.conditional_adapter]
    return [
        BenchmarkSetup(
            name="ensemble",
            sampler=Ensemble(generators),
            floor=_ensemble_floor(generators),
            note=f"unconditional + conditional GAN, weights (1/2, 1/2), one generator per {DEFAULTS.ensemble_block_size} indices",
        )
    ]
