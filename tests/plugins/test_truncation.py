"""The truncation trick: a truncated-normal prior, and the adapters' native truncation hook."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from gan_postproc import Chain, PriorSampler, TorchAdapter
from gan_postproc.errors import AcceptanceError, InputError
from gan_postproc.plugins.truncation import TruncationSampler


class Identity(nn.Module):
    """z [N, 16] -> z: the samples are the latents."""

    nz = 16

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


def identity_adapter(prior: str = "normal") -> TorchAdapter:
    return TorchAdapter(Identity(), prior=prior, output_range=None)


def truncated_normal_variance(psi: float) -> float:
    phi = math.exp(-0.5 * psi**2) / math.sqrt(2 * math.pi)
    mass = math.erf(psi / math.sqrt(2))
    return 1 - 2 * psi * phi / mass


@pytest.mark.parametrize("psi", [0.5, 1.5])
def test_latents_follow_the_truncated_normal(psi, bare_pm):
    chain = Chain(identity_adapter(), TruncationSampler(psi), batch_size=500, plugin_manager=bare_pm)
    z = chain.sample(2000, seed=4).latents.double()
    assert float(z.abs().max()) <= psi
    assert float(z.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(z.var()) == pytest.approx(truncated_normal_variance(psi), rel=0.02)
    assert stats.kstest(z.flatten().numpy(), stats.truncnorm(-psi, psi).cdf).pvalue > 0.01
    # acceptance is counted per coordinate: P(|z_i| <= psi)
    assert chain.report.sampler["acceptance_rate"] == pytest.approx(math.erf(psi / math.sqrt(2)), abs=0.01)


def test_coordinates_inside_the_threshold_are_the_plain_prior_ones(bare_pm):
    plain = Chain(identity_adapter(), PriorSampler(), plugin_manager=bare_pm).sample(300, seed=2).latents
    truncated = Chain(identity_adapter(), TruncationSampler(1.0), plugin_manager=bare_pm).sample(300, seed=2)
    inside = plain.abs() <= 1.0
    assert torch.equal(truncated.latents[inside], plain[inside])
    assert not torch.equal(truncated.latents[~inside], plain[~inside])
    assert int(truncated.provenance["proposals"].max()) > 1


def test_results_do_not_depend_on_the_batch_size(bare_pm):
    small = Chain(identity_adapter(), TruncationSampler(0.7), batch_size=3, plugin_manager=bare_pm).sample(40, seed=5)
    large = Chain(identity_adapter(), TruncationSampler(0.7), batch_size=40, plugin_manager=bare_pm).sample(40, seed=5)
    assert torch.equal(small.latents, large.latents)


def test_a_truncated_normal_prior_is_truncated_further(bare_pm):
    from gan_postproc import LatentPrior

    adapter = TorchAdapter(Identity(), prior=LatentPrior.of(16, "truncated_normal", low=-2.0, high=2.0), output_range=None)
    z = Chain(adapter, TruncationSampler(0.8), batch_size=500, plugin_manager=bare_pm).sample(1000, seed=3).latents.double()
    assert float(z.abs().max()) <= 0.8
    assert float(z.var()) == pytest.approx(truncated_normal_variance(0.8), rel=0.03)


def test_uniform_priors_and_bad_thresholds_are_refused(bare_pm):
    with pytest.raises(InputError, match="Gaussian prior"):
        Chain(identity_adapter("uniform"), TruncationSampler(1.0), plugin_manager=bare_pm).sample(4)
    for psi in (0.0, -1.0, float("nan")):
        with pytest.raises(InputError, match="psi"):
            TruncationSampler(psi)
    with pytest.raises(InputError, match="mode"):
        TruncationSampler(1.0, mode="w")


def test_a_tiny_threshold_stops_with_a_clear_error(bare_pm):
    with pytest.raises(AcceptanceError, match="acceptance collapsed"):
        Chain(identity_adapter(), TruncationSampler(1e-6), batch_size=2000, plugin_manager=bare_pm).sample(2000)
    with pytest.raises(AcceptanceError, match="max_rounds=3"):
        Chain(identity_adapter(), TruncationSampler(0.05, max_rounds=3), plugin_manager=bare_pm).sample(5)


class MappingGenerator(nn.Module):
    """A StyleGAN-like toy: a mapping w = 2 z + 1 (so w_avg = 1) and a synthesis x = w."""

    nz = 16

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2 * z + 1


class NativeTruncationAdapter(TorchAdapter):
    """Implements the native-truncation hook as StyleGAN does: w <- w_avg + psi (w - w_avg)."""

    native_truncation = True
    w_avg = 1.0

    def _generate_truncated(self, latents: torch.Tensor, labels: torch.Tensor | None, psi: float) -> torch.Tensor:
        w = self.generator(latents)
        return self.w_avg + psi * (w - self.w_avg)


def test_native_truncation_is_used_when_the_adapter_has_it(bare_pm):
    adapter = NativeTruncationAdapter(MappingGenerator(), output_range=None)
    batch = Chain(adapter, TruncationSampler(0.5), plugin_manager=bare_pm).sample(50, seed=1)
    plain = Chain(adapter, PriorSampler(), plugin_manager=bare_pm).sample(50, seed=1)
    assert torch.equal(batch.latents, plain.latents)  # untruncated latents, truncated in w
    assert torch.allclose(batch.images - 1.0, 0.5 * (plain.images - 1.0), atol=1e-5)
    prior_mode = Chain(adapter, TruncationSampler(0.5, mode="prior"), plugin_manager=bare_pm).sample(50, seed=1)
    assert float(prior_mode.latents.abs().max()) <= 0.5
    with pytest.raises(InputError, match="psi given explicitly"):
        Chain(adapter, TruncationSampler(), plugin_manager=bare_pm).sample(2)


def test_the_native_hook_refuses_adapters_without_it(bare_pm):
    with pytest.raises(InputError, match="no native truncation"):
        Chain(identity_adapter(), TruncationSampler(0.5, mode="native"), plugin_manager=bare_pm).sample(2)
    with pytest.raises(InputError, match="no native truncation"):
        identity_adapter().generate_truncated(torch.zeros(2, 16), None, 0.5)
    with pytest.raises(InputError, match="psi must be"):
        NativeTruncationAdapter(MappingGenerator(), output_range=None).generate_truncated(torch.zeros(2, 16), None, 0.0)
