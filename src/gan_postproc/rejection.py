"""The rejection loop shared by every rejection sampler.

A rejection sampler proposes one candidate per pending sample index and
accepts it with a probability it computes; rejected indices get a fresh
proposal in the next round. Every proposal and every acceptance draw for
sample ``i`` in round ``r`` is keyed by ``(seed, i, r)``, so the sample that
index ``i`` ends up with does not depend on the batch it ran in.

The loop is bounded: it stops with :class:`~gan_postproc.errors.AcceptanceError`
when the acceptance rate collapses below ``min_acceptance_rate`` (checked once
enough proposals were made to tell) or after ``max_rounds`` rounds.
"""

from __future__ import annotations

import abc

import torch

from .adapter import Adapter
from .batch import SampleBatch
from .defaults import DEFAULTS
from .errors import AcceptanceError, InputError
from .sampler import LatentSampler, SampleRequest
from .validation import check_count, check_probability

__all__ = ["RejectionSampler"]


class RejectionSampler(LatentSampler):
    """Base class of samplers that accept or reject proposals one at a time.

    Subclasses implement :meth:`propose`.

    Args:
        max_rounds: most proposals per sample before giving up.
        min_acceptance_rate: give up when the overall acceptance rate of a
            request falls below this after ``min_proposals_for_check`` proposals.
    """

    def __init__(
        self,
        *,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__()
        self.max_rounds = check_count(max_rounds, "max_rounds")
        self.min_acceptance_rate = check_probability(min_acceptance_rate, "min_acceptance_rate", open_high=True)

    @abc.abstractmethod
    def propose(self, adapter: Adapter, request: SampleRequest, round: int) -> tuple[SampleBatch, torch.Tensor]:
        """One proposal per index of ``request`` and its acceptance probability.

        Use ``request.draw_latents(adapter, round=round)`` so proposals are
        keyed by sample index and round.

        Returns:
            ``(batch, probability)``: the proposals as a :class:`SampleBatch`
            (``len(request)`` rows, in order) and ``[n]`` acceptance
            probabilities in ``[0, 1]``.
        """

    def class_labels(self, batch: SampleBatch) -> torch.Tensor | None:
        """``[n]`` classes by which :attr:`stats` counts acceptances per class.

        The proposals' labels by default; samplers that assign pseudo labels
        to an unconditional generator's samples override this.
        """
        return batch.labels

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        n = len(request)
        pending = torch.arange(n)
        accepted_parts: list[SampleBatch] = []
        accepted_rows: list[torch.Tensor] = []
        proposals = torch.zeros(n, dtype=torch.int64)
        proposed = hits = 0
        for round in range(self.max_rounds):
            sub = request.subset(pending)
            batch, probability = self.propose(adapter, sub, round)
            probability = self._check_probability(probability, len(sub))
            u = sub.uniform((), "accept", self.name, round).to(probability.device)
            accept = (u < probability).cpu()
            classes = self.class_labels(batch)
            self.stats.record(accept, None if classes is None else classes.cpu())
            proposals[pending] += 1
            proposed += len(sub)
            hits += int(accept.sum())
            if bool(accept.any()):
                accepted_parts.append(batch.select(accept).with_scores(acceptance_probability=probability[accept.to(probability.device)]))
                accepted_rows.append(pending[accept])
            pending = pending[~accept]
            if len(pending) == 0:
                break
            if proposed >= DEFAULTS.rejection_min_proposals_for_check and hits / proposed < self.min_acceptance_rate:
                raise AcceptanceError(
                    f"{self.name}: acceptance collapsed: {hits} of {proposed} proposals accepted "
                    f"(rate {hits / proposed:.2e} < min_acceptance_rate {self.min_acceptance_rate:g}); "
                    f"{len(pending)} of {n} samples still pending. Check the discriminator or loosen the sampler's "
                    "threshold, or lower min_acceptance_rate if such a rate is expected"
                )
        else:
            raise AcceptanceError(
                f"{self.name}: {len(pending)} of {n} samples were still rejected after max_rounds={self.max_rounds} "
                f"proposals each (overall acceptance {hits}/{proposed}); raise max_rounds or loosen the threshold"
            )
        merged = SampleBatch.cat(accepted_parts)
        order = torch.argsort(torch.cat(accepted_rows))
        result = merged.select(order.to(merged.device))
        return result.with_provenance(proposals=proposals.to(result.device))

    def _check_probability(self, probability: torch.Tensor, n: int) -> torch.Tensor:
        if probability.shape != (n,):
            raise InputError(f"{self.name}.propose must return [{n}] acceptance probabilities, got {tuple(probability.shape)}")
        probability = probability.detach().float()
        if not bool(torch.isfinite(probability).all()):
            raise AcceptanceError(f"{self.name}: acceptance probabilities contain NaN/inf; check the discriminator's outputs")
        return probability.clamp(0.0, 1.0)
