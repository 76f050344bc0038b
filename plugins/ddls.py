"""Plugin ``ddls``: discriminator-driven latent sampling (Che et al., "Your GAN is Secretly an
Energy-based Model and You Should use Discriminator Driven Latent Sampling", NeurIPS 2020).

A GAN's generator and discriminator together define the energy-based latent distribution
``p_t(z) ∝ p0(z) exp(d(G(z)))``, whose push-forward through ``G`` corrects the generator
towards the data when ``d`` is the discriminator's logit (``d = log p_data / p_g``). DDLS
samples it with Langevin dynamics on the energy ``E(z) = -log p0(z) - d(G(z))``:

    z <- z - (eps / 2) * grad_z E(z) + sqrt(eps) * sigma * n,    n ~ N(0, I)

from ``z ~ p0``, for ``steps`` steps. As in StudioGAN's ``langevin_sampling`` (the
reference: 1000 steps, eps = 0.01, sigma = 1), every ``decay_steps`` steps both eps and the
noise scale are multiplied by ``decay`` (0.1). (StudioGAN passes sigma as the covariance of
its noise; here it is the standard deviation. The two agree at the default sigma = 1.)

The noise of step ``k`` for sample ``i`` is keyed by ``(seed, i, k)``
(:meth:`~gan_postproc.SampleRequest.normal`), so a sample's chain does not depend on the
batch it runs in, and the same seed gives the same latents.

Priors: for a normal prior ``-log p0`` contributes ``z`` to the gradient; a truncated normal
(BigGAN's, StudioGAN's) contributes the same inside its box, a uniform prior nothing. For the
two bounded priors a step that leaves the box ``[low, high]`` is reflected back at its walls
(reflected Langevin dynamics, which keeps the target distribution on the box; clipping instead
would pile latents up on the walls; a one-sided truncation reflects at its one finite wall), so
latents always stay in the prior's support.

Discriminator conventions: ``d`` is the logit of a probability or logit discriminator (the
paper's setting, in which ``p_t`` is the corrected data distribution). For a WGAN/hinge
critic there is no density ratio; DDLS then uses the raw critic score as ``d``, i.e. it
samples ``p0(z) exp(D(G(z)))``, a heuristic energy whose sharpness depends on the critic's
scale. (The paper derives this reading for WGAN critics as well, up to a temperature.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, FloorFn
from gan_postproc.defaults import Defaults
from gan_postproc.errors import InputError
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.discriminator_readings import potential, resolve_discriminator
from gan_postproc.pipeline.numerics import FiniteGuard
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.pipeline.scoring import Discriminator
from gan_postproc.validation import check_count, check_positive

__all__ = ["DDLS", "langevin_floor"]


@dataclass(frozen=True)
class DDLSDefaults(Defaults):
    """The core's defaults (:class:`gan_postproc.defaults.Defaults`) plus DDLS's, read by its signature and the benchmarks."""

    #: DDLS: Langevin steps (StudioGAN ``langevin_sampling``: 1000).
    ddls_steps: int = 1000
    #: DDLS: initial step size eps of z <- z - eps/2 grad E + sqrt(eps) noise (StudioGAN: 0.01).
    ddls_step_size: float = 0.01
    #: DDLS: standard deviation of the Langevin noise (StudioGAN: 1).
    ddls_noise_std: float = 1.0
    #: DDLS: every ``ddls_decay_steps`` steps the step size and noise scale are multiplied by this (StudioGAN: 0.1 ...
    ddls_decay: float = 0.1
    #: ... every 200 steps); a decay of 1 turns the schedule off.
    ddls_decay_steps: int = 200


DEFAULTS = DDLSDefaults()


class DDLS(LatentSampler):
    """Discriminator-driven latent sampling: Langevin dynamics on ``E(z) = -log p0(z) - d(G(z))`` (Che et al. 2020).

    Args:
        discriminator: gives ``d``; default: the adapter's.
        steps: Langevin steps (0 returns the prior draws).
        step_size: the initial ``eps``.
        noise_std: the initial noise scale ``sigma``.
        decay: factor applied to ``eps`` and ``sigma`` every ``decay_steps`` steps, in (0, 1]
            (1: constant).
        decay_steps: steps between decays.

    Returns batches with ``latents`` (and ``labels``) and ``provenance["nonfinite_restored"]``
    (1 for a sample whose step went NaN/inf: it kept its last finite latent, see
    :class:`~gan_postproc.pipeline.numerics.FiniteGuard`); the chain generates the samples.

    Example::

        chain = Chain(adapter, sampler=DDLS(steps=1000, step_size=0.01))
        batch = chain.sample(1000, seed=0)
    """

    name = "ddls"

    def __init__(
        self,
        *,
        discriminator: Discriminator | None = None,
        steps: int = DEFAULTS.ddls_steps,
        step_size: float = DEFAULTS.ddls_step_size,
        noise_std: float = DEFAULTS.ddls_noise_std,
        decay: float = DEFAULTS.ddls_decay,
        decay_steps: int = DEFAULTS.ddls_decay_steps,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator
        self.steps = check_count(steps, "steps", minimum=0)
        self.step_size = check_positive(step_size, "step_size")
        self.noise_std = check_positive(noise_std, "noise_std", allow_zero=True)
        self.decay = check_positive(decay, "decay")
        if self.decay > 1:
            raise InputError(f"decay must lie in (0, 1] (a factor that shrinks the step size), got {decay}")
        self.decay_steps = check_count(decay_steps, "decay_steps")

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Check that a discriminator is available."""
        resolve_discriminator(self.discriminator, adapter, self.name).eval()

    @gradients_on()  # also inside a caller's no_grad / inference_mode
    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        discriminator = resolve_discriminator(self.discriminator, adapter, self.name)
        labels = autograd_ready(request.draw_labels(adapter))
        z = autograd_ready(request.draw_latents(adapter)).float()
        prior = adapter.prior
        eps, sigma = self.step_size, self.noise_std
        guard = FiniteGuard(self.name, len(request))
        for step in range(self.steps):
            zk = z.detach().requires_grad_(True)
            with torch.enable_grad():
                energy = -potential(discriminator, adapter.generate(zk, labels), labels)
                if prior.kind != "uniform":  # normal, truncated normal: -log p0(z) = |z|^2 / 2 + const on the support
                    energy = energy - prior.log_prob(zk)
                (grad,) = torch.autograd.grad(energy.sum(), zk)
            noise = request.normal(prior.shape, "ddls", step, device=z.device)
            moved = z.detach() - 0.5 * eps * grad + (eps**0.5) * sigma * noise
            if prior.bounded:
                moved = _reflect(moved, prior.low, prior.high)
            z = guard.keep_finite(z.detach(), moved)
            if (step + 1) % self.decay_steps == 0:
                eps, sigma = eps * self.decay, sigma * self.decay
        self.stats.record(torch.ones(len(request), dtype=torch.bool), None if labels is None else labels.cpu())
        return guard.report(SampleBatch(latents=z.detach(), labels=labels, indices=request.indices, value_range=adapter.value_range))

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "steps": self.steps,
            "step_size": self.step_size,
            "noise_std": self.noise_std,
            "decay": self.decay,
            "decay_steps": self.decay_steps,
        }


def _reflect(z: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Fold ``z`` into ``[low, high]`` by reflecting at the walls (as often as needed); an infinite bound has no wall."""
    if math.isinf(high):
        folded = low + (z - low).abs()
    elif math.isinf(low):
        folded = high - (high - z).abs()
    else:
        width = high - low
        offset = torch.remainder(z - low, 2 * width)
        folded = low + torch.where(offset > width, 2 * width - offset, offset)
    return folded.clamp(low, high)  # float rounding at a wall must not leave the support


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [DDLS]


#: Toy2d row: the reference schedule (eps 0.01, sigma 1, both x0.1 per decay) over 300 steps
#: with a decay every 100 (the reference: 1000 steps, decay every 200), to keep the suite fast.
TOY2D_STEPS, TOY2D_DECAY_STEPS = 300, 100


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    if context.suite != "toy2d":
        return []
    sampler = DDLS(steps=TOY2D_STEPS, decay_steps=TOY2D_DECAY_STEPS)
    note = f"{TOY2D_STEPS} Langevin steps, eps {sampler.step_size} x{sampler.decay} every {TOY2D_DECAY_STEPS}; d = raw critic score"
    return [BenchmarkSetup(name="ddls", sampler=sampler, floor=langevin_floor(sampler, context.adapter), note=note)]


def langevin_floor(sampler: DDLS, adapter: Adapter) -> FloorFn:
    """The passes DDLS cannot avoid: ``steps`` gradient passes through generator and discriminator."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        discriminator = resolve_discriminator(sampler.discriminator, adapter, sampler.name)
        labels = None if batch.labels is None else batch.labels.to(adapter.device)
        z = batch.latents.to(adapter.device).detach().requires_grad_(True)  # type: ignore[union-attr]
        for _ in range(sampler.steps):
            with torch.enable_grad():
                torch.autograd.grad(potential(discriminator, adapter.generate(z, labels), labels).sum(), z)

    return floor
