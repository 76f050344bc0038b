"""Plugin ``sir``: sampling-importance-resampling with discriminator density ratios.

Grover, Song, Kapoor, Tran, Agarwal, Horvitz, Ermon, "Bias Correction of
Learned Generative Models using Likelihood-Free Importance Weighting"
(NeurIPS 2019), Sec. 3, following Rubin's SIR algorithm (1988); Eq. 3 of the
latent-reweighting paper (Issenhuth et al.): draw a pool ``x_1..x_M ~ p_g``,
weight each by the estimated density ratio

    w(x) = D(x) / (1 - D(x)) = exp(logit D(x)),

and return ``x_j`` with probability ``w(x_j) / sum_m w(x_m)`` (self-normalised
weights). As ``M`` grows the returned samples approach ``p_data``; for a
finite pool they follow an approximation of it. Grover et al. also flatten
the weights, ``w**alpha`` with ``0 <= alpha <= 1``, and clip them, trading
bias for variance; both are options here (``alpha=1``, no clipping by default).

Each returned sample has its own pool, keyed by its sample index, so
results do not depend on the batch size. The pick uses the Gumbel-max trick
(``argmax_m log w_m + g_m`` with Gumbel noise ``g``), which samples exactly
from the self-normalised weights while only the best proposal so far is
kept in memory. The reported effective acceptance is the mean effective
sample size of the pools, ``(sum w)^2 / sum w^2``, divided by ``M``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import InputError
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
from gan_postproc.validation import check_count, check_positive

from .defaults import DEFAULTS

__all__ = ["SamplingImportanceResampling", "SIRStats", "effective_sample_size"]


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of each row of ``[n, M]`` log weights, ``[n]`` in ``[1, M]``."""
    return torch.exp(2 * torch.logsumexp(log_weights, dim=1) - torch.logsumexp(2 * log_weights, dim=1))


@dataclass
class SIRStats(SamplerStats):
    """Proposals and picks (one per pool), plus the pools' effective sample sizes.

    Attributes:
        pools: pools resampled so far.
        effective_sample_size_sum: sum of their effective sample sizes.
        pool_size: M.
    """

    pools: int = 0
    effective_sample_size_sum: float = 0.0
    pool_size: int = 1

    @property
    def effective_acceptance(self) -> float:
        """Mean effective sample size over M (1.0: equal weights; 1/M: one proposal takes all)."""
        return self.effective_sample_size_sum / (self.pools * self.pool_size) if self.pools else 1.0

    def as_dict(self) -> dict[str, object]:
        mean_ess = self.effective_sample_size_sum / self.pools if self.pools else float(self.pool_size)
        return {**super().as_dict(), "effective_acceptance": self.effective_acceptance, "mean_effective_sample_size": mean_ess}


class SamplingImportanceResampling(LatentSampler):
    """SIR: resample one of M generated samples with probability proportional to its density ratio.

    Args:
        discriminator: a :class:`~gan_postproc.Discriminator` estimating
            ``p(real | x)``; ``None`` uses the adapter's.
        pool_size: proposals per returned sample, M.
        alpha: flattening exponent: weights ``w**alpha`` (1: plain ratios; 0: uniform).
        clip: largest weight (after flattening), or ``None`` for no clipping.
        allow_uncalibrated: run on a critic's raw score (warns).
        calibrate_critic_on: real data to calibrate a critic on in setup (a
            BCE fine-tuned copy; see :class:`~gan_postproc.plugins.density_ratio.DensityRatio`).
        calibration: ``"isotonic"`` to calibrate the logit on ``real_data`` first.
        real_data, real_labels: real samples for the isotonic calibration.
    """

    name = "sir"

    def __init__(
        self,
        discriminator: Discriminator | None = None,
        *,
        pool_size: int = DEFAULTS.sir_pool_size,
        alpha: float = DEFAULTS.sir_alpha,
        clip: float | None = None,
        allow_uncalibrated: bool = False,
        calibrate_critic_on: RealData | None = None,
        calibration: Calibration = None,
        real_data: RealData | None = None,
        real_labels: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.pool_size = check_count(pool_size, "pool_size", minimum=2)
        self.alpha = check_positive(alpha, "alpha", allow_zero=True)
        if clip is not None:
            clip = check_positive(clip, "clip")
        self.clip = clip
        self.ratio = DensityRatio(
            self.name,
            discriminator,
            allow_uncalibrated=allow_uncalibrated,
            calibrate_critic_on=calibrate_critic_on,
            calibration=calibration,
            real_data=real_data,
            real_labels=real_labels,
        )
        self.stats: SIRStats = SIRStats(pool_size=self.pool_size)

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Check the discriminator (and fit the calibration, if asked)."""
        self.ratio.setup(adapter, seed)

    def log_weights(self, log_ratio: torch.Tensor) -> torch.Tensor:
        """Flattened, clipped log importance weights ``min(alpha * log r, log clip)``, float64."""
        log_w = self.alpha * log_ratio
        return log_w if self.clip is None else log_w.clamp(max=math.log(self.clip))

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        if self.ratio.discriminator is None:
            raise InputError("sir: call setup(adapter, seed) before sampling (a Chain does it for you)")
        n, m = len(request), self.pool_size
        labels = request.draw_labels(adapter, "sir")
        log_w = torch.empty(n, m, dtype=torch.float64)
        best = torch.full((n,), -math.inf, dtype=torch.float64)
        held: HeldProposals | None = None
        for block in scored_proposals(adapter, request, self.ratio, m, "sir", labels):
            held = held if held is not None else HeldProposals.first_of(block)
            for offset, k in enumerate(block.rounds):
                log_w[:, k] = self.log_weights(block.log_ratio[offset])
                u = request.uniform((), "sir_gumbel", k).double()
                key = log_w[:, k] - torch.log(-torch.log(u))  # Gumbel-max: argmax_k key ~ softmax(log_w)
                better = key > best
                best = torch.where(better, key, best)
                held.take(better, block, offset)
        assert held is not None
        pick = held.round
        ess = effective_sample_size(log_w)
        chosen = torch.zeros(n, m, dtype=torch.bool)
        chosen[torch.arange(n), pick] = True
        self.stats.record(chosen.flatten(), None if labels is None else labels.cpu().repeat_interleave(m))
        self.stats.pools += n
        self.stats.effective_sample_size_sum += float(ess.sum())
        weight = torch.softmax(log_w, dim=1)[torch.arange(n), pick]
        device = held.samples.device
        return SampleBatch(
            images=held.samples,
            latents=held.latents,
            labels=labels,
            indices=request.indices,
            scores={
                "log_density_ratio": held.log_ratio.float().to(device),
                "importance_weight": weight.float().to(device),
                "effective_sample_size": ess.float().to(device),
            },
            provenance={"proposals": torch.full((n,), m, dtype=torch.int64, device=device)},
            value_range=adapter.value_range,
        )

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "pool_size": self.pool_size, "alpha": self.alpha, "clip": self.clip, **self.ratio.describe()}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [SamplingImportanceResampling]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    calibrate, how = benchmark_calibration(context)
    sampler = SamplingImportanceResampling(calibrate_critic_on=calibrate)
    floor = network_floor(context.adapter, sampler.ratio)
    return [BenchmarkSetup("sir", sampler, floor=floor, note=f"{how}; pool of {DEFAULTS.sir_pool_size} per sample")]
