"""StudioGAN: the drop-in generate_images and the adapter, on stand-ins with StudioGAN's signatures."""

from __future__ import annotations

import inspect

import pytest
import torch

from gan_postproc import Chain, Classifier, get_registry
from gan_postproc.errors import InputError
from gan_postproc.plugins.bigroc import BIGRoC
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler
from gan_postproc.plugins.truncation import TruncationSampler
from gan_postproc.integrations.studiogan import (
    GENERATE_IMAGES_PARAMETERS,
    StudioGANAdapter,
    StudioGANDropIn,
    patch,
    studiogan_discriminator,
    studiogan_scores,
)

from ..helpers import studiogan_standins as sg
from ..helpers.integration_methods import (
    EvenRowAscent,
    EvenRowLayerRefiner,
    QuadrantRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_quadrant,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
)


@pytest.fixture
def models():
    torch.manual_seed(0)
    return sg.Generator(g_cond_mtd="cBN").eval(), sg.Discriminator(d_cond_mtd="PD").eval()


def test_the_stand_in_has_studiogans_signature():
    assert tuple(inspect.signature(sg.generate_images).parameters) == GENERATE_IMAGES_PARAMETERS


def test_patch_replaces_the_module_attribute_and_keeps_the_7_tuple(models):
    G, D = models
    LOSS, RUN, MODEL = sg.config(g_cond_mtd="cBN", d_cond_mtd="PD")
    sample = sg.make_sample_module()
    plain = sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
    with patch(sample, refiners=[QuadrantRefiner()]) as dropin:
        assert sample.generate_images is dropin and isinstance(dropin, StudioGANDropIn)
        out = sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
        assert len(out) == len(plain) == 7
        images, labels, images_eps, trsp_cost, ws, info_d, info_c = out
        assert images.shape == plain[0].shape == (8, 3, 16, 16) and images.dtype == torch.float32
        assert float(images.min()) >= -1 and float(images.max()) <= 1
        assert labels.dtype == torch.int64 and labels.shape == (8,) and int(labels.max()) < 4
        assert images_eps is None and trsp_cost is None and ws is None and info_d is None and info_c is None
        # training calls go to StudioGAN's own function
        torch.manual_seed(3)
        train = sg.evaluate(sample, G, D, LOSS, RUN, MODEL, is_train=True)
        torch.manual_seed(3)
        assert torch.equal(train[0], sg.generate_images(*_positional(G, D, LOSS, RUN, MODEL, is_train=True))[0])
    assert sample.generate_images is sg.generate_images


def _positional(G, D, LOSS, RUN, MODEL, is_train):
    return ("gaussian", -1.0, 8, 8, 4, "totally_random", "N/A", G, D, is_train, LOSS, RUN, MODEL, "cpu", False, None, None, 0.0, False, False)


def test_drop_in_output_is_the_chains_and_differs_from_plain_only_where_methods_act(models):
    G, D = models
    LOSS, RUN, MODEL = sg.config(g_cond_mtd="cBN", d_cond_mtd="PD")
    results = {}
    for name, options in {"plain": {}, "sampled": {"sampler": EvenRowAscent()}, "both": {"sampler": EvenRowAscent(), "refiners": [QuadrantRefiner()]}}.items():
        sample = sg.make_sample_module()
        with patch(sample, seed=5, **options):
            results[name] = sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
    assert torch.equal(results["plain"][1], results["sampled"][1])  # labels keyed by sample index
    assert_differs_only_in_even_rows(results["sampled"][0], results["plain"][0], torch.arange(8))
    assert_differs_only_in_quadrant(results["both"][0], results["sampled"][0])
    adapter = StudioGANAdapter(G, z_dim=8, num_classes=4, discriminator=D, adv_loss="hinge", discriminator_classes=4)
    direct = Chain(adapter).sample(8, seed=5, labels=results["plain"][1])
    assert torch.equal(direct.images, results["plain"][0])


def test_patched_generate_images_runs_drs_and_bigroc(models):
    G, _ = models
    torch.manual_seed(1)
    D = sg.Discriminator().eval()  # unconditional: one D_M serves every class
    LOSS, RUN, MODEL = sg.config(adv_loss="logistic", g_cond_mtd="cBN")  # D's output: a logit
    torch.manual_seed(4)
    classifier = Classifier(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 16 * 16, 4)), 4)
    settings = {
        "plain": {},
        "drs": {"sampler": DiscriminatorRejectionSampler(burn_in=64)},
        "both": {"sampler": DiscriminatorRejectionSampler(burn_in=64), "refiners": [BIGRoC(classifier, eps=0.5)]},
    }
    results = {}
    for name, options in settings.items():
        sample = sg.make_sample_module()
        with patch(sample, seed=5, **options):
            results[name] = sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
    labels = results["plain"][1]
    for images, out_labels, images_eps, trsp_cost, ws, info_d, info_c in results.values():
        assert_images(images, (8, 3, 16, 16))
        assert torch.equal(out_labels, labels)  # y_sampler's labels, keyed by sample index
        assert images_eps is None and trsp_cost is None and ws is None and info_d is None and info_c is None
    # DRS: the same samples as a chain on the adapter; an index keeps its first proposal where it was accepted.
    adapter = StudioGANAdapter(G, z_dim=8, num_classes=4, discriminator=D, adv_loss="logistic")
    direct = Chain(adapter, DiscriminatorRejectionSampler(burn_in=64), batch_size=8).sample(8, seed=5, labels=labels)
    assert torch.equal(results["drs"][0], direct.images)
    redrawn = direct.provenance["proposals"] > 1
    assert 0 < int(redrawn.sum()) < 8
    assert_differs_only_in_rows(results["drs"][0], results["plain"][0], redrawn)
    # BIGRoC_GT on StudioGAN's labels: every image moves, at most eps (L2), towards its class.
    moved = (results["both"][0] - results["drs"][0]).flatten(1).norm(dim=1)
    assert bool((moved > 0).all()) and bool((moved <= 0.5 + 1e-5).all())
    with torch.no_grad():
        before, after = (torch.softmax(classifier(results[name][0]), 1)[torch.arange(8), labels] for name in ("drs", "both"))
    assert bool((after > before).all())


def test_calls_continue_the_sample_count_and_follow_y_sampler(models):
    G, D = models
    LOSS, RUN, MODEL = sg.config(g_cond_mtd="cBN", d_cond_mtd="PD")
    sample = sg.make_sample_module()
    with patch(sample) as dropin:
        first = sg.evaluate(sample, G, D, LOSS, RUN, MODEL, batch_size=4)
        second = sg.evaluate(sample, G, D, LOSS, RUN, MODEL, batch_size=4)
        assert dropin.samples_drawn == 8 and not torch.equal(first[0], second[0])
        assert sg.evaluate(sample, G, D, LOSS, RUN, MODEL, y_sampler=2)[1].tolist() == [2] * 8
        assert sg.evaluate(sample, G, D, LOSS, RUN, MODEL, y_sampler="acending_all")[1].tolist() == sum(([c] * 8 for c in range(4)), [])
        some = sg.evaluate(sample, G, D, LOSS, RUN, MODEL, y_sampler="acending_some", batch_size=16)[1]
        assert some.shape == (16,) and len(set(some.tolist())) == 2 and bool((some.view(2, 8) == some.view(2, 8)[:, :1]).all())
        with pytest.raises(InputError, match="multiple of 8"):
            sg.evaluate(sample, G, D, LOSS, RUN, MODEL, y_sampler="acending_some", batch_size=12)
    with patch(sg.make_sample_module()) as again:
        replay = sg.evaluate(again.module, G, D, LOSS, RUN, MODEL, batch_size=4)
    assert torch.equal(replay[0], first[0])  # same seed, same first samples


def test_truncation_radius_and_uniform_prior(models):
    G, D = models
    LOSS, RUN, MODEL = sg.config(g_cond_mtd="cBN", d_cond_mtd="PD")
    adapter = StudioGANAdapter(G, z_dim=8, num_classes=4, truncation_factor=0.5)
    assert adapter.prior.kind == "truncated_normal" and (adapter.prior.low, adapter.prior.high) == (-0.5, 0.5)
    assert StudioGANAdapter(G, z_dim=8, z_prior="uniform").prior.kind == "uniform"
    sample = sg.make_sample_module()
    with patch(sample) as dropin:
        images, _, images_eps, *_ = sg.evaluate(sample, G, D, LOSS, RUN, MODEL, truncation_factor=0.5, radius=0.1)
        assert images_eps.shape == images.shape and not torch.equal(images_eps, images)
        assert dropin.chain_for(
            z_prior="gaussian", truncation_factor=0.5, z_dim=8, num_classes=4, generator=G, discriminator=D, LOSS=LOSS,
            RUN=RUN, MODEL=MODEL, device="cpu", is_stylegan=False, generator_mapping=None, generator_synthesis=None,
        ).adapter.prior.high == 0.5  # fmt: skip


def test_stylegan_models_truncate_in_w_and_return_ws():
    torch.manual_seed(1)
    mapping, synthesis = sg.MappingNetwork(c_dim=4).eval(), sg.SynthesisNetwork().eval()
    LOSS, RUN, MODEL = sg.config(adv_loss="logistic", g_cond_mtd="cAdaIN", truncation_cutoff=2)
    sample = sg.make_sample_module()
    with patch(sample, refiners=[QuadrantRefiner()]):
        images, labels, _, _, ws, _, _ = sg.evaluate(sample, None, None, LOSS, RUN, MODEL, truncation_factor=0.0, is_stylegan=True, mapping=mapping, synthesis=synthesis)
    assert images.shape == (8, 3, 8, 8) and ws.shape == (8, 4, 8)
    assert torch.allclose(ws[:, :2], mapping.w_avg.expand(8, 2, 8)) and not torch.allclose(ws[:, 2:], mapping.w_avg.expand(8, 2, 8))
    adapter = StudioGANAdapter(None, z_dim=8, num_classes=4, generator_mapping=mapping, generator_synthesis=synthesis, truncation_factor=0.7)
    assert adapter.layer_names() == ["latent", "mapping", "output"] and adapter.mapping_layer == "mapping"
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.equal(adapter.generate_from(adapter.generate_to(z, y, "mapping"), z, y, "mapping"), adapter.generate(z, y))


def test_the_truncation_sampler_uses_w_space_truncation_for_stylegan_and_the_prior_otherwise(models):
    torch.manual_seed(1)
    mapping, synthesis = sg.MappingNetwork(c_dim=4).eval(), sg.SynthesisNetwork().eval()
    adapter = StudioGANAdapter(None, z_dim=8, num_classes=4, generator_mapping=mapping, generator_synthesis=synthesis, truncation_cutoff=2)
    chain = Chain(adapter, TruncationSampler(0.5), batch_size=8)
    truncated = chain.sample(8, seed=4)
    assert chain.sampler.resolved_mode == "native"
    z, y = truncated.latents, truncated.labels
    with torch.no_grad():
        ws = mapping(z, torch.nn.functional.one_hot(y, 4), truncation_psi=0.5, truncation_cutoff=2)
        assert torch.equal(truncated.images, synthesis(ws, noise_mode="const").clamp(-1, 1))
        assert not torch.equal(truncated.images, adapter.generate(z, y))  # the adapter's default: no truncation
    G, _ = models
    other = Chain(StudioGANAdapter(G, z_dim=8, num_classes=4), TruncationSampler(0.5), batch_size=8)
    assert float(other.sample(8).latents.abs().max()) <= 0.5 and other.sampler.resolved_mode == "prior"


def test_adv_output_shapes_are_normalised():
    labels = torch.tensor([2, 0])
    assert studiogan_scores({"adv_output": torch.tensor([1.0, 2.0])}, 2).tolist() == [1.0, 2.0]
    assert studiogan_scores({"adv_output": torch.tensor(3.0)}, 1).tolist() == [3.0]
    assert studiogan_scores({"adv_output": torch.tensor([[1.0], [2.0]])}, 2).tolist() == [1.0, 2.0]
    mh = torch.tensor([[0.0, 1.0, 3.0, 0.5, -1.0], [2.0, 2.5, 0.0, 0.0, 1.0]])  # 4 classes + "fake"
    assert studiogan_scores({"adv_output": mh}, 2, labels, num_classes=4).tolist() == [2.0, -0.5]
    assert studiogan_scores({"adv_output": mh[0]}, 1, labels[:1], num_classes=4).tolist() == [2.0]
    with pytest.raises(InputError, match="pass labels"):
        studiogan_scores({"adv_output": mh}, 2, None, num_classes=4)
    with pytest.raises(InputError, match="does not fit a batch of 3"):
        studiogan_scores({"adv_output": torch.zeros(2)}, 3)
    with pytest.raises(InputError, match="'adv_output'"):
        studiogan_scores(torch.zeros(2), 2)


@pytest.mark.parametrize("d_cond_mtd, adv_shape, adv_loss, kind", [
    ("W/O", "squeeze", "hinge", "critic"), ("PD", "column", "vanilla", "logit"), ("MH", "squeeze", "MH", "critic"), ("PD", "squeeze", "logistic", "logit"),
])  # fmt: skip
def test_real_shaped_discriminators_give_one_score_per_sample(d_cond_mtd, adv_shape, adv_loss, kind):
    torch.manual_seed(2)
    D = sg.Discriminator(d_cond_mtd=d_cond_mtd, adv_shape=adv_shape).eval()
    wrapped = studiogan_discriminator(D, adv_loss=adv_loss, num_classes=None if d_cond_mtd == "W/O" else 4)
    assert wrapped.output.value == kind
    x, labels = torch.rand(3, 3, 16, 16) * 2 - 1, torch.tensor([0, 3, 1])
    for n in (3, 1):
        scores = wrapped(x[:n], None if d_cond_mtd == "W/O" else labels[:n])
        assert scores.shape == (n,) and torch.isfinite(scores).all()
    with pytest.raises(InputError, match="declare what the discriminator outputs"):
        studiogan_discriminator(D, adv_loss="new_loss")


def test_adapter_end_to_end_and_split_points(models):
    G, D = models
    adapter = StudioGANAdapter(G, z_dim=8, num_classes=4, discriminator=D, adv_loss="hinge", discriminator_classes=4)
    assert adapter.layer_names() == ["latent", "linear0", "blocks.0.0", "blocks.1.0", "bn4", "conv2d5", "output"]
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        for layer in adapter.layer_names()[1:-1]:  # bn4 is followed by a shared in-place ReLU
            assert torch.equal(adapter.generate_from(adapter.generate_to(z, y, layer), z, y, layer), adapter.generate(z, y))
    check_chain_end_to_end(adapter, image_shape=(3, 16, 16))
    plain = Chain(adapter, batch_size=8).sample(8)
    layered = Chain(adapter, refiners=[EvenRowLayerRefiner("blocks.0.0")], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(layered.images, plain.images, plain.indices)
    assert "studiogan" in get_registry().names("adapter")


def test_unsupported_settings_and_bad_patches_are_refused(models):
    G, D = models
    sample = sg.make_sample_module()
    with patch(sample):
        with pytest.raises(InputError, match="langevin_sampling"):
            sg.evaluate(sample, G, D, *sg.config(langevin_sampling=True))
        LOSS, RUN, MODEL = sg.config()
        LOSS.apply_lo = True
        with pytest.raises(InputError, match="apply_lo"):
            sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
        LOSS, RUN, MODEL = sg.config()
        MODEL.info_type = "discrete"
        with pytest.raises(InputError, match="info_type"):
            sg.evaluate(sample, G, D, LOSS, RUN, MODEL)
        with pytest.raises(InputError, match="patched already"):
            patch(sample)
    old = sg.make_sample_module()
    old.generate_images = lambda z_prior, truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius, generator, discriminator, is_train, LOSS, RUN, device, is_stylegan, generator_mapping, generator_synthesis, style_mixing_p, cal_trsp_cost: None  # noqa: E731
    with pytest.raises(InputError, match="not the StudioGAN signature"):
        patch(old)
    with pytest.raises(InputError, match="StudioGAN checkout"):
        patch("utils.sample")  # outside a StudioGAN checkout
