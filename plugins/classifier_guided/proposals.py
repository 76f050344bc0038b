"""Helpers shared by the classifier-in-the-loop samplers (classifier_filter, class_balance, ensemble).

Not a plugin (the leading underscore keeps it out of the entry points): it
holds the three steps those samplers have in common, so none of them writes
them twice:

* :func:`resolve_classifier`: the explicit classifier, else the adapter's, checked
  against the generator's classes;
* :func:`proposal_request` / :func:`propose_images`: one proposal per index from
  any inner sampler (prior sampling by default, or e.g. truncation), keyed by
  sample index and round, with images generated if the inner sampler did not;
* :func:`classify`: class probabilities of chain-convention images.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_postproc.bench.setups import FloorFn
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.numerics import finite_rows
from gan_postproc.pipeline.sampler import LatentSampler, PriorSampler, SampleRequest
from gan_postproc.pipeline.scoring import Classifier, as_classifier
from gan_postproc.validation import check_model_output

__all__ = [
    "as_proposal",
    "resolve_classifier",
    "proposal_request",
    "propose_images",
    "classify",
    "draw_categorical",
    "classify_proposals_floor",
]


def as_proposal(proposal: LatentSampler | None, method: str) -> LatentSampler:
    """The inner sampler whose proposals a method filters or reweights (prior sampling if ``None``)."""
    if proposal is None:
        return PriorSampler()
    if not isinstance(proposal, LatentSampler):
        raise InputTypeError(
            f"{method}: proposal must be a gan_postproc.LatentSampler (e.g. a truncation sampler), got {type(proposal).__name__}"
        )
    return proposal


def resolve_classifier(explicit: nn.Module | Classifier | None, adapter: Adapter, method: str) -> Classifier:
    """The explicitly given classifier, else the adapter's; in eval mode, with the generator's class count.

    Raises:
        MissingModelError: neither was given.
        InputError: a conditional generator and the classifier disagree on the number of classes.
    """
    classifier = as_classifier(explicit, None) if explicit is not None else adapter.require_classifier(method)
    if adapter.num_classes is not None and classifier.num_classes != adapter.num_classes:
        raise InputError(
            f"{method}: the classifier has {classifier.num_classes} classes but the conditional generator has "
            f"{adapter.num_classes}; pass a classifier trained on the generator's classes"
        )
    return classifier.eval()


def proposal_request(request: SampleRequest, round: int, max_rounds: int) -> SampleRequest:
    """The request an inner sampler gets for proposal ``round`` of ``request``.

    Round ``r`` of attempt ``a`` asks for attempt ``a * max_rounds + r``, so
    every (attempt, round) pair draws fresh random numbers for each index and
    none collides with another (rounds stay below ``max_rounds``). Round 0 of
    attempt 0 is exactly what the inner sampler gives unfiltered, caller's
    latents included.
    """
    return SampleRequest(
        indices=request.indices,
        seed=request.seed,
        labels=request.labels,
        latents=request.latents if round == 0 else None,
        attempt=request.attempt * max_rounds + round,
    )


def propose_images(proposal: LatentSampler, adapter: Adapter, request: SampleRequest) -> SampleBatch:
    """The inner sampler's samples for ``request``, with ``images`` generated if it left them out."""
    batch = proposal.sample(adapter, request)
    if len(batch) != len(request):
        raise InputError(f"the proposal sampler {proposal.name!r} returned {len(batch)} samples for {len(request)} requested")
    if batch.images is None:
        with torch.no_grad():
            images = adapter.generate_finite(batch.latents, batch.labels)
        batch = batch.replace(images=images, value_range=adapter.value_range)
    elif not bool(finite_rows(batch.images).all()):
        raise InputError(f"the proposal sampler {proposal.name!r} returned samples with NaN/inf; check its generator")
    return batch


def _device(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters()) + list(module.buffers()):
        return tensor.device
    return torch.device("cpu")


def classify(classifier: Classifier, images: torch.Tensor) -> torch.Tensor:
    """``p(y | x)``: ``[N, K]`` float32 softmax probabilities of ``[N, ...]`` chain-convention images."""
    with torch.no_grad():
        logits = classifier(images.detach().to(_device(classifier)))
    check_model_output(logits, "the classifier")
    return torch.softmax(logits, dim=1).to(images.device)


def draw_categorical(u: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """Categories by inverse CDF: ``u`` ``[N]`` in (0, 1), ``probabilities`` ``[K]`` summing to 1 -> ``[N]`` int64."""
    cdf = torch.cumsum(probabilities.double(), 0)
    cdf = cdf / cdf[-1]
    return torch.searchsorted(cdf, u.double().to(cdf.device), right=True).clamp(max=len(probabilities) - 1).cpu()


def classify_proposals_floor(adapter: Adapter, classifier: Classifier) -> FloorFn:
    """The passes a classifier-in-the-loop sampler cannot avoid: generate and classify each of its proposals once."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        n = int(batch.provenance["proposals"].sum())  # this run's proposals (the rejection loop records them)
        request = SampleRequest(indices=torch.arange(n), seed=report.seed)
        with torch.no_grad():
            images = adapter.generate(request.draw_latents(adapter), request.draw_labels(adapter))
        classify(classifier, images)

    return floor
