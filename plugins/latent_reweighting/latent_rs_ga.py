"""Plugin ``latent_rs_ga``: latent rejection sampling followed by latent gradient ascent.

Issenhuth, Tanielian, Picard, Mary, "Latent reweighting, an almost free
improvement for GANs" (WACV 2022), Section 3.3 (3), latentRS+GA: "In a first
step, we avoid low-quality samples with latentRS. Then, we use latentGA to
further improve the remaining generated samples." The rejection step is
:class:`~gan_postproc.plugins.latent_reweighting.LatentRS` (Algorithm 2), the ascent
:func:`~gan_postproc.plugins.latent_reweighting.ascend_importance`; the paper's
Table 2 finds this combination the best of its methods at about a third of
the cost of DOT.
"""

from __future__ import annotations

from pathlib import Path

from gan_postproc import hookimpl
from gan_postproc.bench.setups import BenchmarkContext, BenchmarkSetup
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.sampler import LatentSampler, SampleRequest
from gan_postproc.plugins.latent_reweighting.importance_network import ImportanceNetwork, benchmark_rows
from gan_postproc.plugins.latent_reweighting.latent_ga import ascend_batch
from gan_postproc.plugins.latent_reweighting.latent_rs import LatentRS
from gan_postproc.validation import check_count, check_positive

from .defaults import DEFAULTS

__all__ = ["LatentRSGA"]


class LatentRSGA(LatentRS):
    """LatentRS, then ``steps`` gradient-ascent steps of size ``step_size`` on ``w_phi`` for each accepted latent.

    Args:
        importance: the trained importance network, or the path of a saved one.
        steps, step_size: the ascent (see :class:`~gan_postproc.plugins.latent_reweighting.LatentGA`).
        max_weight, rounds_per_call, round_growth, max_rounds, min_acceptance_rate: the rejection step
            (see :class:`~gan_postproc.plugins.latent_reweighting.LatentRS`).

    Output batch: as :class:`LatentRS`, with ascended ``latents`` and
    ``scores["importance_weight_start"]`` / ``scores["importance_weight"]``
    before and after the ascent.
    """

    name = "latent_rs_ga"

    def __init__(
        self,
        importance: ImportanceNetwork | str | Path,
        *,
        steps: int = DEFAULTS.latent_ga_steps,
        step_size: float = DEFAULTS.latent_ga_step_size,
        max_weight: float | None = None,
        rounds_per_call: int = DEFAULTS.latent_rs_rounds_per_call,
        round_growth: int = DEFAULTS.latent_rs_round_growth,
        max_rounds: int = DEFAULTS.rejection_max_rounds,
        min_acceptance_rate: float = DEFAULTS.rejection_min_acceptance_rate,
    ) -> None:
        super().__init__(
            importance, max_weight=max_weight, rounds_per_call=rounds_per_call, round_growth=round_growth, max_rounds=max_rounds, min_acceptance_rate=min_acceptance_rate
        )
        self.steps = check_count(steps, "steps")
        self.step_size = check_positive(step_size, "step_size")

    def sample(self, adapter: Adapter, request: SampleRequest) -> SampleBatch:
        accepted = super().sample(adapter, request)
        return ascend_batch(self.importance, adapter, accepted, steps=self.steps, step_size=self.step_size, method=self.name)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "steps": self.steps, "step_size": self.step_size}


@hookimpl
def gan_postproc_register_samplers() -> list[type[LatentSampler]]:
    return [LatentRSGA]


@hookimpl
def gan_postproc_benchmark_setups(context: BenchmarkContext) -> list[BenchmarkSetup]:
    return benchmark_rows(context, LatentRSGA.name, lambda network, settings: LatentRSGA(network, **settings), "shipped importance network, RS then ascent")
