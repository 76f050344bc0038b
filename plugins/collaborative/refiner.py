"""Plugin ``collaborative``: collaborative sampling (Liu, Kothari & Alahi, "Collaborative Sampling
in Generative Adversarial Networks", AAAI 2020), Algorithm 1, Eq. 4 and Eq. 5.

The generator proposes a sample; the discriminator's gradient then refines the activation
map ``h`` of a chosen generator layer ``l`` and the rest of the generator re-decodes it:

* Eq. 4: ``h^{k+1} = h^k - lambda * grad_h L_G(G_{l..L}(h^k))``
* Eq. 5: ``x^{k+1} = G_L o ... o G_l(h^{k+1})``

for at most ``K`` steps. ``L_G`` follows the discriminator's declared output
(:class:`~gan_postproc.pipeline.scoring.ScoreKind`): the non-saturating ``-log D(x)`` (paper, Eq. 2)
for a probability or logit discriminator, ``-D(x)`` for a WGAN/hinge critic.

Which iterate a sample ends with (``selection``):

* ``"threshold"`` (the paper's Algorithm 1): a sample stops, for good, at the first iterate
  with ``D(x^k) >= D~``, the mean discriminator output on real data (``D`` as a probability;
  the raw score for a critic); samples that never get there end at ``x^K``. ``D~`` is
  estimated in :meth:`CollaborativeRefiner.setup` from ``real_data`` (any iterable of real
  tensors), or given directly as ``threshold``.
* ``"best"`` (the reference code, vita-epfl/collaborative-gan-sampling): take all ``K`` steps
  and keep the iterate with the highest ``D(x^k)``, ``k = 0..K`` (so never below the proposal).

The layer ``l`` is ``"latent"`` (refine ``z``; kept inside a uniform prior's support by
clipping), any split point the adapter lists (:meth:`~gan_postproc.Adapter.layer_names`), or
``"output"`` (refine the samples themselves, kept inside their value range by clipping, as
the reference code does in data space). The paper finds a middle layer the best balance
(Sec. 4.3, 5.3.2). A step here is the plain gradient step of Eq. 4; the reference code's 2-D
experiments use an Adam-like step damped by ``(loss + 0.5)^2`` instead (not used here).

Discriminator shaping (Algorithm 2, Eq. 6), which fine-tunes a copy of the discriminator on
real vs refined samples so that its gradients guide better, is :func:`shape_discriminator`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, FloorFn
from gan_postproc.errors import InputError, InputTypeError
from gan_postproc.gradients import autograd_ready, gradients_on
from gan_postproc.pipeline.adapter import LATENT_LAYER, OUTPUT_LAYER, Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import RunReport
from gan_postproc.pipeline.discriminator_readings import generator_loss, potential, realness, resolve_discriminator
from gan_postproc.pipeline.numerics import FiniteGuard, finite_rows
from gan_postproc.pipeline.ranges import clamp_to
from gan_postproc.pipeline.refiner import Refiner
from gan_postproc.pipeline.scoring import Discriminator, ScoreKind
from gan_postproc.real_data import RealData, iter_real
from gan_postproc.validation import ValueRange, check_count, check_positive

from .defaults import DEFAULTS
from .shaped_files import SHAPED_DIGITS_SETTINGS, shipped_shaped_digits_discriminator

__all__ = [
    "CollaborativeRefiner",
    "RefinementResult",
    "Selection",
    "SELECTIONS",
    "collaborative_refine",
    "mean_realness",
    "refinement_floor",
]

Selection = Literal["threshold", "best"]
#: The ways a sample's final iterate is chosen (see the module docstring).
SELECTIONS: tuple[str, ...] = ("threshold", "best")


class CollaborativeRefiner(Refiner):
    """Collaborative sampling: discriminator-guided refinement of a generator layer (Liu et al. 2020, Algorithm 1).

    Args:
        discriminator: the guiding discriminator; default: the adapter's. Its declared
            output convention picks ``L_G`` (see the module docstring).
        layer: where to refine: ``"latent"``, a split point of the adapter, or ``"output"``.
        steps: at most this many refinement steps ``K`` (>= 0; 0 returns the proposals).
        step_size: ``lambda`` of Eq. 4 (> 0).
        selection: ``"threshold"`` (Algorithm 1, stop at the mean real ``D``) or ``"best"``
            (keep the iterate with the highest ``D``).
        real_data: real samples in chain convention (a tensor ``[N, ...]`` or any iterable of
            tensors / ``(tensor, label)`` batches) to estimate the threshold ``D~`` from, for
            ``selection="threshold"``.
        threshold: ``D~`` given directly instead of ``real_data`` (a probability, or a critic
            score for a critic).

    The refined batch carries ``scores["discriminator"]`` (``D`` of the returned sample:
    probability, or critic score), ``provenance["refinement_steps"]`` (steps taken) and
    ``provenance["nonfinite_restored"]`` (1 for a sample whose step went NaN/inf: it kept its
    last finite iterate, see :class:`~gan_postproc.pipeline.numerics.FiniteGuard`).

    Example::

        refiner = CollaborativeRefiner(layer="block1", steps=50, step_size=0.1, real_data=real_images)
        batch = Chain(adapter, refiners=[refiner]).sample(1000, seed=0)
    """

    name = "collaborative"

    def __init__(
        self,
        *,
        discriminator: Discriminator | None = None,
        layer: str = DEFAULTS.collaborative_layer,
        steps: int = DEFAULTS.collaborative_steps,
        step_size: float = DEFAULTS.collaborative_step_size,
        selection: Selection = DEFAULTS.collaborative_selection,  # type: ignore[assignment]
        real_data: RealData | None = None,
        threshold: float | None = None,
    ) -> None:
        if not isinstance(layer, str) or not layer:
            raise InputTypeError(f"layer must be a split-point name such as 'latent', 'output' or a layer name, got {layer!r}")
        if selection not in SELECTIONS:
            raise InputError(f"selection must be one of {list(SELECTIONS)}, got {selection!r}")
        if selection == "best" and (real_data is not None or threshold is not None):
            raise InputError(
                "real_data / threshold set the stopping threshold of selection='threshold'; selection='best' keeps the "
                "iterate with the highest D and uses neither: drop them or choose selection='threshold'"
            )
        if real_data is not None and threshold is not None:
            raise InputError("give the threshold as real_data (its mean D is estimated) or as threshold=..., not both")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold)):
            raise InputError(f"threshold must be a finite number (a mean D on real data), got {threshold!r}")
        self.discriminator = discriminator
        self.layer = layer
        self.steps = check_count(steps, "steps", minimum=0)
        self.step_size = check_positive(step_size, "step_size")
        self.selection: Selection = selection
        self.real_data = real_data
        self.threshold = None if threshold is None else float(threshold)
        self._ready_for: tuple[int, int] | None = None

    # --- setup --------------------------------------------------------------

    def setup(self, adapter: Adapter | None, seed: int) -> None:
        """Check the discriminator and the layer; estimate ``D~`` from the real data if asked to."""
        discriminator = resolve_discriminator(self.discriminator, adapter, self.name)
        discriminator.eval()
        self._check_layer(adapter)
        if self.selection == "threshold" and self.threshold is None:
            if self.real_data is None:
                raise InputError(
                    "collaborative with selection='threshold' (Algorithm 1) stops a sample once D(x) reaches the mean D "
                    "on real data: pass real_data=... (a tensor or any iterable of real tensors) or threshold=..., "
                    "or choose selection='best'"
                )
            self.threshold = mean_realness(discriminator, self.real_data, None if adapter is None else adapter.value_range)
        if self.selection == "threshold" and discriminator.output is not ScoreKind.CRITIC and not 0.0 < self.threshold < 1.0:
            raise InputError(
                f"collaborative: threshold={self.threshold:g} is compared with D(x) as a probability in (0, 1) "
                f"(the discriminator is declared {discriminator.output.value!r}), so it must lie strictly inside (0, 1); "
                "give the mean D on real data as a probability, or pass real_data=... to estimate it"
            )
        self._ready_for = (id(adapter), id(discriminator))

    def _check_layer(self, adapter: Adapter | None) -> None:
        if adapter is None:
            if self.layer != OUTPUT_LAYER:
                raise InputError(
                    f"collaborative at layer {self.layer!r} re-runs the generator, but there is none (standalone images); "
                    "use layer='output' to refine the images themselves, or run it in a Chain with an adapter"
                )
            return
        adapter.check_layer(self.layer)

    # --- refinement -----------------------------------------------------------

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        self.check_batch(batch, adapter, need_latents=self.layer != OUTPUT_LAYER)
        discriminator = resolve_discriminator(self.discriminator, adapter, self.name)
        if self._ready_for != (id(adapter), id(discriminator)):
            self.setup(adapter, DEFAULTS.seed)
        value_range = batch.value_range if adapter is None else adapter.value_range
        result = collaborative_refine(
            discriminator,
            adapter,
            images=batch.images,
            latents=batch.latents,
            labels=batch.labels,
            layer=self.layer,
            steps=self.steps,
            step_size=self.step_size,
            selection=self.selection,
            threshold=self.threshold,
            value_range=value_range,
        )
        device = batch.device
        refined = batch.replace(images=result.images.to(device))
        if self.layer == LATENT_LAYER:
            refined = refined.replace(latents=result.activation.to(device))
        refined = refined.with_scores(discriminator=result.realness.to(device)).with_provenance(
            refinement_steps=result.steps.to(device)
        )
        return result.guard.report(refined)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "layer": self.layer,
            "steps": self.steps,
            "step_size": self.step_size,
            "selection": self.selection,
            "threshold": self.threshold,
        }


class RefinementResult:
    """What :func:`collaborative_refine` returns, one row per sample.

    Attributes:
        images: ``[N, ...]`` the refined samples.
        activation: ``[N, ...]`` the refined activation at the layer (the latents at ``"latent"``).
        realness: ``[N]`` ``D`` of each returned sample (probability, or critic score).
        steps: ``[N]`` int64 refinement steps taken to reach the returned iterate.
        guard: which samples hit NaN/inf and kept their last finite iterate.
    """

    def __init__(
        self, images: torch.Tensor, activation: torch.Tensor, realness: torch.Tensor, steps: torch.Tensor, guard: FiniteGuard
    ) -> None:
        self.images, self.activation, self.realness, self.steps, self.guard = images, activation, realness, steps, guard


@gradients_on()
def collaborative_refine(
    discriminator: Discriminator,
    adapter: Adapter | None,
    *,
    images: torch.Tensor,
    latents: torch.Tensor | None,
    labels: torch.Tensor | None,
    layer: str,
    steps: int,
    step_size: float,
    selection: Selection,
    threshold: float | None,
    value_range: ValueRange | None,
) -> RefinementResult:
    """Algorithm 1 on a batch (inputs checked by :class:`CollaborativeRefiner`).

    Every sample is refined independently of the others (as long as neither network
    couples the samples of a batch), so results do not depend on the batch size. Gradients
    are on throughout, also inside a caller's ``torch.no_grad()`` or ``torch.inference_mode()``
    (:func:`~gan_postproc.gradients.gradients_on`).
    """
    if selection == "threshold" and threshold is None:
        raise InputError("selection='threshold' needs a threshold; call setup() with real_data first")
    images, latents, labels = autograd_ready(images), autograd_ready(latents), autograd_ready(labels)
    device = images.device if adapter is None else adapter.device
    if adapter is not None and latents is not None:
        latents = latents.to(device)
    labels = None if labels is None else labels.to(device)
    if layer == OUTPUT_LAYER:
        h = images.to(device)
    elif layer == LATENT_LAYER:
        h = latents  # type: ignore[assignment]
    else:
        with torch.no_grad():
            h = adapter.generate_to(latents, labels, layer)  # type: ignore[union-attr, arg-type]
    h = h.detach().float().clone()  # refined in place below; never write into the caller's tensors
    n = h.shape[0]

    def decode(rows: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
        if layer == OUTPUT_LAYER:
            return activation
        return adapter.generate_from(activation, latents[rows], None if labels is None else labels[rows], layer)  # type: ignore[union-attr, index]

    def project(activation: torch.Tensor) -> torch.Tensor:
        if layer == OUTPUT_LAYER:
            return clamp_to(activation, value_range)
        if layer == LATENT_LAYER:
            return adapter.prior.project(activation)  # type: ignore[union-attr]
        return activation

    # Iterate 0 is the proposal itself; a sample whose later iterate goes NaN/inf keeps its last finite one.
    final_x = images.detach().to(device).float().clone()
    final_h = h.clone()
    final_score = torch.full((n,), -math.inf, device=device)
    final_steps = torch.zeros(n, dtype=torch.int64, device=device)
    guard = FiniteGuard("collaborative", n)
    active = torch.arange(n, device=device)
    for k in range(steps + 1):
        hk = h[active].detach().requires_grad_(True)
        x = decode(active, hk)
        d = _potential_of_rows(discriminator, x, active, final_x, labels)
        score = realness(discriminator, d).detach()
        finite = finite_rows(x) & torch.isfinite(score)
        guard.mark(~finite, active)
        if selection == "best":
            keep = finite & (score > final_score[active])
        else:  # threshold: every finite iterate is the latest one; stop the samples that reached D~
            keep = finite
        rows = active[keep]
        final_x[rows] = x.detach()[keep]
        final_h[rows] = hk.detach()[keep]
        final_score[rows] = score[keep]
        final_steps[rows] = k
        moving = finite if selection == "best" else finite & (score < threshold)
        if k == steps or not bool(moving.any()):
            break
        (grad,) = torch.autograd.grad(generator_loss(discriminator, d)[moving].sum(), hk)
        previous = hk.detach()[moving]
        active = active[moving]
        h[active] = guard.keep_finite(previous, project(previous - step_size * grad[moving]), active)
        active = active[~guard.restored[active.cpu()].to(device)]  # frozen samples end at their last finite iterate
        if len(active) == 0:
            break
    return RefinementResult(final_x, final_h, final_score, final_steps, guard)


def _potential_of_rows(
    discriminator: Discriminator, x: torch.Tensor, rows: torch.Tensor, batch_x: torch.Tensor | None, labels: torch.Tensor | None
) -> torch.Tensor:
    """``d`` of the still-moving samples ``x`` (rows ``rows`` of the batch).

    A discriminator that scores groups of samples (a StyleGAN2 minibatch-std group,
    ``min_batch_size > 1``) refuses fewer samples than a group; when only that few are still
    moving, the group is filled with stopped samples of the same batch at their final iterate
    (``batch_x``), whose scores are dropped.
    """
    missing = discriminator.min_batch_size - len(rows)
    if missing <= 0 or batch_x is None:
        return potential(discriminator, x, None if labels is None else labels[rows])
    stopped = torch.ones(batch_x.shape[0], dtype=torch.bool, device=rows.device)
    stopped[rows] = False
    group = torch.cat([rows, stopped.nonzero()[:missing, 0]])
    d = potential(discriminator, torch.cat([x, batch_x[group[len(rows) :]].detach()]), None if labels is None else labels[group])
    return d[: len(rows)]


def mean_realness(discriminator: Discriminator, real_data: RealData, value_range: ValueRange | None) -> float:
    """``D~`` of Algorithm 1: the mean ``D`` (probability, or critic score) over the real data."""
    device = next((p.device for p in discriminator.parameters()), torch.device("cpu"))
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in iter_real(real_data, value_range):
            total += float(realness(discriminator, potential(discriminator, batch.to(device))).double().sum())
            count += batch.shape[0]
    return total / count


@hookimpl
def gan_postproc_register_refiners() -> list[type[Refiner]]:
    return [CollaborativeRefiner]


def _is_shipped_digits_discriminator(discriminator: Discriminator) -> bool:
    """True when ``discriminator`` holds exactly the shipped digits GAN's discriminator weights."""
    from gan_postproc.models.assets import load_shipped_state

    shipped = load_shipped_state("digits", "discriminator.safetensors")
    state = discriminator.module.state_dict()
    return state.keys() == shipped.keys() and all(
        state[k].shape == v.shape and torch.equal(state[k].detach().cpu(), v) for k, v in shipped.items()
    )


#: Real training images the digits rows estimate the threshold from.
DIGITS_REAL_SAMPLES = 1000
#: Toy2d rows: refine the DOT generators' middle layer ``l1`` guided by their WGAN-GP critics.
#: The critic's gradients at that layer are large, so the paper's step size 0.1 overshoots;
#: 0.01 was chosen on 25gaussians (seed 0), the paper's K = 50 steps kept.
TOY2D_LAYER, TOY2D_STEP_SIZE, TOY2D_REAL_SAMPLES = "l1", 0.01, 1000


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    if context.dataset == "digits":
        discriminator = context.adapter.discriminator
        if discriminator is None or not _is_shipped_digits_discriminator(discriminator):
            return []  # the shipped shaped discriminator belongs to the shipped digits GAN only
        shaped = shipped_shaped_digits_discriminator(discriminator)
        refiner = CollaborativeRefiner(
            discriminator=shaped, real_data=context.real_data(DIGITS_REAL_SAMPLES, context.seed), **SHAPED_DIGITS_SETTINGS
        )
        note = (f"layer {refiner.layer}, K={refiner.steps}, lambda={refiner.step_size}, stop at mean real D; "
                "shaped discriminator (Algorithm 2, shipped)")
        return [BenchmarkSetup(name="collaborative", refiners=[refiner], floor=refinement_floor(refiner, context.adapter), note=note)]
    if context.suite == "toy2d":
        refiner = CollaborativeRefiner(
            layer=TOY2D_LAYER, step_size=TOY2D_STEP_SIZE, real_data=context.real_data(TOY2D_REAL_SAMPLES, context.seed)
        )
        note = f"layer {TOY2D_LAYER}, K={refiner.steps}, lambda={TOY2D_STEP_SIZE}, stop at mean real D (Algorithm 1)"
        return [BenchmarkSetup(name="collaborative", refiners=[refiner], floor=refinement_floor(refiner, context.adapter), note=note)]
    return []


def refinement_floor(refiner: CollaborativeRefiner, adapter: Adapter) -> FloorFn:
    """The passes collaborative sampling cannot avoid: for every step a sample takes, one decode
    from the layer and one discriminator pass, both with gradient (read from ``refinement_steps``;
    with ``selection="best"`` every sample takes all ``K`` steps)."""

    def floor(batch: SampleBatch, report: RunReport) -> None:
        discriminator = resolve_discriminator(refiner.discriminator, adapter, refiner.name)
        taken = batch.provenance["refinement_steps"].to(adapter.device)
        if refiner.selection == "best":
            taken = torch.full_like(taken, refiner.steps)
        latents = None if batch.latents is None else batch.latents.to(adapter.device)
        labels = None if batch.labels is None else batch.labels.to(adapter.device)
        with torch.no_grad():
            if refiner.layer == OUTPUT_LAYER:
                h = batch.images.to(adapter.device)  # type: ignore[union-attr]
            else:
                h = adapter.generate_to(latents, labels, refiner.layer)  # type: ignore[arg-type]
        for k in range(int(taken.max()) if len(taken) else 0):
            rows = (taken > k).nonzero().squeeze(1)
            hk = h[rows].detach().requires_grad_(True)
            row_labels = None if labels is None else labels[rows]
            with torch.enable_grad():
                x = hk if refiner.layer == OUTPUT_LAYER else adapter.generate_from(hk, latents[rows], row_labels, refiner.layer)  # type: ignore[index]
                torch.autograd.grad(generator_loss(discriminator, potential(discriminator, x, row_labels)).sum(), hk)

    return floor
