"""BigGAN (pytorch-pretrained-biggan) on a small random model built from a config."""

from __future__ import annotations

import json

import pytest
import torch
from scipy import stats

biggan = pytest.importorskip("pytorch_pretrained_biggan")

from gan_postproc import (
    Chain,
    Classifier,
    dropin,  # noqa: E402
    get_registry,
)
from gan_postproc.errors import CheckpointError, InputError, OptionalDependencyError  # noqa: E402
from gan_postproc.integrations.biggan import BigGANAdapter, load_biggan  # noqa: E402
from gan_postproc.plugins.classifier_guided.classifier_filter import ClassifierFilter, passes_filter  # noqa: E402
from gan_postproc.plugins.collaborative import CollaborativeRefiner  # noqa: E402
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler  # noqa: E402
from gan_postproc.plugins.truncation import TruncationSampler  # noqa: E402

from ..helpers.integration_methods import (
    EvenRowLayerRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
    check_sampler_and_layer_refiners,
)

CONFIG = dict(
    output_dim=16, z_dim=8, class_embed_dim=8, channel_width=4, num_classes=10,
    # channel counts halve (or stay) from layer to layer, as GenBlock's skip connection requires
    layers=[(True, 16, 8), (True, 8, 4), (False, 4, 2), (False, 2, 1)], attention_layer_position=2, n_stats=51,
)


def tiny_biggan(seed: int = 0):
    """A random BigGAN that outputs finite images: the unconditional final batch norm's weight and bias are
    uninitialised memory until set, and a few train-mode passes run spectral norm's power iterations.

    Its batch-norm statistics differ per truncation level, as in the published models."""
    torch.manual_seed(seed)
    model = biggan.BigGAN(biggan.BigGANConfig(**CONFIG))
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.zero_()
        for module in model.modules():
            if isinstance(module, biggan.model.BigGANBatchNorm):
                levels = torch.linspace(0.0, 0.3, module.running_means.shape[0])[:, None]
                module.running_means.copy_(levels.expand_as(module.running_means))
                module.running_vars.copy_(1.0 + levels.expand_as(module.running_vars))
        model.train()
        for _ in range(3):
            model(torch.randn(4, CONFIG["z_dim"]) * 0.5, torch.eye(CONFIG["num_classes"])[:4], 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return tiny_biggan()


def test_adapter_feeds_truncated_latents_one_hot_labels_and_the_truncation(model):
    adapter = BigGANAdapter(model, truncation=0.4)
    assert adapter.prior.kind == "truncated_normal" and (adapter.prior.low, adapter.prior.high) == (-2.0, 2.0)
    assert adapter.num_classes == 10 and adapter.prior.shape == (8,)
    u = adapter.prior.sample(0, torch.arange(6))
    labels = torch.tensor([0, 3, 9, 1, 1, 2])
    with torch.no_grad():
        expected = model(0.4 * u, torch.eye(10)[labels], 0.4)
        out = adapter.generate(u, labels)
    assert torch.equal(out, expected) and out.shape == (6, 3, 16, 16)
    assert torch.isfinite(out).all() and float(out.abs().max()) <= 1.0
    # The truncation selects other batch-norm statistics, not only a smaller z.
    with torch.no_grad():
        assert not torch.equal(model(0.4 * u, torch.eye(10)[labels], 1.0), expected)
    assert adapter.labels_from_native(torch.eye(10)[labels]).tolist() == labels.tolist()
    assert adapter.describe()["truncation"] == 0.4


def test_latents_follow_the_packages_truncated_noise_distribution(model):
    adapter = BigGANAdapter(model, truncation=0.5)
    z = adapter.model_latents(adapter.prior.sample(3, torch.arange(4000))).flatten().numpy()
    reference = biggan.truncated_noise_sample(batch_size=4000, dim_z=8, truncation=0.5, seed=0).flatten()
    assert stats.ks_2samp(z, reference).pvalue > 1e-3
    assert z.min() >= -1.0 and z.max() <= 1.0


def test_the_truncation_sampler_gives_exactly_biggans_own_truncation(model):
    adapter = BigGANAdapter(model)  # the constructor's truncation (1.0) stays the default of generate
    chain = Chain(adapter, TruncationSampler(0.4), batch_size=6)
    truncated = chain.sample(6, seed=2)
    assert chain.sampler.resolved_mode == "native"
    u, labels = truncated.latents, truncated.labels
    with torch.no_grad():  # what truncated_noise_sample(truncation=0.4) and model(z, one_hot, 0.4) give for these u
        assert torch.equal(truncated.images, model(0.4 * u, torch.eye(10)[labels], 0.4))
        # the truncation selects batch-norm statistics too: scaling the latents alone is not the same
        assert not torch.equal(truncated.images, BigGANAdapter(model).generate(0.4 * u, labels))
    plain = Chain(adapter, batch_size=6).sample(6, seed=2)
    assert torch.equal(plain.latents, u) and torch.equal(plain.labels, labels)
    assert bool((plain.images != truncated.images).flatten(1).any(1).all())
    with pytest.raises(InputError, match="BigGAN's truncation"):
        Chain(adapter, TruncationSampler(1.5)).sample(2)


class NearestClassMean(torch.nn.Module):
    """A tiny classifier: logits ``-scale ||x - mean_k||^2`` over class-mean images."""

    def __init__(self, means: torch.Tensor, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("means", means.flatten(1))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.scale * torch.cdist(x.flatten(1), self.means).square()


def test_truncation_with_the_classifier_filter_keeps_confident_truncated_samples_only():
    model = tiny_biggan()
    with torch.no_grad():
        model.embeddings.weight.mul_(5.0)  # a model whose classes show in its images, so a classifier can tell them
    adapter = BigGANAdapter(model)
    truncation = TruncationSampler(0.5)
    reference = Chain(adapter, truncation, batch_size=100).sample(100, seed=9, labels=torch.arange(10).repeat(10))
    classifier = Classifier(NearestClassMean(torch.stack([reference.images[reference.labels == k].mean(0) for k in range(10)]), scale=3.0), num_classes=10)
    plain = Chain(adapter, TruncationSampler(0.5), batch_size=8).sample(8, seed=0)
    chain = Chain(adapter, ClassifierFilter(classifier, proposal=TruncationSampler(0.5), max_rounds=200), batch_size=8)
    kept = chain.sample(8, seed=0)
    assert_images(kept.images, (8, 3, 16, 16))
    assert torch.equal(kept.labels, plain.labels)  # every index keeps its label through the redraws
    with torch.no_grad():
        own = model(0.5 * kept.latents, torch.eye(10)[kept.labels], 0.5)  # BigGAN's own truncation (redraws ran in smaller batches)
        torch.testing.assert_close(kept.images, own, rtol=0, atol=1e-6)
        before, after = (torch.softmax(classifier(batch.images), 1) for batch in (plain, kept))
    assert bool(passes_filter(after, kept.labels, 0.9).all())  # Slim's rule with p_t = 0.9
    redrawn = kept.provenance["proposals"] > 1
    assert torch.equal(redrawn, ~passes_filter(before, plain.labels, 0.9)) and 0 < int(redrawn.sum()) < 8
    assert_differs_only_in_rows(kept.images, plain.images, redrawn)


@pytest.mark.parametrize("layer", ["gen_z", "layers.0", "layers.2", "layers.4"])
def test_split_at_generator_layers_reproduces_the_output(model, layer):
    adapter = BigGANAdapter(model, truncation=0.6)
    assert adapter.layer_names() == ["latent", "gen_z"] + [f"layers.{i}" for i in range(5)] + ["output"]
    u, labels = adapter.prior.sample(1, torch.arange(3)), torch.tensor([1, 2, 3])
    with torch.no_grad():
        h = adapter.generate_to(u, labels, layer)
        assert torch.equal(adapter.generate_from(h, u, labels, layer), adapter.generate(u, labels))


def test_end_to_end_sampler_and_refiners(model):
    torch.manual_seed(5)
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 1))
    classifier = Classifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10)), num_classes=10)
    adapter = BigGANAdapter(model, truncation=0.5, discriminator=critic, discriminator_output="critic", classifier=classifier)
    both = check_chain_end_to_end(adapter, image_shape=(3, 16, 16))
    assert both.labels is not None and both.labels.max() < 10
    plain = Chain(adapter, batch_size=8).sample(8)
    layered = Chain(adapter, refiners=[EvenRowLayerRefiner("layers.3")], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(layered.images, plain.images, plain.indices)
    G = dropin(Chain(adapter))
    u = adapter.prior.sample(0, torch.arange(2))
    with torch.no_grad():
        assert torch.equal(G(u, torch.eye(10)[[4, 7]]), adapter.generate(u, torch.tensor([4, 7])))
    assert G.config.num_classes == 10  # attributes of the model read through the drop-in


def _judged(model, output: str) -> BigGANAdapter:
    """BigGAN (no discriminator ships with it) with a small convolutional discriminator attached."""
    torch.manual_seed(6)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 1))
    return BigGANAdapter(model, truncation=0.5, discriminator=net, discriminator_output=output)


@pytest.mark.parametrize("sampler", ["truncation", "drs"])
def test_a_latent_sampler_then_collaborative_at_an_inner_layer_and_dot(model, sampler):
    """Prior-mode truncation (|u_i| <= 1.5 inside the package's [-2, 2]) or DRS, then collaborative at a GenBlock and DOT."""
    if sampler == "truncation":
        check_sampler_and_layer_refiners(_judged(model, "critic"), lambda: TruncationSampler(1.5, mode="prior"), "layers.2", (3, 16, 16))
    else:
        check_sampler_and_layer_refiners(_judged(model, "logit"), lambda: DiscriminatorRejectionSampler(burn_in=64), "layers.2", (3, 16, 16))


def test_collaborative_through_the_drop_in_under_no_grad(model):
    """BigGAN's own call signature under torch.no_grad(), as evaluation code calls a generator."""
    adapter = _judged(model, "critic")
    refiner = CollaborativeRefiner(layer="layers.3", steps=2, selection="best")
    u, labels = adapter.prior.sample(0, torch.arange(4)), torch.tensor([1, 2, 3, 4])
    G = dropin(Chain(adapter, refiners=[refiner]))
    with torch.no_grad():
        inside = G(u, torch.eye(10)[labels])
    assert torch.equal(inside, G(u, torch.eye(10)[labels]))
    with torch.no_grad():
        assert bool((inside != adapter.generate(u, labels)).flatten(1).any(1).any())


def test_load_from_a_local_directory(tmp_path, model):
    with open(tmp_path / "config.json", "w") as file:
        json.dump(CONFIG, file)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    loaded = load_biggan(tmp_path)
    assert not loaded.training
    u, labels = torch.zeros(2, 8), torch.eye(10)[:2]
    with torch.no_grad():
        assert torch.equal(loaded(u, labels, 0.5), model(u, labels, 0.5))
    state = model.state_dict()
    del state["embeddings.weight"]
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="missing keys: embeddings.weight"):
        load_biggan(tmp_path)
    with pytest.raises(CheckpointError, match="no config.json"):
        load_biggan(tmp_path / "..")
    with pytest.raises(CheckpointError, match="neither a directory nor a published BigGAN"):
        load_biggan(tmp_path / "nowhere")


def test_registration_and_errors(model, monkeypatch):
    assert "biggan" in get_registry().names("adapter")
    with pytest.raises(InputError, match="truncation"):
        BigGANAdapter(model, truncation=0.0)
    with pytest.raises(InputError, match="not a pytorch-pretrained-biggan BigGAN"):
        BigGANAdapter(torch.nn.Linear(2, 2))
    from gan_postproc import optional

    monkeypatch.setattr(optional.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionalDependencyError, match=r"pip install 'gan-postproc\[biggan\]'"):
        load_biggan("biggan-deep-128")
