"""Drop-in use: an object with the generator's own call signature that returns improved samples.

An existing sampling loop changes one line::

    G = dropin(chain)                 # was: G = generator
    images = G(z)                     # or G(z, y), or G.generate_images(n)

Semantics: ``G(z)`` returns one sample per row of ``z``, in the generator's
own output range. The caller's ``z`` are the first proposals: refiners refine
``G(z)``; gradient-based samplers start from ``z``; rejection samplers accept
or reject ``z`` and replace rejected rows with fresh draws (keyed by a running
sample counter, so a fixed sequence of calls is reproducible).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..defaults import DEFAULTS
from ..errors import InputError, InputTypeError
from ..validation import check_count, check_options, check_seed, check_tensor
from .chain import Chain
from .refiner import Refiner
from .sampler import LatentSampler, SampleRequest

__all__ = ["DropIn", "dropin"]


class DropIn(nn.Module):
    """Wraps a :class:`~gan_postproc.pipeline.chain.Chain` behind the generator's call signature.

    Attributes not defined here (``nz``, ``z_dim``, ...) are read from the
    wrapped generator, if the adapter has one under ``.generator``.
    """

    def __init__(self, chain: Chain, *, seed: int = DEFAULTS.seed) -> None:
        super().__init__()
        if not isinstance(chain, Chain):
            raise InputTypeError(f"DropIn wraps a gan_postproc.Chain, got {type(chain).__name__}; use dropin(generator, ...) for a module")
        if chain.adapter is None:
            raise InputError("dropin needs a chain with an adapter (a generator to stand in for)")
        self.chain = chain
        self.seed = check_seed(seed)
        self.samples_drawn = 0

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            generator = getattr(self.chain.adapter, "generator", None)
            if generator is None or name.startswith("_"):
                raise
            return getattr(generator, name)

    def _next_indices(self, n: int) -> torch.Tensor:
        indices = torch.arange(self.samples_drawn, self.samples_drawn + n)
        self.samples_drawn += n
        return indices

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Improved samples for latents ``z`` (and labels ``y``), in the generator's output range.

        Extra positional or keyword arguments are refused rather than ignored:
        the chain could not honour them.
        """
        if args or kwargs:
            raise InputError(
                f"the drop-in generator takes (z) or (z, y); got extra arguments {list(kwargs) or len(args)}. "
                "Settings such as truncation belong to the chain's sampler"
            )
        adapter = self.chain.adapter
        adapter.prior.check(z, "z")
        labels = None
        if y is not None:
            native = adapter.labels_from_native(check_tensor(y, "y"))
            labels = self.chain._check_run_labels(native, z.shape[0]).to(torch.int64)  # type: ignore[union-attr]
        request = SampleRequest(indices=self._next_indices(z.shape[0]), seed=self.seed, labels=labels, latents=z)
        batch = self.chain.run_request(request)
        return adapter.to_native(batch.images).to(z.device)

    def generate_images(self, num_images: int, device: torch.device | str | None = None) -> torch.Tensor:
        """``num_images`` improved samples, like torch-mimicry's ``generate_images``."""
        num_images = check_count(num_images, "num_images")
        indices = self._next_indices(num_images)
        batches = [b.images for b in self.chain.iter_indices(indices, seed=self.seed)]
        images = self.chain.adapter.to_native(torch.cat(batches))
        return images.to(device) if device is not None else images


def dropin(
    generator_or_chain: nn.Module | Chain,
    *,
    sampler: LatentSampler | None = None,
    refiners: Sequence[Refiner] = (),
    seed: int = DEFAULTS.seed,
    **adapter_options: Any,
) -> DropIn:
    """A :class:`DropIn` generator (see the module docs for semantics).

    Args:
        generator_or_chain: a ready :class:`Chain`, or a generator module that
            is wrapped in a :class:`~gan_postproc.pipeline.torch_adapter.TorchAdapter`
            built with ``adapter_options`` and chained with ``sampler`` and ``refiners``.
        seed: keys the fresh draws the chain makes.

    Example::

        G = dropin(G, refiners=[BIGRoC(classifier=robust, eps=0.5)], num_classes=10)
        x = G(z, y)   # same call as before, refined samples
    """
    if isinstance(generator_or_chain, Chain):
        if sampler is not None or refiners or adapter_options:
            raise InputError("pass either a ready Chain, or a generator with sampler/refiners/adapter options, not both")
        return DropIn(generator_or_chain, seed=seed)
    from .torch_adapter import TorchAdapter

    check_options(TorchAdapter, {"generator": generator_or_chain, **adapter_options}, "dropin: cannot wrap the generator in a TorchAdapter")
    adapter = TorchAdapter(generator_or_chain, **adapter_options)
    return DropIn(Chain(adapter, sampler, refiners), seed=seed)
