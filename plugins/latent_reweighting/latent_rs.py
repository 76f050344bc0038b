"""Plugin ``latent_rs``: latent rejection sampling with a learned importance network.

Issenhuth, Tanielian, Picard, Mary, "Latent reweighting, an almost free
improvement for GANs" (WACV 2022), Section 3.3, Algorithm 2 (LatentRS):
draw ``z ~ gamma`` and accept it with probability ``P_a(z) = w_phi(z) / m``.
Because ``E_gamma[w_phi] = 1`` and ``w_phi <= m`` (Eq. 6 trains for both),
the accepted latents follow ``gamma_phi`` (Eq. 4) and the expected acceptance
rate is ``1/m``. The rejection happens in latent space, before the generator
runs: a rejected proposal costs one pass of the small MLP ``w_phi`` only.

Weights above ``m`` (the soft clipping of Eq. 6 allows a little overshoot)
are accepted with probability 1, i.e. clipped at ``m``.

This module is also the public home of the importance network and its
training (Algorithm 1): ``from gan_postproc.plugins.latent_reweighting import
ImportanceNetwork, train_importance_network``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.errors import AcceptanceError
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.rejection import RejectionSampler
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.plugins.latent_reweighting.importance_network import (
    ImportanceNetwork,
    as_importance_network,
    benchmark_rows,
    check_max_weight,
)
from gan_postproc.plugins.latent_reweighting.training import ImportanceTraining, train_importance_network

from .defaults import DEFAULTS

__all__ = ["LatentRS", "ImportanceNetwork", "ImportanceTraining", "train_importance_network"]


class LatentRS(RejectionSampler):
    """Latent rejection sampling (Algorithm 2): accept ``z`` with probability ``w_phi(z) / m``.

    Args:
        importance: the trained importance network, or the path of a saved one.
        max_weight: the bound ``m``; default the ``m`` the network was trained with.
        rounds_per_call, round_growth: proposal rounds drawn in the first pass of
            ``w_phi``, and the factor by which each later pass draws more (the
            shared loop then needs a few passes instead of dozens while
            evaluating ``w_phi`` on few proposals beyond the accepted ones; see
            :class:`~gan_postproc.RejectionSampler`).
        max_rounds, min_acceptance_rate: bounds of the shared rejection loop
            (an all-zero network stops with :class:`~gan_postproc.errors.AcceptanceError`).

    Output batch: ``latents`` ``[N, *latent_shape]`` (the generator runs
    afterwards), ``scores["importance_weight"]`` ``[N]`` and
    ``scores["acceptance_probability"]`` ``[N]`` in ``[0, 1]``,
    ``provenance["proposals"]`` ``[N]``.
    """

    name = "latent_rs"

    def __init__(
        self,
        importance: ImportanceNetwork | str | Path,
        *,
        max_weight: float | None = None,
        rounds_per_call: int = DEFAULTS.latent_rs_rounds_per_call,
        round_growth: int = DEFAULTS.latent_rs_round_growth,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__(
            max_rounds=max_rounds, min_acceptance_rate=min_acceptance_rate, rounds_per_call=rounds_per_call, round_growth=round_growth
        )
        self.importance = as_importance_network(importance, self.name)
        self.max_weight = self.importance.max_weight if max_weight is None else check_max_weight(max_weight)

    def setup(self, adapter: Adapter, seed: int) -> None:
        self.importance.check_adapter(adapter, self.name)
        self.importance.to(adapter.device)

    def propose(self, adapter: Adapter, request: SampleRequest, round: int) -> tuple[SampleBatch, torch.Tensor]:
        return self._weigh(adapter, request.draw_latents(adapter, round=round), request.indices)

    def propose_rounds(self, adapter: Adapter, request: SampleRequest, first_round: int, count: int) -> tuple[SampleBatch, torch.Tensor]:
        """All ``count`` rounds in one draw from the prior and one pass of ``w_phi``."""
        if count == 1 or (first_round == 0 and request.latents is not None):  # round 0 uses the caller's latents
            return super().propose_rounds(adapter, request, first_round, count)
        rounds = dataclasses.replace(adapter.prior, shape=(count, *adapter.prior.shape))  # count draws per index
        latents = rounds.sample(request.seed, request.indices, request.attempt, "rounds", first_round).to(adapter.device)
        latents = latents.transpose(0, 1).reshape(count * len(request), *adapter.prior.shape)
        return self._weigh(adapter, latents, request.indices.repeat(count))

    def _weigh(self, adapter: Adapter, latents: torch.Tensor, indices: torch.Tensor) -> tuple[SampleBatch, torch.Tensor]:
        with torch.no_grad():
            weights = self.importance.checked_weights(adapter, latents)
        batch = SampleBatch(latents=latents, indices=indices, value_range=adapter.value_range)
        return batch.with_scores(importance_weight=weights), weights / self.max_weight

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        try:
            return super().sample(adapter, request)
        except AcceptanceError as error:
            probe = request.draw_latents(adapter, "importance-diagnosis")
            with torch.no_grad():
                mean = float(self.importance.weights(adapter, probe).mean())
            raise AcceptanceError(
                f"{error}. {self.name}: the importance network's mean weight on fresh prior draws is {mean:.3g} "
                f"(a trained network averages about 1, giving acceptance 1/m = {1 / self.max_weight:.3g}); "
                "it is degenerate or was trained for another generator: retrain it with train_importance_network"
            ) from error

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "max_weight": self.max_weight, "importance": self.importance.describe()}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [LatentRS]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    return benchmark_rows(context, LatentRS.name, lambda network, settings: LatentRS(network, **settings), "shipped importance network, accept w/m")
