"""Plugin ``dot``: discriminator optimal transport (Tanaka, "Discriminator optimal transport",
NeurIPS 2019), in target space and in latent space.

With a discriminator potential ``d`` (the WGAN critic; for a probability or logit
discriminator its logit, see below), every generated sample ``y = G(z)`` is moved to

* target space (``space="target"``):
  ``x* = argmin_x ||x - y + delta||_2 - d(x) / K_eff``, starting from ``x = y``;
* latent space (``space="latent"``):
  ``z* = argmin_z ||z - z_y + delta||_2 - d(G(z)) / k_eff``, starting from ``z = z_y``,
  and the sample is ``G(z*)``,

by ``steps`` steps of Adam (lr 0.01, betas (0, 0.9), 100 steps, ``delta = 0.001``: the
reference code, AkinoriTanaka-phys/DOT, whose ``+ 0.001`` keeps the norm differentiable at
the start). ``K_eff`` (``k_eff``) is the discriminator's effective Lipschitz constant on
generated samples, estimated in :meth:`DOT.setup` as the reference does: the mean over 10
trials of the largest ``|d(G(z1)) - d(G(z2))| / ||G(z1) - G(z2)||`` (``/ ||z1 - z2||`` in latent
space) over 100 random pairs.

Keeping the result valid:

* target space: samples with a value range (images) are clipped into it after every step
  (the reference clips its 2-D points to [-2, 2]; unbounded data is not clipped here);
* latent space, uniform prior: ``z`` is clipped into the prior's box after every step, as in
  the reference;
* latent space, normal prior: the radial component of the gradient is removed before every
  step, ``g <- g - z (z . g) / ||z||^2``, so that ``z`` moves along the sphere it lies on
  instead of towards the origin, where a normal prior has no mass (the reference subtracts
  ``z (z . g) / 11.31``, with ``11.31 = sqrt(128)`` for its 128-d latents; this is the exact
  tangent projection for any dimension).

The potential follows the discriminator's declared output: the raw score of a WGAN/hinge
critic (DOT's setting: a 1-Lipschitz Kantorovich potential), the logit ``log D/(1-D)`` of a
probability or logit discriminator (the DOT paper's choice for non-WGAN discriminators).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from gan_postproc import hookimpl, rng
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, FloorFn
from gan_postproc.defaults import Defaults
from gan_postproc.errors import InputError
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.batching import row_slices
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.discriminator_readings import potential, realness, resolve_discriminator
from gan_postproc.pipeline.numerics import FiniteGuard
from gan_postproc.pipeline.ranges import clamp_to
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.pipeline.scoring import Discriminator
from gan_postproc.pipeline.splitting import module_device
from gan_postproc.validation import check_count, check_positive, check_probability

__all__ = ["DOT", "Space", "SPACES", "estimate_k_eff", "transport_floor"]


@dataclass(frozen=True)
class DOTDefaults(Defaults):
    """The core's defaults (:class:`gan_postproc.defaults.Defaults`) plus DOT's, read by its signature and the benchmarks."""

    #: DOT: Adam steps (Tanaka 2019, reference 2-D demo: 100).
    dot_steps: int = 100
    #: DOT: Adam learning rate (reference: 0.01).
    dot_lr: float = 0.01
    #: DOT: Adam betas (reference: beta1 = 0, beta2 = 0.9).
    dot_betas: tuple[float, float] = (0.0, 0.9)
    #: DOT: offset added to x - y inside the transport cost ||x - y + delta|| (reference: 0.001).
    dot_delta: float = 0.001
    #: DOT: K_eff is the mean over this many estimates ... (reference demo: 10)
    dot_keff_trials: int = 10
    #: ... of the largest |D(x1) - D(x2)| / ||x1 - x2|| over this many random pairs (reference: 100).
    dot_keff_pairs: int = 100


DEFAULTS = DOTDefaults()

Space = Literal["target", "latent"]
#: Where DOT moves samples.
SPACES: tuple[str, ...] = ("target", "latent")


class DOT(Refiner):
    """Discriminator optimal transport (Tanaka 2019) in target or latent space.

    Args:
        discriminator: the potential's discriminator; default: the adapter's.
        space: ``"target"`` (move the samples) or ``"latent"`` (move the latents).
        steps: Adam steps.
        lr: Adam learning rate.
        betas: Adam ``(beta1, beta2)``, each in ``[0, 1)``.
        delta: offset inside the transport cost ``||x - y + delta||``.
        k_eff: the effective Lipschitz constant; ``None``: estimate it in :meth:`setup`.
        k_eff_trials, k_eff_pairs: the estimate is the mean over ``k_eff_trials`` of the
            largest ratio over ``k_eff_pairs`` random pairs of generated samples.

    The refined batch carries ``scores["discriminator"]`` (``D`` of the result: probability,
    or critic score) and ``provenance["nonfinite_restored"]`` (1 for a sample whose step went
    NaN/inf: it kept its last finite value, see :class:`~gan_postproc.pipeline.numerics.FiniteGuard`);
    latent-space DOT also replaces ``latents``.

    Example::

        chain = Chain(toy2d_adapter("25gaussians"), refiners=[DOT(space="target")])
        batch = chain.sample(1000, seed=0)
    """

    name = "dot"

    def __init__(
        self,
        *,
        discriminator: Discriminator | None = None,
        space: Space = "target",
        steps: int = DEFAULTS.dot_steps,
        lr: float = DEFAULTS.dot_lr,
        betas: tuple[float, float] = DEFAULTS.dot_betas,
        delta: float = DEFAULTS.dot_delta,
        k_eff: float | None = None,
        k_eff_trials: int = DEFAULTS.dot_keff_trials,
        k_eff_pairs: int = DEFAULTS.dot_keff_pairs,
    ) -> None:
        if space not in SPACES:
            raise InputError(f"space must be one of {list(SPACES)}, got {space!r}")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise InputError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.discriminator = discriminator
        self.space: Space = space
        self.steps = check_count(steps, "steps", minimum=0)
        self.lr = check_positive(lr, "lr")
        self.betas = (
            check_probability(betas[0], "betas[0]", open_high=True),
            check_probability(betas[1], "betas[1]", open_high=True),
        )
        self.delta = check_positive(delta, "delta", allow_zero=True)
        self.k_eff = None if k_eff is None else check_positive(k_eff, "k_eff")
        self._given_k_eff = self.k_eff is not None
        self.k_eff_trials = check_count(k_eff_trials, "k_eff_trials")
        self.k_eff_pairs = check_count(k_eff_pairs, "k_eff_pairs", minimum=2)
        self._ready_for: tuple[int, int, int] | None = None

    def setup(self, adapter: Adapter | None, seed: int) -> None:
        """Check the models and estimate ``K_eff`` (``k_eff`` in latent space) from generated samples unless it was given."""
        discriminator = resolve_discriminator(self.discriminator, adapter, self.name).eval()
        if adapter is None:
            if self.space == "latent" or self.k_eff is None:
                need = "moves latents through the generator" if self.space == "latent" else "needs K_eff"
                raise InputError(
                    f"dot (space={self.space!r}) {need}, but there is no generator (standalone images); run it in a Chain "
                    "with an adapter, or use space='target' with k_eff=... given (or estimated from the images by "
                    "fit_standalone, as gan-postproc refine does)"
                )
        elif not self._given_k_eff:
            self.k_eff = estimate_k_eff(
                adapter, discriminator, space=self.space, trials=self.k_eff_trials, pairs=self.k_eff_pairs, seed=seed
            )
        self._ready_for = (id(adapter), id(discriminator), seed)

    def fit_standalone(self, batches: Iterable[SampleBatch]) -> None:
        """Estimate ``K_eff`` from the images to be refined, for standalone use (target space).

        The reference's estimate with the images in place of generated samples: consecutive
        images form the pairs (the first ``2 * k_eff_trials * k_eff_pairs`` images, or as
        many as there are), split into ``k_eff_trials`` groups; ``K_eff`` is the mean of the
        groups' largest ratios. Does nothing when ``k_eff`` was given.
        """
        if self.space == "latent":
            raise InputError("dot in latent space moves latents through a generator; standalone images can only use space='target'")
        if self._given_k_eff:
            return
        discriminator = resolve_discriminator(self.discriminator, None, self.name).eval()
        wanted = 2 * self.k_eff_trials * self.k_eff_pairs
        images, labels, held = [], [], 0
        for batch in batches:
            if held >= wanted:
                break
            images.append(batch.images)
            labels.append(batch.labels)
            held += len(batch)
        x = torch.cat(images)[:wanted] if images else torch.empty(0)
        if len(x) < 4:
            raise InputError(f"dot needs at least 4 images to estimate K_eff from them, got {len(x)}; pass k_eff=... instead")
        y = None if any(label is None for label in labels) else torch.cat(labels)[: len(x)]
        n = len(x) // 2 * 2
        device = module_device(discriminator)
        with torch.no_grad():
            d = torch.cat([
                potential(discriminator, x[rows].to(device), None if y is None else y[rows].to(device)) for rows in row_slices(n)
            ]).to(x.device)
        self.k_eff = _mean_of_maxima(_ratios(d[0::2], d[1::2], x[0:n:2] - x[1:n:2]), min(self.k_eff_trials, n // 2))

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        self.check_batch(batch, adapter, need_latents=self.space == "latent")
        discriminator = resolve_discriminator(self.discriminator, adapter, self.name)
        if self._ready_for is None or self._ready_for[:2] != (id(adapter), id(discriminator)):
            self.setup(adapter, DEFAULTS.seed)
        guard = FiniteGuard(self.name, len(batch))
        device = module_device(discriminator) if adapter is None else adapter.device  # where the networks run
        labels = None if batch.labels is None else autograd_ready(batch.labels).to(device)
        if self.space == "target":
            value_range = batch.value_range if adapter is None else adapter.value_range
            x = self._transport(
                batch.images.to(device),
                score=lambda x: potential(discriminator, x, labels),
                project=lambda x: clamp_to(x, value_range),
                guard=guard,
            )
            refined = batch.replace(images=x.to(batch.device))
        else:
            prior = adapter.prior  # type: ignore[union-attr]
            z = self._transport(
                batch.latents.to(device),  # type: ignore[union-attr]
                score=lambda z: potential(discriminator, adapter.generate(z, labels), labels),  # type: ignore[union-attr]
                project=prior.project,
                guard=guard,
                tangent=prior.kind == "normal",
            )
            with torch.no_grad():
                x = adapter.generate(z, labels)  # type: ignore[union-attr]
            refined = batch.replace(images=x.to(batch.device), latents=z.to(batch.device))
        with torch.no_grad():
            d = potential(discriminator, refined.images.to(device), labels)
        return guard.report(refined.with_scores(discriminator=realness(discriminator, d).to(batch.device)))

    @gradients_on()  # also inside a caller's no_grad / inference_mode
    def _transport(
        self,
        start: torch.Tensor,
        score: Callable[[torch.Tensor], torch.Tensor],
        project: Callable[[torch.Tensor], torch.Tensor],
        guard: FiniteGuard,
        tangent: bool = False,
    ) -> torch.Tensor:
        """Adam on ``||x - start + delta|| - score(x) / k_eff``, per sample.

        ``project`` maps ``x`` back into its valid set after every step; ``tangent``
        removes the radial component of every gradient first (normal priors); ``guard``
        undoes a step that makes a sample NaN/inf (the sample keeps its last finite value).
        """
        k_eff = self.k_eff
        assert k_eff is not None
        start = autograd_ready(start).detach().float()
        x = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=self.lr, betas=self.betas)
        for _ in range(self.steps):
            with torch.enable_grad():
                cost = (x - start + self.delta).flatten(1).norm(dim=1) - score(x) / k_eff
                (grad,) = torch.autograd.grad(cost.sum(), x)
            x.grad = _tangential(x.detach(), grad) if tangent else grad
            previous = x.detach().clone()
            optimizer.step()
            with torch.no_grad():
                x.copy_(guard.keep_finite(previous, project(x)))
        return x.detach()

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "space": self.space, "steps": self.steps, "lr": self.lr, "betas": list(self.betas), "delta": self.delta, "k_eff": self.k_eff}


def _tangential(z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``grad`` without its component along ``z``, per sample: ``g - z (z . g) / ||z||^2``."""
    flat_z, flat_g = z.flatten(1), grad.flatten(1)
    radial = (flat_z * flat_g).sum(1, keepdim=True) / flat_z.pow(2).sum(1, keepdim=True).clamp_min(1e-12)
    return (flat_g - radial * flat_z).reshape(grad.shape)


def estimate_k_eff(
    adapter: Adapter,
    discriminator: Discriminator,
    *,
    space: Space = "target",
    trials: int = DEFAULTS.dot_keff_trials,
    pairs: int = DEFAULTS.dot_keff_pairs,
    seed: int = DEFAULTS.seed,
) -> float:
    """DOT's effective Lipschitz constant on generated samples (the reference's ``eff_K`` / ``eff_k``).

    The mean over ``trials`` of ``max_i |d(G(z1_i)) - d(G(z2_i))| / ||G(z1_i) - G(z2_i)||``
    over ``pairs`` random latent pairs (``||z1_i - z2_i||`` in the denominator for
    ``space="latent"``). Latents and labels are keyed by ``seed``, so the estimate is
    reproducible.
    """
    trials = check_count(trials, "trials")
    pairs = check_count(pairs, "pairs", minimum=2)
    ratios = []
    with torch.no_grad():
        for trial in range(trials):
            for rows in row_slices(pairs):  # a batch of pairs at a time: memory set by the batch, not by trials x pairs
                indices = torch.arange(rows.start, rows.stop)
                ends = []
                for end in (1, 2):
                    z = adapter.prior.sample(seed, indices, "dot_keff", trial, end, device=adapter.device)
                    labels = None
                    if adapter.conditional:
                        labels = rng.randint(seed, indices, adapter.num_classes, "dot_keff_label", trial, end, device=adapter.device)  # type: ignore[arg-type]
                    x = adapter.generate_finite(z, labels)
                    ends.append((z, x, potential(discriminator, x, labels)))
                (z1, x1, d1), (z2, x2, d2) = ends
                ratios.append(_ratios(d1, d2, (z1 - z2) if space == "latent" else (x1 - x2)))
    return _mean_of_maxima(torch.cat(ratios), trials)


def _ratios(d1: torch.Tensor, d2: torch.Tensor, difference: torch.Tensor) -> torch.Tensor:
    """``|d1 - d2| / ||difference||`` per pair, ``[P]``."""
    return (d1 - d2).abs() / difference.flatten(1).norm(dim=1).clamp_min(1e-12)


def _mean_of_maxima(ratio: torch.Tensor, trials: int) -> float:
    """The mean over ``trials`` equal consecutive groups of ``ratio`` of each group's largest value."""
    groups = ratio.chunk(trials)
    k_eff = float(torch.stack([group.max() for group in groups]).mean())
    if not math.isfinite(k_eff) or k_eff <= 0:
        raise InputError(
            f"the estimated K_eff is {k_eff}: the discriminator gives (nearly) the same score to every sample; "
            "check that the discriminator matches the generator, or pass k_eff=..."
        )
    return k_eff


@hookimpl
def gan_postproc_register_refiners() -> list[type[Refiner]]:
    return [DOT]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    if context.suite != "toy2d":
        return []
    rows = []
    for row, space in (("dot", "target"), ("dot_latent", "latent")):
        refiner = DOT(space=space)  # type: ignore[arg-type]
        note = f"{space} space, Adam lr {refiner.lr} betas {refiner.betas}, {refiner.steps} steps, K_eff as the reference"
        rows.append(BenchmarkSetup(name=row, refiners=[refiner], floor=transport_floor(refiner, context.adapter), note=note))
    return rows


def transport_floor(refiner: DOT, adapter: Adapter) -> FloorFn:
    """The passes DOT cannot avoid: ``steps`` gradient passes through the discriminator
    (and, in latent space, the generator) on the batch."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        discriminator = resolve_discriminator(refiner.discriminator, adapter, refiner.name)
        labels = None if batch.labels is None else batch.labels.to(adapter.device)
        start = batch.images if refiner.space == "target" else batch.latents
        x = start.to(adapter.device).detach().requires_grad_(True)  # type: ignore[union-attr]
        for _ in range(refiner.steps):
            with torch.enable_grad():
                samples = x if refiner.space == "target" else adapter.generate(x, labels)
                torch.autograd.grad(potential(discriminator, samples, labels).sum(), x)

    return floor
