"""Plugin ``classifier_filter``: keep only samples a classifier recognises confidently.

Slim, "Boosting Generative Networks for Incremental Learning" (2020), Sec. 3.1,
"Sample filtering" (after Pham et al. 2019): a classifier ``C`` trained on the
real data keeps a generated sample ``x`` with label ``y`` when

    argmax_k C_k(x) = y                      (the classifier agrees with the label)
    C_y(x) >= p_t                            (and is confident, p_t = 0.9 in the paper)

and every rejected sample is replaced by a fresh proposal for the same index
(the shared rejection loop), so a run returns exactly the number of samples
asked for. For an unconditional generator ``y`` is the pseudo label
``argmax_k C_k(x)``, so the rule reduces to ``max_k C_k(x) >= p_t``.

The proposals come from any inner sampler (prior sampling by default; e.g. a
truncation sampler for the paper's "filtering + truncated normal" setting).
A conditional sample keeps its label through all rounds (drawn once per index
when the caller gave none), so the filter changes which images a class gets,
not how many samples each class gets.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.rejection import RejectionSampler
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugins.classifier_guided.proposals import (
    as_proposal,
    classify,
    classify_proposals_floor,
    proposal_request,
    propose_images,
    resolve_classifier,
)
from gan_postproc.runs.synthetic import batch_labels
from gan_postproc.validation import check_probability

from .defaults import DEFAULTS

__all__ = ["ClassifierFilter", "passes_filter"]


def passes_filter(probabilities: torch.Tensor, labels: torch.Tensor | None, threshold: float) -> torch.Tensor:
    """The filter rule of Slim (2020), Sec. 3.1, for ``[N, K]`` class probabilities.

    Args:
        probabilities: ``p(k | x)``, ``[N, K]``, rows summing to 1.
        labels: ``[N]`` int64 labels, or ``None`` to use the pseudo label ``argmax_k p(k | x)``.
        threshold: ``p_t`` in ``[0, 1]``.

    Returns:
        ``[N]`` bool: ``argmax_k p(k | x) == y`` and ``p(y | x) >= p_t``.
    """
    predicted = probabilities.argmax(dim=1)
    y = predicted if labels is None else labels.to(probabilities.device)
    confidence = probabilities.gather(1, y[:, None])[:, 0]
    return (predicted == y) & (confidence >= threshold)


class ClassifierFilter(RejectionSampler):
    """Classifier-based sample filtering (Slim 2020, Sec. 3.1; Pham et al. 2019).

    Args:
        classifier: a :class:`~gan_postproc.Classifier` (or a module with a
            ``num_classes`` attribute) trained on the real data; default: the
            adapter's classifier. For a conditional generator it must have the
            generator's classes.
        threshold: ``p_t``, the least probability ``p(y | x)`` a kept sample
            has, in ``[0, 1]`` (default 0.9, the paper's value). With ``p_t``
            below 0.5 the argmax condition also matters.
        proposal: the sampler whose samples are filtered (default: prior sampling).
        max_rounds, min_acceptance_rate: bounds of the rejection loop
            (:class:`~gan_postproc.RejectionSampler`).

    Output batch: ``images`` ``[N, ...]`` in the adapter's value range (every
    one passes the rule), ``latents``, ``labels`` (``None`` for an
    unconditional generator), ``scores["classifier_probability"]`` =
    ``p(y | x)``, ``provenance["proposals"]`` and, for an unconditional
    generator, ``provenance["pseudo_label"]`` (``[N]`` int64, the classifier's
    argmax). ``stats`` counts acceptances per class (per pseudo label when
    unconditional).
    """

    name = "classifier_filter"

    def __init__(
        self,
        classifier: nn.Module | Classifier | None = None,
        *,
        threshold: float = DEFAULTS.classifier_filter_threshold,
        proposal: LatentSampler | None = None,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__(max_rounds=max_rounds, min_acceptance_rate=min_acceptance_rate)
        self.threshold = check_probability(threshold, "threshold (p_t)")
        self.proposal = as_proposal(proposal, self.name)
        self._explicit_classifier = classifier
        self.classifier: Classifier | None = None

    def setup(self, adapter: Adapter, seed: int) -> None:
        self.classifier = resolve_classifier(self._explicit_classifier, adapter, self.name)
        self.proposal.setup(adapter, seed)

    def begin_run(self) -> None:
        self.proposal.begin_run()

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        if self.classifier is None:
            self.setup(adapter, request.seed)
        if request.labels is None and adapter.conditional:
            # One label per index for all rounds: the filter must not skew the class mix.
            request = SampleRequest(
                indices=request.indices,
                seed=request.seed,
                labels=request.draw_labels(adapter).cpu(),
                latents=request.latents,
                attempt=request.attempt,
            )
        return super().sample(adapter, request)

    def propose(self, adapter: Adapter, request: SampleRequest, round: int) -> tuple[SampleBatch, torch.Tensor]:
        batch = propose_images(self.proposal, adapter, proposal_request(request, round, self.max_rounds))
        probabilities = classify(self.classifier, batch.images)
        predicted = probabilities.argmax(dim=1)
        labels = predicted if batch.labels is None else batch.labels.to(probabilities.device)
        keep = passes_filter(probabilities, batch.labels, self.threshold)
        batch = batch.with_scores(classifier_probability=probabilities.gather(1, labels[:, None])[:, 0])
        if batch.labels is None:
            batch = batch.with_provenance(pseudo_label=predicted)
        return batch, keep.float()

    def class_labels(self, batch: SampleBatch) -> torch.Tensor | None:
        return batch_labels(batch)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "threshold": self.threshold, "proposal": self.proposal.describe()}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [ClassifierFilter]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup] | None:
    """``classifier_filter`` on the conditional digits GAN with the normally trained digits classifier."""
    classifier = context.models.get("classifier")
    if context.dataset != "digits" or context.conditional_adapter is None or classifier is None:
        return None
    return [
        BenchmarkSetup(
            name="classifier_filter",
            sampler=ClassifierFilter(classifier),
            conditional=True,
            floor=classify_proposals_floor(context.conditional_adapter, classifier),
            note=f"Slim 2020 filter: argmax C(x) == y and C_y(x) >= {DEFAULTS.classifier_filter_threshold}",
        )
    ]
