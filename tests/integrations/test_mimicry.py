"""torch-mimicry: real networks when torch-mimicry is installed (``pip install --no-deps torch-mimicry``),
and a duck-typed network of the same shape always (it shows the adapter needs no torch-mimicry import;
the real networks are what the methods are tested on)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from gan_postproc import Chain, dropin, get_registry, optional
from gan_postproc.errors import CheckpointError, InputError, OptionalDependencyError
from gan_postproc.integrations.mimicry import MimicryAdapter, import_mimicry, load_mimicry_checkpoint, mimicry_discriminator
from gan_postproc.pipeline.discriminator_readings import potential
from gan_postproc.pipeline.scoring import Classifier
from gan_postproc.plugins.bigroc import BIGRoC
from gan_postproc.plugins.collaborative import CollaborativeRefiner
from gan_postproc.plugins.ddls import DDLS
from gan_postproc.plugins.dot import DOT
from gan_postproc.plugins.truncation import TruncationSampler

from ..helpers.integration_methods import (
    EvenRowLayerRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
    check_sampler_and_layer_refiners,
)

needs_mimicry = pytest.mark.skipif(not optional.is_available("torch_mimicry"), reason="torch-mimicry is not installed (pip install --no-deps torch-mimicry)")


class DuckGenerator(nn.Module):
    """Shaped like a torch-mimicry generator: nz, l1, block2, b3, c3, forward(z), generate_images."""

    def __init__(self, nz: int = 6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.nz = nz
        self.l1 = nn.Linear(nz, 8 * 4 * 4)
        self.block2 = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(8, 8, 3, padding=1))
        self.b3 = nn.BatchNorm2d(8)
        self.c3 = nn.Conv2d(8, 3, 3, padding=1)
        self.activation = nn.ReLU(True)

    def forward(self, x):
        h = self.l1(x).view(x.shape[0], 8, 4, 4)
        h = self.activation(self.b3(self.block2(h)))
        return torch.tanh(self.c3(h))


class DuckDiscriminator(nn.Module):
    loss_type = "ns"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.l = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 1))

    def forward(self, x):
        return self.l(x), torch.zeros(x.shape[0], 4)  # SSGAN-style tuple


def test_a_duck_typed_network_works_without_torch_mimicry():
    adapter = MimicryAdapter(DuckGenerator(), discriminator=DuckDiscriminator())
    assert adapter.layer_names() == ["latent", "l1", "block2", "b3", "c3", "output"]
    assert adapter.discriminator.output.value == "logit" and not adapter.conditional
    z = torch.randn(3, 6)
    for layer in ("l1", "block2", "b3", "c3"):  # b3 is followed by an in-place ReLU
        with torch.no_grad():
            h = adapter.generate_to(z, None, layer)
            assert torch.equal(adapter.generate_from(h, z, None, layer), adapter.generate(z))
    check_chain_end_to_end(adapter, image_shape=(3, 8, 8))


def test_discriminator_output_comes_from_loss_type_or_must_be_declared():
    class Unknown(nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, :1]

    with pytest.raises(InputError, match="loss_type is None"):
        mimicry_discriminator(Unknown())
    assert mimicry_discriminator(Unknown(), "critic").output.value == "critic"
    D = DuckDiscriminator()
    D.loss_type = "hinge"
    assert mimicry_discriminator(D).output.value == "critic"
    assert MimicryAdapter(DuckGenerator(), discriminator=D, discriminator_output="logit").discriminator.output.value == "logit"
    with pytest.raises(InputError, match="attribute nz"):
        MimicryAdapter(nn.Linear(2, 2))
    assert "mimicry" in get_registry().names("adapter")


def test_import_mimicry_names_the_no_deps_install_when_missing(monkeypatch):
    monkeypatch.setattr(optional.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionalDependencyError, match="pip install --no-deps torch-mimicry"):
        import_mimicry("nets.sngan")


@pytest.fixture(scope="module")
def nets():
    return {name: import_mimicry(f"nets.{name}") for name in ("sngan", "ssgan", "infomax_gan", "cgan_pd", "dcgan")}


@needs_mimicry
def test_import_never_runs_the_package_init(nets):
    assert "torch_mimicry.training" not in sys.modules and "torch_mimicry.metrics" not in sys.modules
    assert hasattr(nets["sngan"], "SNGANGenerator32")


@needs_mimicry
def test_real_sngan_splits_at_its_layers_and_discriminators_are_read_correctly(nets):
    torch.manual_seed(0)
    G = nets["sngan"].SNGANGenerator32(nz=16, ngf=16)
    adapter = MimicryAdapter(G, discriminator=nets["sngan"].SNGANDiscriminator32(ndf=16))
    assert adapter.layer_names() == ["latent", "l1", "block2", "block3", "block4", "b5", "c5", "output"]
    assert adapter.discriminator.output.value == "critic"  # SNGAN trains with the hinge loss
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(adapter.generate(z), G.eval()(z))
        for layer in adapter.layer_names()[1:-1]:
            assert torch.equal(adapter.generate_from(adapter.generate_to(z, None, layer), z, None, layer), adapter.generate(z))
        x = adapter.generate(z)
        ssgan = mimicry_discriminator(nets["ssgan"].SSGANDiscriminator32(ndf=16).eval())
        assert torch.equal(ssgan(x), ssgan.module(x)[0][:, 0])
        infomax = mimicry_discriminator(nets["infomax_gan"].InfoMaxGANDiscriminator32(ndf=16).eval())
        assert torch.equal(infomax(x), infomax.module(x)[0][:, 0])
        assert mimicry_discriminator(nets["dcgan"].DCGANDiscriminator32(ndf=16)).output.value == "logit"


@needs_mimicry
def test_real_networks_end_to_end(nets):
    torch.manual_seed(0)
    adapter = MimicryAdapter(nets["sngan"].SNGANGenerator32(nz=16, ngf=16), discriminator=nets["sngan"].SNGANDiscriminator32(ndf=16))
    check_chain_end_to_end(adapter, image_shape=(3, 32, 32))
    plain = Chain(adapter, batch_size=8).sample(8)
    layered = Chain(adapter, refiners=[EvenRowLayerRefiner("block3", steps=2)], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(layered.images, plain.images, plain.indices)
    G = dropin(Chain(adapter))
    assert G.generate_images(3).shape == (3, 3, 32, 32) and G.nz == 16


@needs_mimicry
def test_real_conditional_network_end_to_end(nets):
    torch.manual_seed(0)
    G = nets["cgan_pd"].CGANPDGenerator32(num_classes=4, nz=16, ngf=16)
    D = nets["cgan_pd"].CGANPDDiscriminator32(num_classes=4, ndf=16)
    adapter = MimicryAdapter(G, discriminator=D)
    assert adapter.num_classes == 4 and adapter.discriminator.conditional
    both = check_chain_end_to_end(adapter, image_shape=(3, 32, 32))
    assert both.labels is not None and int(both.labels.max()) < 4
    z, y = torch.randn(2, 16), torch.tensor([1, 3])
    with torch.no_grad():
        assert torch.equal(adapter.generate(z, y), G(z, y))


def check_dot_both_spaces(adapter: MimicryAdapter, shape: tuple[int, ...]) -> None:
    """DOT in target space moves every image and no latent; in latent space every latent, images following.

    Every sample's potential d (the critic score, or the logit) rises."""
    plain = Chain(adapter, batch_size=8).sample(8, seed=0)
    with torch.no_grad():
        before = potential(adapter.discriminator, plain.images)
    for space in ("target", "latent"):
        dot = DOT(space=space, steps=20, k_eff_trials=2, k_eff_pairs=20)
        refined = Chain(adapter, refiners=[dot], batch_size=8).sample(8, seed=0)
        assert_images(refined.images, (8, *shape))
        assert_differs_only_in_rows(refined.images, plain.images, torch.ones(8, dtype=torch.bool))
        with torch.no_grad():
            assert bool((potential(adapter.discriminator, refined.images) > before).all()), space
            if space == "target":
                assert torch.equal(refined.latents, plain.latents)
            else:
                assert bool((refined.latents != plain.latents).any(1).all())
                torch.testing.assert_close(refined.images, adapter.generate(refined.latents), rtol=0, atol=1e-6)


def test_dot_through_a_duck_typed_network():
    check_dot_both_spaces(MimicryAdapter(DuckGenerator(), discriminator=DuckDiscriminator()), (3, 8, 8))


def power_iterated(D: nn.Module, steps: int = 3) -> nn.Module:
    """A freshly built SNGAN critic after a few train-mode passes: its spectral-norm estimates start from random
    vectors (scores near 1e12) and settle with the power iterations training would run."""
    D.train()
    with torch.no_grad():
        for step in range(steps):
            D(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(step)) * 2 - 1)
    return D.eval()


@needs_mimicry
def test_dot_with_a_real_sngan_generator_and_critic(nets):
    torch.manual_seed(0)
    G, D = nets["sngan"].SNGANGenerator32(nz=16, ngf=16), power_iterated(nets["sngan"].SNGANDiscriminator32(ndf=16))
    adapter = MimicryAdapter(G, discriminator=D)  # SNGAN's hinge loss: a critic
    check_dot_both_spaces(adapter, (3, 32, 32))
    G_refined = dropin(Chain(adapter, refiners=[DOT(steps=5, k_eff=1.0)]))
    images = G_refined.generate_images(4)  # the call mimicry's evaluation code makes
    assert_images(images, (4, 3, 32, 32))


@needs_mimicry
def test_checkpoints_written_by_mimicry_load_weights_only(nets, tmp_path):
    torch.manual_seed(0)
    G = nets["sngan"].SNGANGenerator32(nz=16, ngf=16)
    optimizer = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.0, 0.9))
    G.save_checkpoint(str(tmp_path), global_step=7, optimizer=optimizer, name="netG.pth")
    torch.manual_seed(1)
    fresh = nets["sngan"].SNGANGenerator32(nz=16, ngf=16)
    assert load_mimicry_checkpoint(fresh, tmp_path / "netG.pth") == 7
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(MimicryAdapter(fresh).generate(z), MimicryAdapter(G).generate(z))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_mimicry_checkpoint(nets["sngan"].SNGANGenerator32(nz=8, ngf=16), tmp_path / "netG.pth")
    torch.save({"weights": G.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a torch-mimicry checkpoint"):
        load_mimicry_checkpoint(fresh, tmp_path / "other.pth")


@needs_mimicry
@pytest.mark.parametrize("family", ["sngan", "cgan_pd"])
@pytest.mark.parametrize("sampler", ["ddls", "truncation"])
def test_a_latent_sampler_then_collaborative_at_an_inner_layer_and_dot(nets, family, sampler):
    torch.manual_seed(0)
    if family == "sngan":
        G, D = nets["sngan"].SNGANGenerator32(nz=16, ngf=16), power_iterated(nets["sngan"].SNGANDiscriminator32(ndf=16))
    else:
        G, D = nets["cgan_pd"].CGANPDGenerator32(num_classes=4, nz=16, ngf=16), nets["cgan_pd"].CGANPDDiscriminator32(num_classes=4, ndf=16)
    adapter = MimicryAdapter(G, discriminator=D)
    make = (lambda: DDLS(steps=2, step_size=0.01)) if sampler == "ddls" else (lambda: TruncationSampler(1.0))
    check_sampler_and_layer_refiners(adapter, make, "block3", (3, 32, 32))


def _mimicry_generation(G: nn.Module, num_samples: int, batch_size: int) -> torch.Tensor:
    """The generation loop of torch-mimicry's compute_fid / compute_is (their modules import TensorFlow, which
    is not installed here): under torch.no_grad(), netG.eval(), then netG.generate_images(num_images=batch_size,
    device=device).detach().cpu() per batch."""
    with torch.no_grad():
        G.eval()
        return torch.cat([G.generate_images(num_images=batch_size, device="cpu").detach().cpu() for _ in range(num_samples // batch_size)])


@needs_mimicry
@pytest.mark.parametrize("method", ["collaborative", "dot-target", "dot-latent", "ddls", "bigroc"])
def test_gradient_methods_run_inside_mimicrys_metric_generation(nets, method):
    torch.manual_seed(0)
    G, D = nets["sngan"].SNGANGenerator32(nz=16, ngf=16), power_iterated(nets["sngan"].SNGANDiscriminator32(ndf=16))
    torch.manual_seed(1)
    classifier = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4)), num_classes=4)
    adapter = MimicryAdapter(G, discriminator=D, classifier=classifier)

    def chain() -> Chain:
        sampler, refiners = {
            "collaborative": (None, [CollaborativeRefiner(layer="block3", steps=2, selection="best")]),
            "dot-target": (None, [DOT(steps=2, k_eff=1.0)]),
            "dot-latent": (None, [DOT(space="latent", steps=2, k_eff=1.0)]),
            "ddls": (DDLS(steps=2, step_size=0.01), []),
            "bigroc": (None, [BIGRoC(eps=0.5, steps=2, debias=False)]),
        }[method]
        return Chain(adapter, sampler, refiners, batch_size=4)

    inside = _mimicry_generation(dropin(chain(), seed=0), 8, 4)
    plain = _mimicry_generation(dropin(Chain(adapter, batch_size=4), seed=0), 8, 4)
    assert_images(inside, (8, 3, 32, 32))
    assert torch.equal(inside, chain().sample(8, seed=0).images)  # what the chain gives outside no_grad
    assert bool((inside != plain).flatten(1).any(1).any())  # the method acted
