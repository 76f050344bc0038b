"""Small methods for the framework integration tests, each acting on a known part of the output.

* :class:`EvenRowAscent`, a gradient sampler: latents of samples with an
  even global index take a few normalised gradient-ascent steps on a score of
  the generated image (the adapter's discriminator if it has one, else the
  mean pixel value); odd samples keep their prior latents.
* :class:`EvenRowLatentRefiner`: the same ascent as a latent-space refiner
  (it changes ``batch.latents`` and regenerates ``batch.images``).
* :class:`QuadrantRefiner`: an image refiner that brightens the top-left
  quadrant and leaves every other pixel untouched.

So an end-to-end test knows where the output must differ from the plain one:
in even rows for the first two, in the top-left quadrant for the last.
"""

from __future__ import annotations

import torch

from gan_postproc import Adapter, LatentSampler, Refiner, SampleBatch, SampleRequest
from gan_postproc.pipeline.ranges import clamp_to


def image_score(adapter: Adapter, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``[N]`` score to ascend: the attached discriminator, else the mean pixel value."""
    if adapter.discriminator is not None:
        return adapter.discriminator(images, labels if adapter.discriminator.conditional else None)
    return images.flatten(1).mean(1)


def ascend(adapter: Adapter, latents: torch.Tensor, labels: torch.Tensor | None, steps: int, step_size: float) -> torch.Tensor:
    """``steps`` normalised gradient-ascent steps of :func:`image_score` in latent space (projected onto the prior)."""
    z = latents.detach()
    with torch.enable_grad():
        for _ in range(steps):
            z = z.detach().requires_grad_(True)
            score = image_score(adapter, adapter.generate(z, labels), labels)
            (grad,) = torch.autograd.grad(score.sum(), z)
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (z.dim() - 1))
            z = adapter.prior.project(z + step_size * grad / norm)
    return z.detach()


def even_rows(indices: torch.Tensor, device: torch.device) -> torch.Tensor:
    return (indices % 2 == 0).to(device)


class EvenRowAscent(LatentSampler):
    """Gradient ascent from the prior (or the caller's) latents, for even sample indices only."""

    name = "test_even_row_ascent"

    def __init__(self, steps: int = 3, step_size: float = 0.5) -> None:
        super().__init__()
        self.steps, self.step_size = steps, step_size

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        z = request.draw_latents(adapter)
        labels = request.draw_labels(adapter)
        even = even_rows(request.indices, z.device)
        if bool(even.any()):
            z = z.clone()
            z[even] = ascend(adapter, z[even], None if labels is None else labels[even], self.steps, self.step_size)
        self.stats.record(torch.ones(len(request), dtype=torch.bool))
        return SampleBatch(latents=z, labels=labels, indices=request.indices, value_range=adapter.value_range)


class EvenRowLatentRefiner(Refiner):
    """A latent-space refiner: gradient ascent on the latents of even sample indices, images regenerated."""

    name = "test_even_row_latent"

    def __init__(self, steps: int = 3, step_size: float = 0.5) -> None:
        self.steps, self.step_size = steps, step_size

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        assert adapter is not None and batch.latents is not None
        even = even_rows(batch.indices, batch.latents.device)
        if not bool(even.any()):
            return batch
        z = batch.latents.clone()
        labels = batch.labels
        z[even] = ascend(adapter, z[even], None if labels is None else labels[even], self.steps, self.step_size)
        with torch.no_grad():
            images = adapter.generate(z, labels)
        return batch.replace(latents=z, images=images)


class QuadrantRefiner(Refiner):
    """Adds ``delta`` to the top-left quadrant of every image (clamped to the batch's range)."""

    name = "test_quadrant"

    def __init__(self, delta: float = 0.5) -> None:
        self.delta = delta
        self.seen_labels: list[torch.Tensor | None] = []

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        self.seen_labels.append(batch.labels)
        images = batch.images.clone()
        h, w = images.shape[-2] // 2, images.shape[-1] // 2
        images[..., :h, :w] = clamp_to(images[..., :h, :w] + self.delta, batch.value_range)
        return batch.replace(images=images)


def quadrant_mask(shape: tuple[int, ...], channels_last: bool = False) -> torch.Tensor:
    """Bool mask of the top-left quadrant for images of ``shape`` (NCHW, or NHWC with ``channels_last``)."""
    mask = torch.zeros(shape, dtype=torch.bool)
    if channels_last:
        mask[:, : shape[1] // 2, : shape[2] // 2, :] = True
    else:
        mask[..., : shape[-2] // 2, : shape[-1] // 2] = True
    return mask


def assert_differs_only_in_rows(out: torch.Tensor, plain: torch.Tensor, rows: torch.Tensor) -> None:
    """Rows outside the ``[N]`` bool mask ``rows`` bit-identical to the plain output, every row inside changed."""
    rows = rows.cpu()
    assert torch.equal(out[~rows], plain[~rows]), "the method changed samples it does not act on"
    changed = (out[rows] != plain[rows]).flatten(1).any(1)
    assert bool(changed.all()), f"the method left rows it acts on unchanged: {changed.tolist()}"


def assert_differs_only_in_even_rows(out: torch.Tensor, plain: torch.Tensor, indices: torch.Tensor) -> None:
    """Odd rows bit-identical to the plain output, every even row changed."""
    assert_differs_only_in_rows(out, plain, indices % 2 == 0)


def assert_images(images: object, shape: tuple[int, ...], value_range: tuple[float, float] = (-1.0, 1.0)) -> None:
    """A float32 tensor of exactly ``shape``, finite, within ``value_range``."""
    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32, type(images)
    assert tuple(images.shape) == shape, f"shape {tuple(images.shape)}, expected {shape}"
    assert bool(torch.isfinite(images).all())
    assert value_range[0] <= float(images.min()) and float(images.max()) <= value_range[1]


class EvenRowLayerRefiner(Refiner):
    """Collaborative-sampling-style refiner: ascent on the activation at ``layer`` for even sample indices."""

    name = "test_even_row_layer"

    def __init__(self, layer: str, steps: int = 3, step_size: float = 0.5) -> None:
        self.layer, self.steps, self.step_size = layer, steps, step_size

    def refine(self, batch: SampleBatch, adapter: Adapter | None) -> SampleBatch:
        assert adapter is not None
        even = even_rows(batch.indices, batch.latents.device)
        z, labels = batch.latents[even], None if batch.labels is None else batch.labels[even]
        with torch.no_grad():
            h = adapter.generate_to(z, labels, self.layer)
        with torch.enable_grad():
            for _ in range(self.steps):
                h = h.detach().requires_grad_(True)
                score = image_score(adapter, adapter.generate_from(h, z, labels, self.layer), labels)
                (grad,) = torch.autograd.grad(score.sum(), h)
                h = h + self.step_size * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (h.dim() - 1))
        images = batch.images.clone()
        with torch.no_grad():
            images[even] = adapter.generate_from(h.detach(), z, labels, self.layer)
        return batch.replace(images=images)


def assert_differs_only_in_quadrant(out: torch.Tensor, before: torch.Tensor) -> None:
    mask = quadrant_mask(tuple(out.shape))
    assert torch.equal(out[~mask], before[~mask]), "the refiner changed pixels outside the quadrant"
    assert bool((out[mask] != before[mask]).any()), "the refiner changed nothing"


def check_chain_end_to_end(adapter: Adapter, n: int = 8, *, seed: int = 0, image_shape: tuple[int, ...] | None = None) -> SampleBatch:
    """Run the prior, a gradient sampler, and the sampler plus an image refiner through ``adapter``.

    Checks the output type, shape, dtype and value range, that the sampler
    changes exactly the even rows, and that the refiner changes exactly the
    top-left quadrant. Returns the sampled-and-refined batch.
    """
    from gan_postproc import Chain

    plain = Chain(adapter, batch_size=n).sample(n, seed=seed)
    sampled = Chain(adapter, EvenRowAscent(), batch_size=n).sample(n, seed=seed)
    both = Chain(adapter, EvenRowAscent(), [QuadrantRefiner()], batch_size=n).sample(n, seed=seed)
    for batch in (plain, sampled, both):
        assert isinstance(batch, SampleBatch) and len(batch) == n
        assert batch.images.dtype == torch.float32 and batch.images.dim() == 4
        if image_shape is not None:
            assert tuple(batch.images.shape[1:]) == image_shape
        assert float(batch.images.min()) >= -1.0 and float(batch.images.max()) <= 1.0
        assert torch.equal(batch.indices, torch.arange(n))
    assert_differs_only_in_even_rows(sampled.images, plain.images, plain.indices)
    assert torch.equal(both.latents, sampled.latents)
    assert_differs_only_in_quadrant(both.images, sampled.images)
    return both


def check_sampler_and_layer_refiners(adapter: Adapter, make_sampler, layer: str, image_shape: tuple[int, ...], *, n: int = 8, seed: int = 1) -> None:
    """A latent sampler (``make_sampler()``), then collaborative sampling at the inner ``layer`` keeping the
    best iterate, then DOT in target space, through ``adapter`` and its discriminator.

    Checks: the refiners keep the sampler's latents; images valid; collaborative never ends below the
    proposal's ``D`` and moves some samples; DOT then moves every image.
    """
    from gan_postproc import Chain
    from gan_postproc.pipeline.discriminator_readings import potential, realness
    from gan_postproc.plugins.collaborative import CollaborativeRefiner
    from gan_postproc.plugins.dot import DOT

    def collaborative() -> CollaborativeRefiner:
        return CollaborativeRefiner(layer=layer, steps=2, step_size=0.1, selection="best")

    proposals = Chain(adapter, make_sampler(), batch_size=n).sample(n, seed=seed)
    refined = Chain(adapter, make_sampler(), [collaborative()], batch_size=n).sample(n, seed=seed)
    assert torch.equal(refined.latents, proposals.latents)
    assert_images(refined.images, (n, *image_shape))
    discriminator = adapter.discriminator
    assert discriminator is not None
    with torch.no_grad():  # D as the refiner compares it: a probability, or the critic's score (padded to its group)
        before = realness(discriminator, potential(discriminator, proposals.images, proposals.labels))
    assert bool((refined.scores["discriminator"] >= before).all()) and bool((refined.provenance["refinement_steps"] > 0).any())
    both = Chain(adapter, make_sampler(), [collaborative(), DOT(steps=2, k_eff=1.0)], batch_size=n).sample(n, seed=seed)
    assert_images(both.images, (n, *image_shape))
    assert bool((both.images != refined.images).flatten(1).any(1).all())
