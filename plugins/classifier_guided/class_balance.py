"""Plugin ``class_balance``: class-balanced sampling with a classifier in the loop.

Rangwani, Mopuri & Babu, "Class Balancing GAN with a Classifier in the Loop"
(UAI 2021; supplement Sec. 1.4-1.5). A pretrained classifier labels generated
samples; the class distribution it sees is tracked as *effective class
counts* ``N_k``, updated every cycle as a convex combination

    N <- (1 - alpha) N + alpha n                              (running counts)

where ``n`` is the normalised histogram of the classifier's argmax over the
newest cycle's samples (here: one chain batch), and the under-represented
classes are favoured with weights proportional to ``1 / N_k``. The paper
trains a GAN with this signal; for a frozen generator it does two things:

* **conditional generator** (supplement Sec. 1.5.2: "we sample random labels
  with weight distribution proportional to 1/N_k"): each sample's label is
  drawn with ``P(y = k) = (1 / N_k) / sum_j (1 / N_j)``, where ``N`` tracks the
  classes the classifier sees in the generated samples. This corrects the
  class mix only partly: at the fixed point ``P(y = k) * n_k`` is constant
  over classes, so a label whose samples come out as its class at rate
  ``a_k`` ends near ``n_k ~ sqrt(a_k)`` instead of ``a_k``.
* **unconditional generator**: class-balanced acceptance. A proposal whose
  predicted class is ``k`` is accepted with probability
  ``pi_k / (M * N_k)``, ``M = max_k pi_k / N_k`` (capped at ``max_ratio``),
  which is rejection sampling from the generator's class distribution ``N``
  to the target ``pi`` (uniform by default): the accepted classes follow
  ``pi`` as far as the classifier can tell, with acceptance rate ``1 / M``.

What depends on batch order: the running counts ``N`` change after every
batch, so the label (conditional) or acceptance (unconditional) of index
``i`` depends on the batches that ran before it. The counts start from a
calibration pass in :meth:`ClassBalanceSampler.setup` (``calibration_samples``
generated at indices of their own stream) and are reset to it at the start
of every chain run (:meth:`ClassBalanceSampler.begin_run`), so the output is
deterministic for a fixed seed, batch size and order of requests.
``update_rate=0`` keeps the calibrated counts fixed, and then every sample
depends on its index alone, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import InputError
from gan_postproc.metrics.balance import class_histogram
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.batching import row_slices
from gan_postproc.pipeline.rejection import RejectionSampler
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugins.classifier_guided.proposals import (
    as_proposal,
    classify,
    classify_proposals_floor,
    draw_categorical,
    proposal_request,
    propose_images,
    resolve_classifier,
)
from gan_postproc.runs.synthetic import batch_labels
from gan_postproc.validation import check_count, check_positive, check_probability, check_weights

from .defaults import DEFAULTS

__all__ = ["ClassBalanceSampler"]

#: Calibration samples use global indices from here on, far from any run's indices.
_CALIBRATION_OFFSET = 1 << 62


class ClassBalanceSampler(RejectionSampler):
    """Class-balanced sampling from a frozen generator (CBGAN, Rangwani et al. 2021).

    Args:
        classifier: :class:`~gan_postproc.Classifier` (or a module with
            ``num_classes``) that labels generated samples; default: the adapter's.
        target: unconditional generators only: the class distribution to
            approach, ``K`` non-negative weights summing to 1 (default uniform).
        update_rate: ``alpha`` in ``[0, 1]``, the weight of the newest batch
            in the running counts (0 keeps the calibrated counts).
        calibration_samples: samples generated and classified in
            :meth:`setup` to initialise the counts.
        max_ratio: cap (>= 1) on the rejection constant ``M`` (unconditional:
            classes rarer than ``pi_k / max_ratio`` are then kept whenever
            proposed but stay under-represented) and on the label weights
            ``1 / N_k <= K * max_ratio`` (conditional).
        proposal: the sampler that proposes latents (default: prior sampling).
        max_rounds, min_acceptance_rate: bounds of the rejection loop.

    Attributes:
        counts: the current effective class distribution ``N`` (``[K]``
            float64, sums to 1), ``None`` before :meth:`setup`.

    Output batch: ``images``, ``latents``, ``labels`` (conditional) or
    ``provenance["pseudo_label"]`` (unconditional: the classifier's argmax),
    ``scores["classifier_probability"]`` (``p(y | x)`` of that label) and
    ``provenance["proposals"]``.
    """

    name = "class_balance"

    def __init__(
        self,
        classifier: nn.Module | Classifier | None = None,
        *,
        target: Sequence[float] | None = None,
        update_rate: float = DEFAULTS.class_balance_update_rate,
        calibration_samples: int = DEFAULTS.class_balance_calibration_samples,
        max_ratio: float = DEFAULTS.class_balance_max_ratio,
        proposal: LatentSampler | None = None,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__(max_rounds=max_rounds, min_acceptance_rate=min_acceptance_rate)
        self.target = None if target is None else check_weights(target, "target")
        self.update_rate = check_probability(update_rate, "update_rate")
        self.calibration_samples = check_count(calibration_samples, "calibration_samples")
        self.max_ratio = check_positive(max_ratio, "max_ratio")
        if self.max_ratio < 1:
            raise InputError(f"max_ratio must be >= 1 (it bounds the rejection constant M >= 1), got {self.max_ratio}")
        self.proposal = as_proposal(proposal, self.name)
        self._explicit_classifier = classifier
        self.classifier: Classifier | None = None
        self.counts: torch.Tensor | None = None
        self._calibrated: torch.Tensor | None = None
        self._conditional = False
        self._round_counts: torch.Tensor | None = None

    # --- setup and running counts --------------------------------------------

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Resolve the classifier and estimate the initial class counts from ``calibration_samples`` samples."""
        self.classifier = resolve_classifier(self._explicit_classifier, adapter, self.name)
        num_classes = self.classifier.num_classes
        if self.target is not None and len(self.target) != num_classes:
            raise InputError(f"target must hold {num_classes} weights (one per class of the classifier), got {len(self.target)}")
        if self.target is not None and adapter.conditional:
            raise InputError(
                "target is for unconditional generators; a conditional generator's labels are drawn "
                "with probability proportional to 1/N_k (or pass the labels you want to the chain)"
            )
        self._conditional = adapter.conditional
        self.proposal.setup(adapter, seed)
        predicted = []
        for rows in row_slices(self.calibration_samples):  # a batch at a time: memory set by the batch, not by calibration_samples
            indices = torch.arange(rows.start, rows.stop, dtype=torch.int64) + _CALIBRATION_OFFSET
            request = SampleRequest(indices=indices, seed=seed)
            if adapter.conditional:
                request = SampleRequest(indices=indices, seed=seed, labels=request.draw_labels(adapter, self.name).cpu())
            predicted.append(classify(self.classifier, propose_images(self.proposal, adapter, request).images).argmax(dim=1))
        self._calibrated = class_histogram(torch.cat(predicted), num_classes)
        self.begin_run()

    def begin_run(self) -> None:
        """Reset the running counts to the calibrated ones (called by the chain at the start of every run)."""
        self.counts = None if self._calibrated is None else self._calibrated.clone()
        self.proposal.begin_run()

    def _update(self, histogram: torch.Tensor) -> None:
        """``N <- (1 - alpha) N + alpha n`` (the CBGAN running convex combination)."""
        self.counts = (1.0 - self.update_rate) * self.counts + self.update_rate * histogram

    def label_probabilities(self) -> torch.Tensor:
        """Conditional: ``P(y = k)`` proportional to ``1 / N_k`` (``[K]`` float64, sums to 1).

        A class the classifier never saw (``N_k = 0``) would get infinite
        weight; ``N_k`` is floored at ``1 / (K * max_ratio)``, which bounds
        every weight ``1 / N_k`` by ``K * max_ratio``.
        """
        floor = 1.0 / (len(self.counts) * self.max_ratio)
        inverse = 1.0 / self.counts.clamp(min=floor)
        return inverse / inverse.sum()

    def acceptance_by_class(self) -> torch.Tensor:
        """Unconditional: acceptance probability ``pi_k / (M N_k)`` of a proposal of class ``k`` (``[K]`` float64)."""
        k = len(self.counts)
        target = torch.full((k,), 1.0 / k, dtype=torch.float64) if self.target is None else torch.tensor(self.target, dtype=torch.float64)
        unseen = torch.where(target > 0, torch.full_like(target, float("inf")), torch.zeros_like(target))
        ratio = torch.where(self.counts > 0, target / self.counts.clamp(min=1e-300), unseen)
        bound = min(float(ratio[target > 0].max()), self.max_ratio)
        return (ratio / bound).clamp(max=1.0)

    # --- sampling --------------------------------------------------------------

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        if self.counts is None:
            self.setup(adapter, request.seed)
        if self._conditional and request.labels is None:
            u = request.uniform((), self.name, "label")
            labels = draw_categorical(u, self.label_probabilities())
            request = SampleRequest(indices=request.indices, seed=request.seed, labels=labels, latents=request.latents, attempt=request.attempt)
        # Predicted classes of this batch's proposals (conditional: every proposal is kept).
        self._round_counts = torch.zeros(len(self.counts), dtype=torch.float64)
        batch = super().sample(adapter, request)
        self._update(self._round_counts / self._round_counts.sum())
        return batch

    def propose(self, adapter: Adapter, request: SampleRequest, round: int) -> tuple[SampleBatch, torch.Tensor]:
        batch = propose_images(self.proposal, adapter, proposal_request(request, round, self.max_rounds))
        probabilities = classify(self.classifier, batch.images)
        predicted = probabilities.argmax(dim=1)
        self._round_counts += torch.bincount(predicted.cpu(), minlength=len(self.counts)).double()
        if self._conditional:
            confidence = probabilities.gather(1, batch.labels.to(probabilities.device)[:, None])[:, 0]
            return batch.with_scores(classifier_probability=confidence), torch.ones(len(batch))
        batch = batch.with_scores(classifier_probability=probabilities.max(dim=1).values).with_provenance(pseudo_label=predicted)
        return batch, self.acceptance_by_class()[predicted.cpu()].float()

    def class_labels(self, batch: SampleBatch) -> torch.Tensor | None:
        return batch_labels(batch)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "target": self.target,
            "update_rate": self.update_rate,
            "calibration_samples": self.calibration_samples,
            "max_ratio": self.max_ratio,
            "proposal": self.proposal.describe(),
        }


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [ClassBalanceSampler]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup] | None:
    """``class_balance`` on the unconditional digits GAN, target uniform, with the digits classifier."""
    classifier = context.models.get("classifier")
    if context.dataset != "digits" or classifier is None:
        return None
    return [
        BenchmarkSetup(
            name="class_balance",
            sampler=ClassBalanceSampler(classifier),
            floor=classify_proposals_floor(context.adapter, classifier),
            note="CBGAN: class-balanced acceptance towards uniform predicted classes",
        )
    ]
