"""Plugin ``truncation``: the truncation trick.

Sampling latents from a truncated prior trades diversity for fidelity
(Brock, Donahue, Simonyan, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis", ICLR 2019, Sec. 3.1; Marchesi 2017; used with
psi = 1.5 by Slim's incremental-learning paper). Two forms:

* ``mode="prior"``: for a Gaussian prior, every coordinate with
  ``|z_i| > psi`` is redrawn until it falls inside ``[-psi, psi]``: a sample
  of the standard normal truncated to that interval (for a prior that is
  already a truncated normal on ``[low, high]``, as BigGAN's, the normal
  truncated to ``[max(low, -psi), min(high, psi)]``). Redraws of coordinate
  ``i`` of sample ``k`` in round ``r`` are keyed by ``(seed, k, r)``, so the
  result does not depend on the batch; coordinates already inside are kept,
  so a truncated latent equals the plain prior latent wherever that one was
  inside.
* ``mode="native"``: for adapters whose framework truncates in its own way
  (``adapter.native_truncation``): StyleGAN-style mapping networks move
  ``w`` toward its mean, ``w <- w_avg + psi (w - w_avg)`` (Karras et al.
  2019, Sec. B), and BigGAN's ``truncation`` argument also selects
  batch-norm statistics; the adapter's
  :meth:`~gan_postproc.Adapter.generate_truncated` does it.
  ``"auto"`` (the default) picks native when the adapter has it.

Acceptance in prior mode is counted per coordinate (accepted draws over
drawn ones; ``erf(psi / sqrt 2)`` in expectation); the loop is bounded like
the rejection samplers' and stops with an error if it collapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup, generator_floor
from gan_postproc.defaults import Defaults
from gan_postproc.errors import AcceptanceError, InputError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.validation import check_count, check_positive, check_probability

__all__ = ["TruncationSampler"]


@dataclass(frozen=True)
class TruncationDefaults(Defaults):
    """The core's defaults (:class:`gan_postproc.defaults.Defaults`) plus truncation's, read by its signature and the benchmarks."""

    #: Threshold psi of the truncated-normal prior: |z_i| <= psi (Slim's incremental-learning paper: 1.5).
    truncation_psi: float = 1.5


DEFAULTS = TruncationDefaults()

TruncationMode = Literal["auto", "prior", "native"]


class TruncationSampler(LatentSampler):
    """Truncated latents: a truncated-normal prior (|z_i| <= psi), or the framework's own truncation.

    Args:
        psi: the threshold. Prior mode: coordinates lie in ``[-psi, psi]``
            (default ``DEFAULTS.truncation_psi`` = 1.5). Native mode: the
            framework's parameter (e.g. 0.7 for StyleGAN); required there,
            since its meaning differs by framework.
        mode: ``"auto"``, ``"prior"`` or ``"native"`` (see the module docstring).
        max_rounds: most redraws of a coordinate before giving up.
        min_acceptance_rate: give up when fewer than this fraction of the
            drawn coordinates of a request were inside, once
            ``DEFAULTS.rejection_min_proposals_for_check`` were drawn.
    """

    name = "truncation"

    def __init__(
        self,
        psi: float | None = None,
        *,
        mode: TruncationMode = "auto",
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "prior", "native"):
            raise InputError(f"mode must be 'auto', 'prior' or 'native', got {mode!r}")
        if psi is not None:
            psi = check_positive(psi, "psi")
        self.psi = psi
        self.mode = mode
        self.max_rounds = check_count(max_rounds, "max_rounds")
        self.min_acceptance_rate = check_probability(min_acceptance_rate, "min_acceptance_rate", open_high=True)
        self.resolved_mode: Literal["prior", "native"] | None = None

    def setup(self, adapter: Adapter, seed: int) -> None:
        """Pick the mode for ``adapter`` and check it applies (a Gaussian prior, or native truncation)."""
        self.resolved_mode = self._resolve(adapter)

    def _resolve(self, adapter: Adapter) -> Literal["prior", "native"]:
        if self.mode == "native" or (self.mode == "auto" and adapter.native_truncation):
            if not adapter.native_truncation:
                raise InputError(f"truncation: mode='native', but {type(adapter).__name__} has no native truncation; use mode='prior'")
            if self.psi is None:
                raise InputError(
                    "truncation: native truncation needs psi given explicitly (its meaning is the framework's: "
                    "StyleGAN moves w toward w_avg by psi, e.g. 0.7; BigGAN takes a truncation in (0, 1])"
                )
            return "native"
        if adapter.prior.kind not in ("normal", "truncated_normal"):
            raise InputError(
                f"truncation: the truncated normal needs a Gaussian prior, but this generator's prior is "
                f"{adapter.prior.kind} on [{adapter.prior.low:g}, {adapter.prior.high:g}]; truncation does not apply "
                "(shrink a uniform prior's bounds yourself if you want a similar effect)"
            )
        return "prior"

    @property
    def threshold(self) -> float:
        """The psi in use: the given one, or the default for prior mode."""
        return self.psi if self.psi is not None else DEFAULTS.truncation_psi

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        mode = self.resolved_mode if self.resolved_mode is not None else self._resolve(adapter)
        latents = request.draw_latents(adapter)
        labels = request.draw_labels(adapter)
        if mode == "native":
            with torch.no_grad():
                images = adapter.generate_truncated(latents, labels, self.threshold)
            self.stats.record(torch.ones(len(request), dtype=torch.bool), None if labels is None else labels.cpu())
            return SampleBatch(images=images, latents=latents, labels=labels, indices=request.indices, value_range=adapter.value_range)
        latents, rounds = self._truncate(adapter, request, latents)
        return SampleBatch(
            latents=latents,
            labels=labels,
            indices=request.indices,
            provenance={"proposals": rounds.to(latents.device)},
            value_range=adapter.value_range,
        )

    def _truncate(self, adapter: Adapter, request: SampleRequest, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Redraw every coordinate outside ``[-psi, psi]`` until none is; returns latents and rounds used per sample."""
        psi = self.threshold
        latents = latents.clone()
        outside = latents.abs() > psi
        rounds = torch.ones(len(request), dtype=torch.int64)
        drawn, inside = latents.numel(), latents.numel() - int(outside.sum())
        self.stats.record(~outside.flatten().cpu())
        for round in range(1, self.max_rounds + 1):
            rows = outside.flatten(1).any(1).cpu()
            if not bool(rows.any()):
                return latents, rounds
            if drawn >= DEFAULTS.rejection_min_proposals_for_check and inside / drawn < self.min_acceptance_rate:
                raise AcceptanceError(
                    f"truncation: acceptance collapsed: {inside} of {drawn} drawn coordinates fell inside "
                    f"[-{psi:g}, {psi:g}] (rate {inside / drawn:.2e} < min_acceptance_rate {self.min_acceptance_rate:g}); "
                    "psi is too small for redrawing; raise psi"
                )
            fresh = request.subset(rows).draw_latents(adapter, "truncation", round=round)
            redraw = outside[rows.to(outside.device)]
            accepted = redraw & (fresh.abs() <= psi)
            block = latents[rows.to(latents.device)]
            latents[rows.to(latents.device)] = torch.where(accepted, fresh, block)
            outside[rows.to(outside.device)] = redraw & ~accepted
            rounds[rows] += 1
            drawn, inside = drawn + int(redraw.sum()), inside + int(accepted.sum())
            self.stats.record(accepted[redraw].flatten().cpu())
        raise AcceptanceError(
            f"truncation: {int(outside.flatten(1).any(1).sum())} of {len(request)} samples still had coordinates outside "
            f"[-{psi:g}, {psi:g}] after max_rounds={self.max_rounds} redraws; raise psi or max_rounds"
        )

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "psi": self.threshold, "mode": self.resolved_mode or self.mode}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [TruncationSampler]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    if context.suite not in ("demo", "digits") or context.adapter.prior.kind != "normal":
        return []
    note = f"truncated-normal prior, psi = {DEFAULTS.truncation_psi:g} (Slim's value)"
    return [BenchmarkSetup("truncation", TruncationSampler(), floor=generator_floor(context.adapter), note=note)]
