"""Plugin ``mh``: Metropolis-Hastings GAN (Turner et al., ICML 2019).

Turner, Hung, Frank, Saatci, Yosinski, "Metropolis-Hastings Generative
Adversarial Networks", Sec. 3 and Algorithm 1. An independent
Metropolis-Hastings chain whose proposals are generator samples
``x' ~ p_g``; with ``D = p_data / (p_data + p_g)`` the acceptance
probability of moving from ``x`` to ``x'`` (Eq. 6) is

    alpha(x, x') = min(1, (1/D(x) - 1) / (1/D(x') - 1)) = min(1, r(x') / r(x)),

``r = D / (1 - D)`` the density ratio, so the chain's stationary distribution
is ``p_data`` when D is optimal. As in the paper and its reference code
(uber-research/metropolis-hastings-gans):

* D is calibrated with isotonic regression on real and generated samples it
  was not trained on (:class:`~gan_postproc.plugins.density_ratio.IsotonicCalibrator`;
  probabilities of exactly 0 and 1 are clamped so ratios stay finite);
* each chain runs ``K`` proposals (K = 640) and returns its final state;
* each chain starts at a real sample (so it starts in the target
  distribution and needs no burn-in, Sec. 3.2); a real sample is never
  returned: a chain that never moves away from it is run again from its
  first generated proposal.

Everything is computed with log ratios: ``accept if log u < log r(x') - log r(x)``.
Chain ``i`` draws its proposals and uniforms keyed by sample index ``i``, so
results do not depend on the batch size. The acceptance this sampler reports
is how often the chains moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gan_postproc import hookimpl, rng
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import AcceptanceError, InputError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest, SamplerStats
from gan_postproc.pipeline.scoring import Discriminator
from gan_postproc.plugins.density_ratio.ratio import (
    Calibration,
    DensityRatio,
    HeldProposals,
    RealData,
    benchmark_calibration,
    network_floor,
    scored_proposals,
)
from gan_postproc.validation import check_count, check_probability

from .defaults import DEFAULTS

__all__ = ["MetropolisHastingsSampler", "MHStats"]


@dataclass
class MHStats(SamplerStats):
    """Proposals and moves of the chains (``accepted`` counts moves), plus restarts.

    Attributes:
        restarts: chains that never left their real start and were run again
            from their first generated proposal.
    """

    restarts: int = 0

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "effective_acceptance": self.acceptance_rate, "restarts": self.restarts}


class MetropolisHastingsSampler(LatentSampler):
    """MH-GAN: the final state of an independent Metropolis-Hastings chain over K generator samples.

    Args:
        discriminator: a :class:`~gan_postproc.Discriminator` estimating
            ``p(real | x)``; ``None`` uses the adapter's.
        real_data: real samples (a tensor in chain convention, or a function
            ``(n, seed) -> samples``): the chains' starting points and, with
            ``calibration="isotonic"``, the real half of the calibration set.
            Use samples the discriminator was not trained on where you can.
        real_labels: ``[N]`` labels of a real-data tensor (for a conditional
            discriminator; chains then start at a real sample of their class).
        chain_length: proposals per chain, K (paper: 640).
        calibration: ``"isotonic"`` (paper) or ``None`` for a discriminator
            that is calibrated already.
        calibration_size: real and generated samples each scored in setup.
        allow_uncalibrated: run on a critic's raw score (warns).
        calibrate_critic_on: real data to calibrate a critic on in setup (a
            BCE fine-tuned copy; see :class:`~gan_postproc.plugins.density_ratio.DensityRatio`).
        min_acceptance_rate: stop with an error when the chains of a request
            moved in fewer than this fraction of their proposals (checked once
            ``DEFAULTS.rejection_min_proposals_for_check`` proposals were made).
    """

    name = "mh"

    def __init__(
        self,
        discriminator: Discriminator | None = None,
        *,
        real_data: RealData | None = None,
        real_labels: torch.Tensor | None = None,
        chain_length: int = DEFAULTS.mh_chain_length,
        calibration: Calibration = "isotonic",
        calibration_size: int = DEFAULTS.isotonic_calibration_size,
        allow_uncalibrated: bool = False,
        calibrate_critic_on: RealData | None = None,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__()
        if real_data is None:
            raise InputError(
                "mh starts every chain at a real sample and calibrates the discriminator on real samples; pass "
                "real_data= (a tensor of real samples in chain convention, a function (n, seed) -> samples, or on "
                "the command line --sampler-option real_data=package.module:function returning either)"
            )
        self.chain_length = check_count(chain_length, "chain_length")
        self.min_acceptance_rate = check_probability(min_acceptance_rate, "min_acceptance_rate", open_high=True)
        self.ratio = DensityRatio(
            self.name,
            discriminator,
            allow_uncalibrated=allow_uncalibrated,
            calibrate_critic_on=calibrate_critic_on,
            calibration=calibration,
            real_data=real_data,
            real_labels=real_labels,
            calibration_size=calibration_size,
        )
        self.stats: MHStats = MHStats()

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Check the discriminator, draw the real starting points and fit the calibration."""
        self.ratio.setup(adapter, seed)

    def _start(self, request: SampleRequest, labels: torch.Tensor | None) -> torch.Tensor:
        """Log ratio of each chain's real starting point, ``[n]`` float64 (a class match when labels are known)."""
        real_log_ratio = self.ratio.real_log_ratio
        real_labels = self.ratio.real_labels_drawn
        if real_log_ratio is None:
            raise InputError("mh: call setup(adapter, seed) before sampling (a Chain does it for you)")
        if labels is None or real_labels is None:
            pick = rng.randint(request.seed, request.indices, len(real_log_ratio), "mh_start", request.attempt)
            return real_log_ratio[pick]
        start = torch.empty(len(request), dtype=torch.float64)
        for label in labels.cpu().unique().tolist():
            rows = (labels.cpu() == label).nonzero()[:, 0]
            pool = (real_labels == label).nonzero()[:, 0]
            if len(pool) == 0:
                raise InputError(f"mh: no real sample of class {label} among the {len(real_labels)} drawn to start chains; pass more real data")
            pick = rng.randint(request.seed, request.indices[rows], len(pool), "mh_start", request.attempt)
            start[rows] = real_log_ratio[pool[pick]]
        return start

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        n, k_total = len(request), self.chain_length
        labels = request.draw_labels(adapter, "mh")
        start = self._start(request, labels)
        moves = torch.zeros(n, dtype=torch.int64)
        log_ratios = torch.empty(n, k_total, dtype=torch.float64)
        held: HeldProposals | None = None
        round_moves: list[torch.Tensor] = []
        for block in scored_proposals(adapter, request, self.ratio, k_total, "mh", labels):
            if held is None:  # the chain state is the real start; the first proposal is a placeholder for its sample
                held = HeldProposals.first_of(block)
                held.log_ratio, held.round = start, torch.full((n,), -1, dtype=torch.int64)
            for offset, k in enumerate(block.rounds):
                log_u = torch.log(request.uniform((), "mh_accept", k).double())
                move = log_u < block.log_ratio[offset] - held.log_ratio  # Eq. 6 in log form
                held.take(move, block, offset)
                moves += move.long()
                round_moves.append(move)
            log_ratios[:, block.rounds.start : block.rounds.stop] = block.log_ratio.T
        assert held is not None
        self.stats.record(torch.cat(round_moves), None if labels is None else labels.cpu().repeat(k_total))  # once per batch
        stuck = (held.round < 0).nonzero()[:, 0]
        restarted = torch.zeros(n, dtype=torch.int64)
        if len(stuck):
            moves[stuck] = self._restart(adapter, request, labels, stuck, log_ratios, held)
            restarted[stuck] = 1
            self.stats.restarts += len(stuck)
        self._check_collapse(moves, restarted, n)
        samples = held.samples
        batch = SampleBatch(
            images=samples,
            latents=held.latents,
            labels=labels,
            indices=request.indices,
            scores={"log_density_ratio": held.log_ratio.float().to(samples.device)},
            provenance={
                "proposals": torch.full((n,), k_total, dtype=torch.int64, device=samples.device),
                "chain_moves": moves.to(samples.device),
                "restarted": restarted.to(samples.device),
            },
            value_range=adapter.value_range,
        )
        return batch

    def _restart(
        self,
        adapter: Adapter,
        request: SampleRequest,
        labels: torch.Tensor | None,
        stuck: torch.Tensor,
        log_ratios: torch.Tensor,
        held: HeldProposals,
    ) -> torch.Tensor:
        """Re-run the chains that never left their real start from their first proposal (reference code).

        Replayed on the stored log ratios ``[n, K]`` with fresh uniforms; the
        latents of the final states are redrawn (keyed by index and round)
        and generated; ``held`` is updated in place.

        Returns:
            the replayed chains' move counts, ``[len(stuck)]``.
        """
        sub = request.subset(stuck)
        current = log_ratios[stuck, 0].clone()
        current_round = torch.zeros(len(stuck), dtype=torch.int64)
        replay_moves = torch.zeros(len(stuck), dtype=torch.int64)
        for k in range(1, self.chain_length):
            log_u = torch.log(sub.uniform((), "mh_restart", k).double())
            move = log_u < log_ratios[stuck, k] - current
            current = torch.where(move, log_ratios[stuck, k], current)
            current_round[move] = k
            replay_moves += move.long()
        device = held.latents.device
        latents = held.latents[stuck.to(device)]  # the first proposals, held as placeholders
        for k in current_round.unique().tolist():
            rows = (current_round == k).nonzero()[:, 0]
            if k > 0:
                latents[rows.to(device)] = sub.subset(rows).draw_latents(adapter, "mh", round=k)
        with torch.no_grad():
            samples = adapter.generate_finite(latents, None if labels is None else labels[stuck.to(labels.device)])
        held.latents[stuck.to(device)] = latents
        held.samples[stuck.to(held.samples.device)] = samples.to(held.samples.dtype)
        held.log_ratio[stuck] = current
        held.round[stuck] = current_round
        return replay_moves

    def _check_collapse(self, moves: torch.Tensor, restarted: torch.Tensor, n: int) -> None:
        """Stop with an error when the chains (restarted ones included) almost never moved."""
        proposals = n * self.chain_length
        moved = int(moves.sum())
        if proposals >= DEFAULTS.rejection_min_proposals_for_check and moved / proposals < self.min_acceptance_rate:
            raise AcceptanceError(
                f"mh: acceptance collapsed: the {n} chains moved {moved} times in {proposals} proposals "
                f"(rate {moved / proposals:.2e} < min_acceptance_rate {self.min_acceptance_rate:g}; "
                f"{int(restarted.sum())} chains never left their real start). The calibrated density ratios of "
                "generated samples are far below those of real ones: check the discriminator and its calibration, "
                "or lower min_acceptance_rate if such a rate is expected"
            )

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "chain_length": self.chain_length, **self.ratio.describe()}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [MetropolisHastingsSampler]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    calibrate, how = benchmark_calibration(context)
    k = DEFAULTS.mh_chain_length_quick if context.quick else DEFAULTS.mh_chain_length
    # The digits train split (what context.real_data draws from) holds 1347 images: use the smaller size there.
    size = DEFAULTS.isotonic_calibration_size_quick if context.quick or context.dataset == "digits" else DEFAULTS.isotonic_calibration_size
    sampler = MetropolisHastingsSampler(calibrate_critic_on=calibrate, real_data=context.real_data, chain_length=k, calibration_size=size)
    floor = network_floor(context.adapter, sampler.ratio)
    note = f"{how}; K={k}, isotonic calibration on {size} real + {size} generated samples (half held out)"
    return [BenchmarkSetup("mh", sampler, floor=floor, note=note)]
