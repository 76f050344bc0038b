"""DRS, MH-GAN and SIR on a known density ratio: they recover the target, fail clearly, refuse critics."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch import nn

from gan_postproc import Chain, Discriminator, TorchAdapter
from gan_postproc.errors import AcceptanceError, InputError, UncalibratedDiscriminatorError
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler, drs_f
from gan_postproc.plugins.density_ratio.mh import MetropolisHastingsSampler
from gan_postproc.plugins.density_ratio.ratio import IsotonicCalibrator, UncalibratedDiscriminatorWarning
from gan_postproc.plugins.density_ratio.sir import SamplingImportanceResampling, effective_sample_size

from ...helpers.density_ratio_models import AffineGenerator, critic_adapter, data_cdf, real_data, toy_adapter

N = 1500


def ks_pvalue(samples: torch.Tensor) -> float:
    """Kolmogorov-Smirnov p-value of 1-D samples [N, 1] against p_data."""
    return float(stats.kstest(samples[:, 0].double().numpy(), lambda x: data_cdf(torch.as_tensor(x)).numpy()).pvalue)


def run(sampler, bare_pm, n: int = N, batch_size: int = 500, adapter=None, seed: int = 1):
    chain = Chain(adapter or toy_adapter(), sampler, batch_size=batch_size, plugin_manager=bare_pm)
    return chain.sample(n, seed=seed), chain


def test_the_test_has_power(bare_pm):
    """Plain generator samples fail the KS test that the samplers must pass."""
    batch, _ = run(None, bare_pm)
    assert ks_pvalue(batch.images) < 1e-6


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: DiscriminatorRejectionSampler(percentile=None), id="drs-exact"),
        pytest.param(lambda: MetropolisHastingsSampler(real_data=real_data, calibration=None, chain_length=100), id="mh"),
        pytest.param(lambda: MetropolisHastingsSampler(real_data=real_data, chain_length=100), id="mh-isotonic"),
        pytest.param(lambda: SamplingImportanceResampling(pool_size=50), id="sir"),
    ],
)
def test_samplers_recover_the_target_distribution(make, bare_pm):
    batch, chain = run(make(), bare_pm)
    assert len(batch) == N and batch.indices.tolist() == list(range(N))
    assert ks_pvalue(batch.images) > 0.01
    assert torch.allclose(batch.images, AffineGenerator()(batch.latents))  # images are the latents' samples
    assert 0.0 < chain.report.sampler["acceptance_rate"] <= 1.0


def test_drs_gamma_shift_trades_exactness_for_high_ratios(bare_pm):
    exact, _ = run(DiscriminatorRejectionSampler(percentile=None), bare_pm)
    sampler = DiscriminatorRejectionSampler()
    shifted, _ = run(sampler, bare_pm)
    burn_in = sampler.ratio.log_ratio(*_burn_in(sampler))
    assert sampler.gamma == pytest.approx(float(torch.quantile(drs_f(burn_in, sampler.max_logit, 1e-6), 0.95)), rel=1e-6)
    assert shifted.scores["log_density_ratio"].mean() > exact.scores["log_density_ratio"].mean() + 0.2
    assert set(shifted.scores) >= {"acceptance_probability", "log_density_ratio"}


def _burn_in(sampler):
    from gan_postproc.plugins.density_ratio.real_samples import draw_prior_samples

    _, labels, samples = draw_prior_samples(toy_adapter(), sampler.burn_in, 1, "drs_burn_in")
    return samples, labels


def test_drs_f_is_the_paper_formula_and_finite_at_the_max():
    logits = torch.tensor([-3.0, 0.0, 2.0, 5.0], dtype=torch.float64)
    f = drs_f(logits, 2.0, 1e-6)
    delta = torch.tensor([-5.0, -2.0, 0.0, 0.0], dtype=torch.float64)  # 5.0 > D_M counts as the max
    assert torch.allclose(f, delta - torch.log(1 - torch.exp(delta - 1e-6)))
    assert bool(torch.isfinite(f).all())
    assert torch.allclose(torch.sigmoid(f[:2]), torch.exp(delta[:2]), rtol=1e-4)  # no shift: p = r / M


def test_drs_raises_its_max_when_sampling_beats_the_burn_in(bare_pm):
    sampler = DiscriminatorRejectionSampler(burn_in=2, percentile=None)
    run(sampler, bare_pm, n=200)
    assert sampler.max_updates >= 1
    assert sampler.max_logit == pytest.approx(float(toy_adapter().discriminator(torch.tensor([[1.1857]]))), abs=0.05)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: DiscriminatorRejectionSampler(update_max=False), id="drs"),
        pytest.param(lambda: MetropolisHastingsSampler(real_data=real_data, chain_length=30), id="mh"),
        pytest.param(lambda: SamplingImportanceResampling(), id="sir"),
    ],
)
def test_results_do_not_depend_on_the_batch_size(make, bare_pm):
    small, _ = run(make(), bare_pm, n=60, batch_size=7)
    large, _ = run(make(), bare_pm, n=60, batch_size=60)
    assert torch.equal(small.latents, large.latents)
    assert torch.allclose(small.images, large.images)


def test_mh_and_sir_report_effective_acceptance(bare_pm):
    _, chain = run(MetropolisHastingsSampler(real_data=real_data, chain_length=50), bare_pm, n=200)
    report = chain.report.sampler
    assert report["proposals"] == 200 * 50 and report["effective_acceptance"] == report["acceptance_rate"] > 0.2
    sir = SamplingImportanceResampling(pool_size=20)
    batch, chain = run(sir, bare_pm, n=200)
    report = chain.report.sampler
    assert report["proposals"] == 200 * 20 and report["accepted"] == 200
    assert 1.0 < report["mean_effective_sample_size"] < 20.0
    assert report["effective_acceptance"] == pytest.approx(report["mean_effective_sample_size"] / 20)
    assert torch.allclose(batch.scores["effective_sample_size"].mean(), torch.tensor(report["mean_effective_sample_size"]).float())


def test_sir_flattening_and_clipping(bare_pm):
    uniform, chain = run(SamplingImportanceResampling(pool_size=8, alpha=0.0), bare_pm, n=100)
    assert chain.report.sampler["effective_acceptance"] == pytest.approx(1.0)
    clipped = SamplingImportanceResampling(clip=1.0)
    assert float(clipped.log_weights(torch.tensor([-1.0, 0.5, 3.0], dtype=torch.float64)).max()) == 0.0
    log_w = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -1e9, -1e9, -1e9]], dtype=torch.float64)
    assert torch.allclose(effective_sample_size(log_w), torch.tensor([4.0, 1.0], dtype=torch.float64))


def test_mh_restarts_chains_that_never_leave_their_real_start(bare_pm):
    best_real = torch.full((50, 1), 1.1857)  # every real start sits at the density ratio's maximum
    sampler = MetropolisHastingsSampler(real_data=best_real, calibration=None, chain_length=1)
    batch, chain = run(sampler, bare_pm, n=100)
    restarted = batch.provenance["restarted"].bool()
    assert int(restarted.sum()) == chain.report.sampler["restarts"] > 30  # P(stuck) = 1 - E[r / r_max] ~ 0.57
    assert torch.allclose(batch.images, AffineGenerator()(batch.latents))  # a generated sample, never the real one
    assert not bool((batch.images == 1.1857).all(dim=1).any())


def test_critics_are_refused_unless_allowed(bare_pm):
    for make in (
        lambda **kw: DiscriminatorRejectionSampler(**kw),
        lambda **kw: MetropolisHastingsSampler(real_data=real_data, chain_length=5, **kw),
        lambda **kw: SamplingImportanceResampling(**kw),
    ):
        with pytest.raises(UncalibratedDiscriminatorError, match="calibrate_discriminator"):
            run(make(), bare_pm, n=10, adapter=critic_adapter())
        with pytest.warns(UncalibratedDiscriminatorWarning, match="allow_uncalibrated"):
            batch, _ = run(make(allow_uncalibrated=True), bare_pm, n=10, adapter=critic_adapter())
        assert len(batch) == 10


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), 0.3)


@pytest.mark.parametrize("output", ["logit", "probability"])
def test_a_constant_discriminator_is_refused(output, bare_pm):
    adapter = TorchAdapter(AffineGenerator(), latent_shape=1, output_range=None, discriminator=Discriminator(Constant(), output, input_range=None))
    for sampler in (DiscriminatorRejectionSampler(), MetropolisHastingsSampler(real_data=real_data), SamplingImportanceResampling()):
        with pytest.raises(InputError, match="same score"):
            run(sampler, bare_pm, n=5, adapter=adapter)


def test_zero_acceptance_stops_with_a_clear_error(bare_pm):
    with pytest.raises(AcceptanceError, match="after max_rounds=20"):
        run(DiscriminatorRejectionSampler(gamma=60.0, max_rounds=20), bare_pm, n=10)
    with pytest.raises(AcceptanceError, match="acceptance collapsed"):
        run(DiscriminatorRejectionSampler(gamma=60.0, burn_in=100), bare_pm, n=5000, batch_size=5000)
    with pytest.raises(AcceptanceError, match="mh: acceptance collapsed"):
        run(MetropolisHastingsSampler(real_data=real_data, chain_length=100, min_acceptance_rate=0.99), bare_pm, n=200)


class Step(nn.Module):
    """A saturated discriminator: probability exactly 1 above x = 0.8, exactly 0 below."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0] > 0.8).float()


def test_calibration_handles_probabilities_of_exactly_zero_and_one(bare_pm):
    real, fake = torch.linspace(1.0, 2.0, 100, dtype=torch.float64), torch.linspace(-2.0, 0.9, 300, dtype=torch.float64)
    calibrator = IsotonicCalibrator.fit(real, fake)  # perfectly separated: the raw fit is exactly 0 and 1
    p = calibrator.probability(torch.tensor([-5.0, 0.0, 1.5, 9.0], dtype=torch.float64))
    assert bool((p > 0).all()) and bool((p < 1).all())
    assert float(p[-1]) == pytest.approx(101 / 102) and float(p[0]) == pytest.approx(1 / 302)
    assert bool(torch.isfinite(calibrator.log_ratio(torch.tensor([-1e9, 1e9], dtype=torch.float64))).all())
    adapter = TorchAdapter(AffineGenerator(), latent_shape=1, output_range=None, discriminator=Discriminator(Step(), "probability", input_range=None))
    sampler = MetropolisHastingsSampler(real_data=real_data, chain_length=40)
    batch, chain = run(sampler, bare_pm, n=400, adapter=adapter)
    assert bool(torch.isfinite(batch.scores["log_density_ratio"]).all())
    # Calibrated, the saturated D says p(real | x > 0.8) = P_data / (P_data + P_g) = 0.5 / (0.5 + 0.297) ...
    high, low = sampler.ratio.calibrator.probability(torch.tensor([16.0, -16.0], dtype=torch.float64)).tolist()
    assert high == pytest.approx(0.5 / (0.5 + 0.2969), abs=0.04) and low == pytest.approx(0.5 / (0.5 + 0.7031), abs=0.04)
    # ... so the chains put p_data's mass, 1/2, above 0.8 (the generator puts 0.30 there).
    assert float((batch.images > 0.8).float().mean()) == pytest.approx(0.5, abs=0.07)
    assert chain.report.sampler["effective_acceptance"] > 0


def test_isotonic_calibration_report_is_measured_on_held_out_samples(bare_pm):
    sampler = MetropolisHastingsSampler(real_data=real_data, calibration_size=400, chain_length=5)
    run(sampler, bare_pm, n=10)
    report = sampler.describe()["calibration_report"]
    assert report["held_out"] == 200
    assert abs(report["z_calibrated"]) < 3 and report["log_loss_calibrated"] < 0.7


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(InputError, match="real_data"):
        MetropolisHastingsSampler()
    with pytest.raises(InputError, match="percentile"):
        DiscriminatorRejectionSampler(percentile=120)
    with pytest.raises(InputError, match="pool_size"):
        SamplingImportanceResampling(pool_size=1)
    with pytest.raises(InputError, match="calibration"):
        SamplingImportanceResampling(calibration="platt")
    with pytest.raises(InputError, match="needs real samples"):
        DiscriminatorRejectionSampler(calibration="isotonic")
    with pytest.raises(InputError, match="Discriminator"):
        SamplingImportanceResampling(discriminator=Constant())



def test_real_data_can_be_named_for_the_command_line(bare_pm):
    sampler = MetropolisHastingsSampler(real_data="tests.helpers.density_ratio_models:real_data_tensor", chain_length=5)
    batch, _ = run(sampler, bare_pm, n=20)
    assert len(batch) == 20 and sampler.ratio.real is not None
    with pytest.raises(InputError, match="has no function"):
        MetropolisHastingsSampler(real_data="tests.helpers.density_ratio_models:nope")
