"""StyleGAN2 adapters (NVlabs and rosinality conventions) on small in-repo networks that follow them."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch

from gan_postproc import Chain, get_registry
from gan_postproc import dropin
from gan_postproc.errors import CheckpointError, InputError, UnsafeCheckpointError
from gan_postproc.integrations.stylegan2 import (
    CodeExecutionWarning,
    RosinalityStyleGAN2Adapter,
    StyleGAN2Adapter,
    load_nvlabs_pickle,
    load_rosinality_checkpoint,
    stylegan2_adapter,
    stylegan2_discriminator,
)
from gan_postproc.plugins.collaborative import CollaborativeRefiner
from gan_postproc.plugins.ddls import DDLS
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler
from gan_postproc.plugins.truncation import TruncationSampler

from ..helpers.integration_methods import (
    EvenRowLayerRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
)
from ..helpers.stylegan2_standins import nvlabs_pair, rosinality_pair


def _one_hot(labels, k):
    return torch.nn.functional.one_hot(labels, k).float()


@pytest.mark.parametrize("c_dim", [0, 3])
def test_nvlabs_adapter_calls_the_generator_with_its_convention(c_dim):
    G, _ = nvlabs_pair(c_dim)
    adapter = StyleGAN2Adapter(G, truncation_psi=0.7, truncation_cutoff=2)
    z = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 0, 1]) if c_dim else None
    c = _one_hot(labels, 3) if c_dim else torch.zeros(5, 0)
    expected = G(z, c, truncation_psi=0.7, truncation_cutoff=2, noise_mode="const").clamp(-1, 1)
    assert torch.equal(adapter.generate(z, labels), expected)
    assert adapter.num_classes == (3 if c_dim else None) and adapter.prior.shape == (8,)
    assert adapter.layer_names() == ["latent", "mapping", "b4", "b8", "output"]
    assert adapter.mapping_layer == "mapping"
    ws = adapter.generate_to(z, labels, "mapping")
    assert torch.equal(ws, G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=2))
    if c_dim:
        assert adapter.labels_from_native(c).tolist() == labels.tolist()


def test_w_space_truncation_pulls_towards_w_avg_and_respects_the_cutoff():
    G, _ = nvlabs_pair()
    z = torch.randn(4, 8)
    full = StyleGAN2Adapter(G, truncation_psi=0.0).generate_to(z, None, "mapping")
    assert torch.allclose(full, G.mapping.w_avg.expand_as(full))
    cut = StyleGAN2Adapter(G, truncation_psi=0.0, truncation_cutoff=2).generate_to(z, None, "mapping")
    untruncated = StyleGAN2Adapter(G).generate_to(z, None, "mapping")
    assert torch.allclose(cut[:, :2], G.mapping.w_avg.expand(4, 2, 8)) and torch.equal(cut[:, 2:], untruncated[:, 2:])
    images = StyleGAN2Adapter(G, truncation_psi=0.0).generate(z)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)


@pytest.mark.parametrize("convention", ["nvlabs", "rosinality"])
def test_the_truncation_sampler_gives_exactly_the_frameworks_own_w_space_truncation(convention):
    G, _ = nvlabs_pair(3) if convention == "nvlabs" else rosinality_pair()
    options = {"truncation_cutoff": 3} if convention == "nvlabs" else {}
    adapter = stylegan2_adapter(G, **options)  # the constructor's psi (1.0) stays the default of generate
    chain = Chain(adapter, TruncationSampler(0.6), batch_size=8)
    truncated = chain.sample(8, seed=3)
    assert chain.sampler.resolved_mode == "native" and adapter.native_truncation
    z, labels = truncated.latents, truncated.labels
    with torch.no_grad():
        if convention == "nvlabs":
            own = G(z, _one_hot(labels, 3), truncation_psi=0.6, truncation_cutoff=3, noise_mode="const")
        else:
            noise = [getattr(G.noises, f"noise_{i}") for i in range(G.num_layers)]
            own = G([z], truncation=0.6, truncation_latent=adapter.truncation_latent, noise=noise)[0]
    assert torch.equal(truncated.images, own.clamp(-1, 1))
    plain = Chain(adapter, batch_size=8).sample(8, seed=3)
    assert torch.equal(plain.latents, z)  # the same prior latents: only the truncation differs
    assert bool((plain.images != truncated.images).flatten(1).any(1).all())
    with torch.no_grad():
        assert torch.equal(adapter.generate(z, labels), plain.images)
    with pytest.raises(InputError, match=r"psi \(w-space truncation\)"):
        Chain(adapter, TruncationSampler(1.5)).sample(4)


@pytest.mark.parametrize("convention", ["nvlabs", "rosinality"])
@pytest.mark.parametrize("layer", ["mapping", "b4", "b8"])
def test_split_at_mapping_and_blocks_reproduces_the_generator(convention, layer):
    G, _ = nvlabs_pair(3) if convention == "nvlabs" else rosinality_pair()
    adapter = stylegan2_adapter(G, truncation_psi=0.8)
    z = torch.randn(3, 8)
    labels = torch.tensor([0, 2, 1]) if adapter.conditional else None
    h = adapter.generate_to(z, labels, layer)
    assert torch.allclose(adapter.generate_from(h, z, labels, layer), adapter.generate(z, labels), atol=1e-6)
    h = h.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(adapter.generate_from(h, z, labels, layer).sum(), h)
    assert float(grad.abs().sum()) > 0
    if layer == "b8":  # features and the skip-architecture RGB image, stacked
        assert h.shape[1] == 16 + 3


def test_rosinality_adapter_follows_its_forward_and_a_reproducible_mean_latent():
    G, _ = rosinality_pair()
    adapter = RosinalityStyleGAN2Adapter(G, truncation_psi=0.5)
    noise = [getattr(G.noises, f"noise_{i}") for i in range(G.num_layers)]
    z = torch.randn(4, 8)
    expected = G([z], truncation=0.5, truncation_latent=adapter.truncation_latent, noise=noise)[0].clamp(-1, 1)
    assert torch.equal(adapter.generate(z), expected)
    assert torch.equal(RosinalityStyleGAN2Adapter(G, truncation_psi=0.5).truncation_latent, adapter.truncation_latent)
    assert adapter.layer_names() == ["latent", "mapping", "b4", "b8", "output"]
    assert not torch.equal(RosinalityStyleGAN2Adapter(G, noise_mode="none").generate(z), RosinalityStyleGAN2Adapter(G).generate(z))


def test_discriminators_declare_the_group_size_and_pad_batches():
    G, D = nvlabs_pair(3)
    wrapped = stylegan2_discriminator(D)
    assert wrapped.min_batch_size == 4 and wrapped.conditional and wrapped.output.value == "logit"
    x, labels = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(InputError, match="at least 4"):
        wrapped(x[:2], labels[:2])
    scores = wrapped(x, labels)  # 6 is padded to 8 with samples 0 and 1
    padded = torch.cat([x, x[:2]])
    expected = D(padded, _one_hot(torch.cat([labels, labels[:2]]), 3))[:6, 0]
    assert scores.shape == (6,) and torch.equal(scores, expected)
    assert torch.equal(wrapped(x[:4], labels[:4]), D(x[:4], _one_hot(labels[:4], 3))[:, 0])
    _, rD = rosinality_pair()
    rosinality = stylegan2_discriminator(rD)
    assert rosinality.min_batch_size == 4 and not rosinality.conditional
    assert rosinality(x).shape == (6,)


@pytest.mark.parametrize("convention", ["nvlabs", "rosinality"])
def test_end_to_end_sampler_and_refiner(convention):
    G, D = nvlabs_pair(3) if convention == "nvlabs" else rosinality_pair()
    adapter = stylegan2_adapter(G, truncation_psi=0.9, discriminator=D)
    both = check_chain_end_to_end(adapter, image_shape=(3, 16, 16))
    assert (both.labels is not None) == (convention == "nvlabs")
    G_dropin = dropin(Chain(adapter, refiners=[]))
    z = torch.randn(4, 8)
    if convention == "nvlabs":
        c = _one_hot(torch.tensor([0, 1, 2, 0]), 3)
        assert torch.equal(G_dropin(z, c), adapter.generate(z, torch.tensor([0, 1, 2, 0])))
    else:
        assert torch.equal(G_dropin(z), adapter.generate(z))


def test_collaborative_style_refinement_at_a_synthesis_block_raises_the_discriminator_score():
    G, D = nvlabs_pair()
    adapter = StyleGAN2Adapter(G, discriminator=D)
    plain = Chain(adapter, batch_size=8).sample(8)
    refined = Chain(adapter, refiners=[EvenRowLayerRefiner("b8")], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(refined.images, plain.images, plain.indices)
    even = torch.arange(0, 8, 2)
    with torch.no_grad():
        before, after = adapter.discriminator(plain.images[even]), adapter.discriminator(refined.images[even])
    assert float(after.mean()) > float(before.mean())


def _sharp_pair(c_dim: int = 0):
    """The stand-in pair with the discriminator's last layer scaled up, so its logits spread over about [-2, 0]."""
    G, D = nvlabs_pair(c_dim)
    with torch.no_grad():
        D.b4.out.weight.mul_(30)
    return G, D


def test_collaborative_refinement_at_a_synthesis_block_moves_exactly_the_samples_below_the_threshold():
    G, D = _sharp_pair(3)
    adapter = StyleGAN2Adapter(G, discriminator=D)  # D's output declared a logit (StyleGAN2's logistic loss)
    plain = Chain(adapter, batch_size=8).sample(8, seed=1)
    with torch.no_grad():
        before = torch.sigmoid(adapter.discriminator(plain.images, plain.labels))
    threshold = float(before.median())
    refiner = CollaborativeRefiner(layer="b8", steps=10, step_size=0.1, threshold=threshold)
    refined = Chain(adapter, refiners=[refiner], batch_size=8).sample(8, seed=1)
    assert_images(refined.images, (8, 3, 16, 16))
    assert torch.equal(refined.latents, plain.latents) and torch.equal(refined.labels, plain.labels)
    acted = refined.provenance["refinement_steps"] > 0
    # Algorithm 1: a sample at or above the threshold D~ is not moved. Here fewer samples keep moving than the
    # discriminator's minibatch-std group (4), which the refiner fills with stopped samples of the batch.
    assert torch.equal(acted, before < threshold) and 0 < int(acted.sum()) < 4
    assert_differs_only_in_rows(refined.images, plain.images, acted)
    with torch.no_grad():
        after = torch.sigmoid(adapter.discriminator(refined.images, refined.labels))
    assert bool((after[acted] > before[acted]).all())


def test_ddls_moves_every_latent_downhill_in_energy_through_the_generator():
    G, D = _sharp_pair()
    adapter = StyleGAN2Adapter(G, discriminator=D)
    plain = Chain(adapter, batch_size=8).sample(8, seed=2)
    sampled = Chain(adapter, DDLS(steps=5, step_size=0.01, noise_std=0.0), batch_size=8).sample(8, seed=2)
    assert_images(sampled.images, (8, 3, 16, 16))
    assert bool((sampled.latents != plain.latents).any(1).all())  # DDLS acts on every latent ...
    with torch.no_grad():
        assert torch.equal(sampled.images, adapter.generate(sampled.latents))  # ... and the images follow them

        def energy(batch):  # E(z) = ||z||^2 / 2 - d(G(z)) with d the declared logit, up to a constant
            return 0.5 * batch.latents.square().sum(1) - adapter.discriminator(batch.images)

        assert bool((energy(sampled) < energy(plain)).all())


def test_drs_keeps_the_first_proposal_where_it_accepts_and_redraws_elsewhere():
    G, D = _sharp_pair()
    adapter = StyleGAN2Adapter(G, discriminator=D)
    plain = Chain(adapter, batch_size=8).sample(8, seed=3)
    chain = Chain(adapter, DiscriminatorRejectionSampler(burn_in=64), batch_size=8)
    sampled = chain.sample(8, seed=3)
    assert_images(sampled.images, (8, 3, 16, 16))
    redrawn = sampled.provenance["proposals"] > 1
    assert 0 < int(redrawn.sum()) < 8
    assert_differs_only_in_rows(sampled.images, plain.images, redrawn)
    assert torch.equal(sampled.latents[~redrawn], plain.latents[~redrawn])
    assert chain.report.sampler["accepted"] == 8 and chain.report.sampler["proposals"] == int(sampled.provenance["proposals"].sum())


def _mark_executed():
    os.environ["GAN_POSTPROC_TEST_PICKLE_RAN"] = "1"
    return "executed"


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (_mark_executed, ())


def test_nvlabs_pickles_load_only_with_the_explicit_opt_in(tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_POSTPROC_TEST_PICKLE_RAN", raising=False)
    G, D = nvlabs_pair()
    path = tmp_path / "network-snapshot.pkl"
    with open(path, "wb") as file:
        pickle.dump({"G_ema": G, "D": D, "payload": _RunsCodeWhenUnpickled()}, file)
    with pytest.raises(UnsafeCheckpointError, match="allow_code_execution=True"):
        load_nvlabs_pickle(path)
    with pytest.raises(UnsafeCheckpointError):
        load_nvlabs_pickle(path, allow_code_execution="yes")
    assert "GAN_POSTPROC_TEST_PICKLE_RAN" not in os.environ  # the default never unpickled
    with pytest.warns(CodeExecutionWarning, match="executes the code"):
        data = load_nvlabs_pickle(path, allow_code_execution=True)
    assert os.environ["GAN_POSTPROC_TEST_PICKLE_RAN"] == "1" and data["payload"] == "executed"
    z = torch.randn(2, 8)
    assert torch.equal(StyleGAN2Adapter(data["G_ema"]).generate(z), StyleGAN2Adapter(G).generate(z))
    with pytest.raises(CheckpointError, match="network pickle .* does not exist"):
        load_nvlabs_pickle(tmp_path / "missing.pkl", allow_code_execution=True)


def test_rosinality_checkpoints_load_weights_only(tmp_path):
    G, _ = rosinality_pair(seed=1)
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": G.state_dict(), "g": G.state_dict(), "args": argparse.Namespace(size=16, latent=8)}, path)
    fresh, _ = rosinality_pair(seed=2)
    fresh.load_state_dict(load_rosinality_checkpoint(path))
    z = torch.randn(2, 8)
    assert torch.equal(RosinalityStyleGAN2Adapter(fresh).generate(z), RosinalityStyleGAN2Adapter(G).generate(z))
    torch.save({"g_ema": G.state_dict(), "payload": _RunsCodeWhenUnpickled()}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_rosinality_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no 'd_ema' entry"):
        load_rosinality_checkpoint(path, key="d_ema")


def test_registration_and_clear_errors_for_the_wrong_convention():
    assert {"stylegan2", "stylegan2_rosinality"} <= set(get_registry().names("adapter"))
    G, _ = nvlabs_pair()
    with pytest.raises(InputError, match="RosinalityStyleGAN2Adapter"):
        StyleGAN2Adapter(rosinality_pair()[0])
    with pytest.raises(InputError, match="StyleGAN2Adapter"):
        RosinalityStyleGAN2Adapter(G)
    with pytest.raises(InputError, match="neither StyleGAN2 convention"):
        stylegan2_adapter(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="noise_mode"):
        StyleGAN2Adapter(G, noise_mode="fixed")
    with pytest.raises(InputError, match="truncation_psi"):
        StyleGAN2Adapter(G, truncation_psi=1.5)


def test_latent_reweighting_reads_the_mapping_output_of_an_unconditional_stylegan2():
    """Issue 6/8: w_phi on the mapping network's output (the paper's LSUN setup), trained and sampled through the adapter."""
    from gan_postproc.plugins.latent_reweighting.latent_rs import LatentRS, train_importance_network

    torch.manual_seed(0)
    G, D = nvlabs_pair(0)
    adapter = StyleGAN2Adapter(G, discriminator=D)
    real = Chain(adapter).sample(64, seed=7).images.detach()
    result = train_importance_network(
        adapter, real, steps=2, critic_steps=1, critic_warmup=2, batch_size=16, eval_every=1, eval_samples=32, eval_pool=64, progress=False
    )
    assert result.network.layer == "mapping" and result.network.input_dim == G.mapping(torch.zeros(1, 8), torch.zeros(1, 0)).shape[-1]  # w_dim, not num_ws * w_dim
    chain = Chain(adapter, LatentRS(result.network))
    batch = chain.sample(12, seed=1)
    assert_images(batch.images, (12, 3, 16, 16))
    expected = adapter.generate(batch.latents)
    assert torch.equal(batch.images, expected)  # the accepted latents, generated by the framework's own call
    assert bool((batch.scores["acceptance_probability"] > 0).all())
