"""Plugin ``drs``: discriminator rejection sampling (Azadi et al., ICLR 2019).

Azadi, Olsson, Darrell, Goodfellow, Odena, "Discriminator Rejection
Sampling", Sec. 3-4 and Algorithm 1. With the optimal discriminator,
``D*(x) = p_data / (p_data + p_g)``, so ``exp(D~(x)) = p_data(x) / p_g(x)``
for the logit ``D~`` and rejection sampling accepts ``x ~ p_g`` with
probability ``exp(D~(x) - D_M)``, ``D_M = max_x D~(x)``. DRS makes this usable:

* ``D_M`` is the largest logit over a burn-in of generated samples (at least
  10,000), raised when sampling meets a larger one;
* the acceptance probability is written through its logit (Eq. 8)
  ``F(x) = D~(x) - D_M - log(1 - exp(D~(x) - D_M - eps))``, and shifted by
  ``gamma`` to raise acceptance: ``p(x) = sigmoid(F(x) - gamma)``, ``gamma``
  the 95th percentile of ``F`` over the burn-in (Sec. 4.2).

With ``percentile=None`` (and ``gamma=None``) no shift is applied and
``p(x) ~= exp(D~(x) - D_M)``: exact rejection sampling from the distribution
the discriminator's density ratios describe. The shift trades exactness for
acceptance; the paper's images improve with it.

The paper calibrates its discriminator by further training (Sec. 4.1); the
logit must estimate the log density ratio, so a critic (WGAN, hinge) is
refused unless ``allow_uncalibrated=True``. Fine-tune a copy first with
:func:`gan_postproc.plugins.density_ratio.calibrate_discriminator`.
"""

from __future__ import annotations

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import InputError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.rejection import RejectionSampler
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.pipeline.scoring import Discriminator
from gan_postproc.plugins.density_ratio.ratio import (
    Calibration,
    DensityRatio,
    RealData,
    benchmark_calibration,
    check_informative,
    network_floor,
)
from gan_postproc.validation import check_count, check_number, check_positive

from .defaults import DEFAULTS

__all__ = ["DiscriminatorRejectionSampler", "drs_f"]


def drs_f(logits: torch.Tensor, max_logit: torch.Tensor | float, epsilon: float) -> torch.Tensor:
    """``F(x) = D_delta - log(1 - exp(D_delta - eps))`` with ``D_delta = D~(x) - D_M`` (Azadi et al., Eq. 8).

    A logit above ``max_logit`` is compared with itself (``D_delta = 0``), as
    the paper raises ``D_M`` when a larger logit appears. ``[N]`` float64.
    """
    logits = logits.double()
    delta = logits - torch.maximum(torch.as_tensor(max_logit, dtype=torch.float64), logits)
    return delta - torch.log(-torch.expm1(delta - epsilon))


class DiscriminatorRejectionSampler(RejectionSampler):
    """Discriminator rejection sampling (DRS): accept x with probability sigmoid(F(x) - gamma).

    Args:
        discriminator: a :class:`~gan_postproc.Discriminator` whose logit
            estimates ``log p_data / p_g``; ``None`` uses the adapter's.
        burn_in: generated samples scored in :meth:`setup` for ``D_M`` and
            ``gamma`` (paper: at least 10,000).
        percentile: ``gamma`` is this percentile of ``F`` over the burn-in
            (paper: 95); ``None`` for no shift (exact rejection sampling).
        gamma: a fixed shift; overrides ``percentile``.
        epsilon: the ``eps`` in ``F`` (paper: 1e-6).
        update_max: raise ``D_M`` when a proposal's logit exceeds it (paper).
            Each proposal is compared with ``max(D_M, its own logit)``, and
            the raised ``D_M`` applies to later proposals, so outputs depend
            on the batch size only after the burn-in maximum was beaten;
            ``False`` keeps ``D_M`` fixed (outputs keyed by index alone).
        allow_uncalibrated: run on a critic's raw score (warns).
        calibrate_critic_on: real data to calibrate a critic on in setup (a
            BCE fine-tuned copy; see :class:`~gan_postproc.plugins.density_ratio.DensityRatio`).
        calibration: ``"isotonic"`` to calibrate the logit on ``real_data`` first.
        real_data, real_labels: real samples for the isotonic calibration.
        max_rounds, min_acceptance_rate: the bounded rejection loop
            (:class:`~gan_postproc.RejectionSampler`).

    Attributes (after setup): ``max_logit`` (D_M), ``gamma``.
    """

    name = "drs"

    def __init__(
        self,
        discriminator: Discriminator | None = None,
        *,
        burn_in: int = DEFAULTS.drs_burn_in,
        percentile: float | None = DEFAULTS.drs_percentile,
        gamma: float | None = None,
        epsilon: float = DEFAULTS.drs_epsilon,
        update_max: bool = True,
        allow_uncalibrated: bool = False,
        calibrate_critic_on: RealData | None = None,
        calibration: Calibration = None,
        real_data: RealData | None = None,
        real_labels: torch.Tensor | None = None,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__(max_rounds=max_rounds, min_acceptance_rate=min_acceptance_rate)
        self.burn_in = check_count(burn_in, "burn_in", minimum=2)
        self.percentile = None if percentile is None else check_number(percentile, "percentile", low=0.0, high=100.0)
        self.fixed_gamma = None if gamma is None else check_number(gamma, "gamma")
        self.epsilon = check_positive(epsilon, "epsilon")
        self.update_max = bool(update_max)
        self.ratio = DensityRatio(
            self.name,
            discriminator,
            allow_uncalibrated=allow_uncalibrated,
            calibrate_critic_on=calibrate_critic_on,
            calibration=calibration,
            real_data=real_data,
            real_labels=real_labels,
        )
        self.max_logit: float | None = None
        self.gamma: float | None = None
        self.max_updates = 0

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Check the discriminator, then score ``burn_in`` generated samples for ``D_M`` and ``gamma``."""
        self.ratio.setup(adapter, seed)
        raw, _ = self.ratio.prior_raw_logits(adapter, self.burn_in, seed, "drs_burn_in")  # a batch at a time
        logits = self.ratio.calibrate(raw)
        check_informative(logits, self.name, "burn-in samples")
        self.max_logit = float(logits.max())
        self.max_updates = 0
        if self.fixed_gamma is not None:
            self.gamma = self.fixed_gamma
        elif self.percentile is None:
            self.gamma = 0.0
        else:
            self.gamma = float(torch.quantile(drs_f(logits, self.max_logit, self.epsilon), self.percentile / 100.0))

    def propose(self, adapter: Adapter, request: SampleRequest, round: int) -> tuple[SampleBatch, torch.Tensor]:
        if self.max_logit is None or self.gamma is None:
            raise InputError("drs: call setup(adapter, seed) before sampling (a Chain does it for you)")
        latents = request.draw_latents(adapter, round=round)
        labels = request.draw_labels(adapter, "drs", round)
        with torch.no_grad():
            samples = adapter.generate_finite(latents, labels)
        logits = self.ratio.log_ratio(samples, labels)
        probability = torch.sigmoid(drs_f(logits, self.max_logit, self.epsilon) - self.gamma)
        if self.update_max and float(logits.max()) > self.max_logit:
            self.max_logit = float(logits.max())
            self.max_updates += 1
        batch = SampleBatch(
            images=samples,
            latents=latents,
            labels=labels,
            indices=request.indices,
            scores={"log_density_ratio": logits.float().to(samples.device)},
            value_range=adapter.value_range,
        )
        return batch, probability.float().to(samples.device)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "burn_in": self.burn_in,
            "percentile": self.percentile,
            "gamma": self.gamma,
            "epsilon": self.epsilon,
            "update_max": self.update_max,
            "max_logit": self.max_logit,
            "max_updates": self.max_updates,
            **self.ratio.describe(),
        }


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [DiscriminatorRejectionSampler]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    calibrate, how = benchmark_calibration(context)
    burn_in = DEFAULTS.drs_burn_in_quick if context.quick else DEFAULTS.drs_burn_in
    sampler = DiscriminatorRejectionSampler(calibrate_critic_on=calibrate, burn_in=burn_in)
    floor = network_floor(context.adapter, sampler.ratio)
    return [BenchmarkSetup("drs", sampler, floor=floor, note=f"{how}; burn-in {burn_in}, gamma = 95th percentile of F")]
