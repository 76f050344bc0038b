"""The rejection loop shared by every rejection sampler.

A rejection sampler proposes one candidate per pending sample index and
accepts it with a probability it computes; rejected indices get a fresh
proposal in the next round. Every proposal and every acceptance draw for
sample ``i`` in round ``r`` is keyed by ``(seed, i, r)``, so the sample that
index ``i`` ends up with does not depend on the batch it ran in. A sampler
with cheap proposals may draw ``rounds_per_call`` rounds per pass
(:meth:`RejectionSampler.propose_rounds`), growing by ``round_growth`` each
pass (the pending indices shrink geometrically, so later passes stay small
while the number of passes stays low); each index then keeps its first
accepted round, as if the rounds had run one at a time. The rounds of each
pass depend only on the pass number, never on the batch.

The loop is bounded: it stops with :class:`~gan_postproc.errors.AcceptanceError`
when the acceptance rate collapses below ``min_acceptance_rate`` (checked once
enough proposals were made to tell) or after ``max_rounds`` rounds.
"""

from __future__ import annotations

import abc

import torch

from ..defaults import DEFAULTS
from ..errors import AcceptanceError, InputError
from ..validation import check_count, check_probability
from .adapter import Adapter
from .batch import SampleBatch
from .sampler import LatentSampler, SampleRequest

__all__ = ["RejectionSampler"]


class RejectionSampler(LatentSampler):
    """Base class of samplers that accept or reject proposals one at a time.

    Subclasses implement :meth:`propose`.

    Args:
        max_rounds: most proposals per sample before giving up.
        min_acceptance_rate: give up when the overall acceptance rate of a
            request falls below this after ``min_proposals_for_check`` proposals.
        rounds_per_call: proposal rounds drawn in the first call of :meth:`propose_rounds`
            (1: one round at a time). More rounds per call mean fewer passes of
            the loop for cheap proposals; the outcome for an index still does
            not depend on the batch it runs in.
        round_growth: each later call draws this many times the rounds of the
            call before (1: always ``rounds_per_call``).
    """

    def __init__(
        self,
        *,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
        rounds_per_call: int = 1,
        round_growth: int = 1,
    ) -> None:
        super().__init__()
        self.max_rounds = check_count(max_rounds, "max_rounds")
        self.min_acceptance_rate = check_probability(min_acceptance_rate, "min_acceptance_rate", open_high=True)
        self.rounds_per_call = check_count(rounds_per_call, "rounds_per_call")
        self.round_growth = check_count(round_growth, "round_growth")

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

    def propose_rounds(self, adapter: Adapter, request: SampleRequest, first_round: int, count: int) -> tuple[SampleBatch, torch.Tensor]:
        """Proposals of rounds ``first_round .. first_round + count - 1`` for every index, round-major.

        Rows ``k * n .. (k + 1) * n - 1`` of the batch and probabilities
        (``n = len(request)``) belong to round ``first_round + k``. The loop
        asks for ``rounds_per_call`` rounds at once; the default calls
        :meth:`propose` once per round. Samplers whose proposals are cheap
        next to the loop's per-round overhead (latent-space rejection)
        override this to draw all rounds in one pass.
        """
        parts = [self.propose(adapter, request, first_round + k) for k in range(count)]
        if count == 1:
            return parts[0]
        return SampleBatch.cat([batch for batch, _ in parts]), torch.cat([probability for _, probability in parts])

    def _uniforms(self, request: SampleRequest, first_round: int, count: int, device: torch.device) -> torch.Tensor:
        """``[count, n]`` acceptance draws keyed by sample index and round (by block when ``count > 1``), made on ``device``."""
        if count == 1:
            return request.uniform((), "accept", self.name, first_round, device=device)[None]
        return request.uniform((count,), "accept", self.name, "rounds", first_round, device=device).T

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        """The shared loop: each pending index gets ``rounds_per_call * round_growth**k`` proposals in
        call ``k`` and keeps its first accepted one (so the result is that of proposing one round at a time)."""
        n = len(request)
        pending = torch.arange(n)
        accepted_parts: list[SampleBatch] = []
        accepted_rows: list[torch.Tensor] = []
        proposals = torch.zeros(n, dtype=torch.int64)
        proposed = hits = 0
        first_round = 0
        rounds = self.rounds_per_call
        while len(pending):
            if first_round >= self.max_rounds:
                raise AcceptanceError(
                    f"{self.name}: {len(pending)} of {n} samples were still rejected after max_rounds={self.max_rounds} "
                    f"proposals each (overall acceptance {hits}/{proposed}); raise max_rounds or loosen the threshold"
                )
            count = min(rounds, self.max_rounds - first_round)
            sub = request.subset(pending)
            batch, probability = self.propose_rounds(adapter, sub, first_round, count)
            probability = self._check_probability(probability, count * len(sub)).view(count, len(sub))
            accept = (self._uniforms(sub, first_round, count, probability.device) < probability).cpu()  # the loop's one sync per pass
            hit = accept.any(0)
            first_hit = accept.int().argmax(0)  # the first accepted round of each index (0 if none)
            used = torch.where(hit, first_hit + 1, torch.full_like(first_hit, count))
            considered = torch.arange(count)[:, None] < used[None, :]  # proposals made before stopping
            classes = self.class_labels(batch)
            labels = None if classes is None else classes.cpu().view(count, len(sub))[considered]
            self.stats.record(accept[considered], labels)
            proposals[pending] += used
            proposed += int(used.sum())
            hits += int(hit.sum())
            if bool(hit.any()):
                rows = (first_hit * len(sub) + torch.arange(len(sub)))[hit]
                flat = probability.reshape(-1)
                accepted_parts.append(batch.select(rows).with_scores(acceptance_probability=flat[rows.to(flat.device)]))
                accepted_rows.append(pending[hit])
            pending = pending[~hit]
            first_round += count
            rounds *= self.round_growth
            if len(pending) and proposed >= DEFAULTS.rejection_min_proposals_for_check and hits / proposed < self.min_acceptance_rate:
                raise AcceptanceError(
                    f"{self.name}: acceptance collapsed: {hits} of {proposed} proposals accepted "
                    f"(rate {hits / proposed:.2e} < min_acceptance_rate {self.min_acceptance_rate:g}); "
                    f"{len(pending)} of {n} samples still pending. Check the discriminator or loosen the sampler's "
                    "threshold, or lower min_acceptance_rate if such a rate is expected"
                )
        merged = SampleBatch.cat(accepted_parts)
        order = torch.argsort(torch.cat(accepted_rows))
        result = merged.select(order.to(merged.device))
        return result.with_provenance(proposals=proposals.to(result.device))

    def _check_probability(self, probability: torch.Tensor, n: int) -> torch.Tensor:
        if probability.shape != (n,):
            raise InputError(f"{self.name}.propose must return [{n}] acceptance probabilities (one per proposal), got {tuple(probability.shape)}")
        probability = probability.detach().float()
        if not bool(torch.isfinite(probability).all()):
            raise AcceptanceError(f"{self.name}: acceptance probabilities contain NaN/inf; check the discriminator's outputs")
        return probability.clamp(0.0, 1.0)
