"""Plugin ``latent_ga``: latent gradient ascent on a learned importance network.

Issenhuth, Tanielian, Picard, Mary, "Latent reweighting, an almost free
improvement for GANs" (WACV 2022), Section 3.3 (2), LatentGA, "inspired from
[DOT, Algorithm 2]": starting from ``z ~ gamma``, follow the path that
increases the importance weight,

    z <- P(z + eta * grad_z w_phi(z)),   repeated for a fixed number of steps,

where ``P`` keeps ``z`` in the prior's support: clipping for a uniform or truncated-normal prior,
and, for a normal prior, a radial projection back onto the sphere of the
starting point's norm (in high dimension a normal prior's mass lies on a
thin shell, and the norm is what separates typical from atypical latents).
Only the small MLP ``w_phi`` is differentiated (plus the mapping network when
``w_phi`` reads a StyleGAN mapping output), never the generator. The paper
treats the number of steps and ``eta`` as hyper-parameters to tune; the
defaults (10 steps, ``eta = 0.02``) follow shared/REFERENCE.md.

The ascent is deterministic, so each sample depends only on its own latent.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.numerics import FiniteGuard
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.plugins.latent_reweighting.importance_network import ImportanceNetwork, as_importance_network, benchmark_rows
from gan_postproc.validation import check_count, check_positive

from .defaults import DEFAULTS

__all__ = ["LatentGA", "ascend_importance", "ascend_batch", "project_to_prior"]


def project_to_prior(adapter: Adapter, z: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Map ascended latents back into the prior's support.

    Uniform or truncated-normal prior: clip to ``[low, high]`` (a radial
    projection could leave the box). Normal prior: rescale each ``z`` to the
    norm of its starting point ``start`` (radial projection).
    """
    prior = adapter.prior
    if prior.bounded:
        return prior.project(z)
    flat, flat_start = z.reshape(z.shape[0], -1), start.reshape(start.shape[0], -1)
    ratio = flat_start.norm(dim=1, keepdim=True) / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (flat * ratio).reshape(z.shape)


@gradients_on()  # also inside a caller's no_grad / inference_mode
def ascend_importance(
    importance: ImportanceNetwork,
    adapter: Adapter,
    latents: torch.Tensor,
    *,
    steps: int,
    step_size: float,
    guard: FiniteGuard | None = None,
) -> torch.Tensor:
    """``steps`` projected gradient-ascent steps on ``w_phi`` from ``latents`` ``[N, *latent_shape]``.

    A step that would make a latent NaN/inf (an overflowing gradient of
    ``w_phi``) is undone and that latent frozen (:class:`~gan_postproc.pipeline.numerics.FiniteGuard`;
    pass ``guard`` to report the frozen rows, see :func:`ascend_batch`).

    Returns:
        ``[N, *latent_shape]`` finite latents in the prior's support (detached).
    """
    guard = FiniteGuard("latent gradient ascent", latents.shape[0]) if guard is None else guard
    start = autograd_ready(latents).detach()
    z = start
    for _ in range(steps):
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(importance.weights(adapter, z).sum(), z)
        z = guard.keep_finite(z.detach(), project_to_prior(adapter, z.detach() + step_size * grad, start))
    return z.detach()


def ascend_batch(
    importance: ImportanceNetwork, adapter: Adapter, batch: SampleBatch, *, steps: int, step_size: float, method: str
) -> SampleBatch:
    """``batch`` with its latents ascended (:func:`ascend_importance`) and ``w_phi`` recorded before and after.

    Sets ``scores["importance_weight_start"]`` and ``scores["importance_weight"]`` (``[N]``) and
    ``provenance["nonfinite_restored"]`` (latents frozen by ``method``'s guard).
    """
    with torch.no_grad():
        start = importance.checked_weights(adapter, batch.latents)
    guard = FiniteGuard(method, len(batch))
    latents = ascend_importance(importance, adapter, batch.latents, steps=steps, step_size=step_size, guard=guard)
    with torch.no_grad():
        end = importance.checked_weights(adapter, latents)
    return guard.report(batch.replace(latents=latents).with_scores(importance_weight_start=start, importance_weight=end))


class LatentGA(LatentSampler):
    """LatentGA: draw ``z`` from the prior, then climb ``w_phi`` for ``steps`` steps of size ``step_size``.

    Args:
        importance: the trained importance network, or the path of a saved one.
        steps: ascent steps (>= 1).
        step_size: ``eta`` > 0, in latent units per unit of gradient.

    Output batch: ``latents`` (ascended), ``scores["importance_weight"]``
    (``w_phi`` after the ascent) and ``scores["importance_weight_start"]``
    (before), ``provenance["nonfinite_restored"]`` (latents whose ascent was
    stopped because a step went NaN/inf). Every proposal is kept: the
    acceptance rate is 1.
    """

    name = "latent_ga"

    def __init__(
        self,
        importance: ImportanceNetwork | str | Path,
        *,
        steps: int = DEFAULTS.latent_ga_steps,
        step_size: float = DEFAULTS.latent_ga_step_size,
    ) -> None:
        super().__init__()
        self.importance = as_importance_network(importance, self.name)
        self.steps = check_count(steps, "steps")
        self.step_size = check_positive(step_size, "step_size")

    def setup(self, adapter: Adapter, seed: int) -> None:
        self.importance.check_adapter(adapter, self.name)
        self.importance.to(adapter.device)

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        latents = request.draw_latents(adapter)
        self.stats.record(torch.ones(len(request), dtype=torch.bool))
        batch = SampleBatch(latents=latents, indices=request.indices, value_range=adapter.value_range)
        return ascend_batch(self.importance, adapter, batch, steps=self.steps, step_size=self.step_size, method=self.name)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "steps": self.steps, "step_size": self.step_size, "importance": self.importance.describe()}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [LatentGA]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    return benchmark_rows(context, LatentGA.name, lambda network, settings: LatentGA(network, **settings), "shipped importance network, ascent on w")
