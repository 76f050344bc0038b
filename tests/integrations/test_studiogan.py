"""StudioGAN: the drop-in generate_images and the adapter on StudioGAN's own code.

Networks are built from its ``src/configs`` (CIFAR10: BigGAN, SNGAN's ResNet, DCGAN, the multi-hinge MHGAN,
ContraGAN, StyleGAN2) by ``src/models`` at small widths; sampling goes through its ``utils.sample.generate_images``
and its evaluation paths ``utils.misc.save_images_png`` and ``metrics.features.generate_images_and_stack_features``,
which generate under ``torch.no_grad()`` (see tests/third_party.py; skipped when the code is absent).
"""

from __future__ import annotations

import copy
import functools
import inspect
import types

import pytest
import torch
from torch import nn

from gan_postproc import Chain, Classifier, get_registry
from gan_postproc.errors import InputError
from gan_postproc.integrations.studiogan import (
    GENERATE_IMAGES_PARAMETERS,
    StudioGANAdapter,
    StudioGANDropIn,
    minibatch_std_group,
    patch,
    studiogan_discriminator,
    studiogan_scores,
)
from gan_postproc.pipeline.discriminator_readings import potential
from gan_postproc.plugins.bigroc import BIGRoC
from gan_postproc.plugins.collaborative import CollaborativeRefiner
from gan_postproc.plugins.ddls import DDLS
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler
from gan_postproc.plugins.dot import DOT
from gan_postproc.plugins.truncation import TruncationSampler

from ..helpers import third_party as tp
from ..helpers.integration_methods import (
    EvenRowAscent,
    EvenRowLayerRefiner,
    QuadrantRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_quadrant,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
    check_sampler_and_layer_refiners,
)

NUM_CLASSES = 10  # the CIFAR10 configs


@pytest.fixture(scope="module")
def sg():
    """StudioGAN's modules: utils.sample, utils.misc, metrics.features."""
    fw = tp.studiogan()
    return types.SimpleNamespace(sample=fw.module("utils.sample"), misc=fw.module("utils.misc"), features=fw.module("metrics.features"))


@functools.cache
def models(config: str, **options) -> types.SimpleNamespace:
    """The networks of ``configs/CIFAR10/<config>.yaml`` (built once per test session)."""
    return tp.studiogan_models(f"CIFAR10/{config}.yaml", **options)


def evaluate(sample, m, *, LOSS=None, RUN=None, MODEL=None, generator=None, discriminator=None, batch_size=8, y_sampler="totally_random",
             truncation_factor=-1.0, radius="N/A", is_train=False):  # fmt: skip
    """``sample.generate_images`` called as StudioGAN's workers call it: through the module attribute."""
    cfgs = m.cfgs
    return sample.generate_images(
        z_prior=cfgs.MODEL.z_prior, truncation_factor=truncation_factor, batch_size=batch_size, z_dim=cfgs.MODEL.z_dim,
        num_classes=cfgs.DATA.num_classes, y_sampler=y_sampler, radius=radius, generator=m.G if generator is None else generator,
        discriminator=m.D if discriminator is None else discriminator, is_train=is_train, LOSS=LOSS or cfgs.LOSS, RUN=RUN or cfgs.RUN,
        MODEL=MODEL or cfgs.MODEL, device="cpu", is_stylegan=cfgs.MODEL.backbone == "stylegan2", generator_mapping=m.mapping,
        generator_synthesis=m.synthesis, style_mixing_p=0.0, stylegan_update_emas=False, cal_trsp_cost=False,
    )  # fmt: skip


def adapter_of(m, **options) -> StudioGANAdapter:
    """The adapter a drop-in builds for ``m``'s config."""
    MODEL = m.cfgs.MODEL
    stylegan = MODEL.backbone == "stylegan2"
    return StudioGANAdapter(
        None if stylegan else m.G, z_dim=MODEL.z_dim, num_classes=NUM_CLASSES if MODEL.g_cond_mtd != "W/O" else None,
        label_dim=NUM_CLASSES, generator_mapping=m.mapping if stylegan else None, generator_synthesis=m.synthesis if stylegan else None,
        discriminator=m.D, adv_loss=m.cfgs.LOSS.adv_loss, discriminator_classes=NUM_CLASSES if MODEL.d_cond_mtd != "W/O" else None, **options,
    )  # fmt: skip


def _changed(namespace, **changes):
    copied = copy.copy(namespace)
    for key, value in changes.items():
        setattr(copied, key, value)
    return copied


# --- the drop-in generate_images --------------------------------------------------------------------------


def test_the_drop_in_has_the_signature_of_studiogans_generate_images(sg):
    assert tuple(inspect.signature(sg.sample.generate_images).parameters) == GENERATE_IMAGES_PARAMETERS


def test_patch_replaces_the_module_attribute_and_keeps_the_7_tuple(sg):
    m = models("BigGAN")
    original = sg.sample.generate_images
    plain = evaluate(sg.sample, m)
    with patch(sg.sample, refiners=[QuadrantRefiner()]) as dropin:
        assert sg.sample.generate_images is dropin and isinstance(dropin, StudioGANDropIn)
        out = evaluate(sg.sample, m)
        assert len(out) == len(plain) == 7
        images, labels, images_eps, trsp_cost, ws, info_d, info_c = out
        assert images.shape == plain[0].shape == (8, 3, 32, 32) and images.dtype == torch.float32
        assert float(images.min()) >= -1 and float(images.max()) <= 1
        assert labels.dtype == torch.int64 and labels.shape == (8,) and int(labels.max()) < NUM_CLASSES
        assert images_eps is None and trsp_cost is None and ws is None and info_d is None and info_c is None
        # training calls go to StudioGAN's own function
        torch.manual_seed(3)
        train = evaluate(sg.sample, m, is_train=True)
        torch.manual_seed(3)
        assert torch.equal(train[0], original(*_positional(m, is_train=True))[0])
    assert sg.sample.generate_images is original


def _positional(m, is_train):
    c = m.cfgs
    return ("gaussian", -1.0, 8, c.MODEL.z_dim, NUM_CLASSES, "totally_random", "N/A", m.G, m.D, is_train, c.LOSS, c.RUN, c.MODEL, "cpu",
            False, None, None, 0.0, False, False)  # fmt: skip


def test_drop_in_output_is_the_chains_and_differs_from_plain_only_where_methods_act(sg):
    m = models("BigGAN")
    results = {}
    for name, options in {"plain": {}, "sampled": {"sampler": EvenRowAscent()}, "both": {"sampler": EvenRowAscent(), "refiners": [QuadrantRefiner()]}}.items():
        with patch(sg.sample, seed=5, **options):
            results[name] = evaluate(sg.sample, m)
    assert torch.equal(results["plain"][1], results["sampled"][1])  # labels keyed by sample index
    assert_differs_only_in_even_rows(results["sampled"][0], results["plain"][0], torch.arange(8))
    assert_differs_only_in_quadrant(results["both"][0], results["sampled"][0])
    direct = Chain(adapter_of(m)).sample(8, seed=5, labels=results["plain"][1])
    assert torch.equal(direct.images, results["plain"][0])


def test_patched_generate_images_runs_drs_and_bigroc(sg):
    """A conditional BigGAN generator judged by the unconditional discriminator of CIFAR10/StyleGAN2-Uncond
    (logistic loss: a logit; unconditional, so one D_M serves every class; minibatch-std group 32)."""
    big, judge = models("BigGAN"), models("StyleGAN2-Uncond")
    LOSS, MODEL = judge.cfgs.LOSS, _changed(big.cfgs.MODEL, d_cond_mtd="W/O")
    torch.manual_seed(4)
    classifier = Classifier(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 32 * 32, NUM_CLASSES)), NUM_CLASSES)
    settings = {
        "plain": {},
        "drs": {"sampler": DiscriminatorRejectionSampler(burn_in=64)},
        "both": {"sampler": DiscriminatorRejectionSampler(burn_in=64), "refiners": [BIGRoC(classifier, eps=0.5)]},
    }
    results = {}
    for name, options in settings.items():
        with patch(sg.sample, seed=5, **options):
            results[name] = evaluate(sg.sample, big, LOSS=LOSS, MODEL=MODEL, discriminator=judge.D)
    labels = results["plain"][1]
    for images, out_labels, images_eps, trsp_cost, ws, info_d, info_c in results.values():
        assert_images(images, (8, 3, 32, 32))
        assert torch.equal(out_labels, labels)  # y_sampler's labels, keyed by sample index
        assert images_eps is None and trsp_cost is None and ws is None and info_d is None and info_c is None
    # DRS: the same samples as a chain on the adapter; an index keeps its first proposal where it was accepted.
    adapter = StudioGANAdapter(big.G, z_dim=big.cfgs.MODEL.z_dim, num_classes=NUM_CLASSES, discriminator=judge.D, adv_loss=LOSS.adv_loss)
    assert adapter.discriminator.output.value == "logit" and adapter.discriminator.min_batch_size == 32
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


def test_calls_continue_the_sample_count_and_follow_y_sampler(sg):
    m = models("SNGAN")
    with patch(sg.sample) as dropin:
        first = evaluate(sg.sample, m, batch_size=4)
        second = evaluate(sg.sample, m, batch_size=4)
        assert dropin.samples_drawn == 8 and not torch.equal(first[0], second[0])
        assert evaluate(sg.sample, m, y_sampler=2)[1].tolist() == [2] * 8
        assert evaluate(sg.sample, m, y_sampler="acending_all")[1].tolist() == sum(([c] * 8 for c in range(NUM_CLASSES)), [])
        some = evaluate(sg.sample, m, y_sampler="acending_some", batch_size=16)[1]
        assert some.shape == (16,) and len(set(some.tolist())) == 2 and bool((some.view(2, 8) == some.view(2, 8)[:, :1]).all())
        with pytest.raises(InputError, match="multiple of 8"):
            evaluate(sg.sample, m, y_sampler="acending_some", batch_size=12)
    with patch(sg.sample) as again:
        replay = evaluate(again.module, m, batch_size=4)
    assert torch.equal(replay[0], first[0])  # same seed, same first samples


def test_truncation_radius_and_uniform_prior(sg):
    m = models("SNGAN")
    z_dim = m.cfgs.MODEL.z_dim
    adapter = StudioGANAdapter(m.G, z_dim=z_dim, num_classes=NUM_CLASSES, truncation_factor=0.5)
    assert adapter.prior.kind == "truncated_normal" and (adapter.prior.low, adapter.prior.high) == (-0.5, 0.5)
    assert StudioGANAdapter(m.G, z_dim=z_dim, z_prior="uniform").prior.kind == "uniform"
    with patch(sg.sample) as dropin:
        images, _, images_eps, *_ = evaluate(sg.sample, m, truncation_factor=0.5, radius=0.1)
        assert images_eps.shape == images.shape and not torch.equal(images_eps, images)
        assert dropin.chain_for(
            z_prior="gaussian", truncation_factor=0.5, z_dim=z_dim, num_classes=NUM_CLASSES, generator=m.G, discriminator=m.D,
            LOSS=m.cfgs.LOSS, RUN=m.cfgs.RUN, MODEL=m.cfgs.MODEL, device="cpu", is_stylegan=False, generator_mapping=None,
            generator_synthesis=None,
        ).adapter.prior.high == 0.5  # fmt: skip


# --- StyleGAN2 --------------------------------------------------------------------------------------------


def test_stylegan_models_truncate_in_w_and_return_ws(sg):
    m = models("StyleGAN2")
    RUN = tp.studiogan_run(m.cfgs, truncation_cutoff=2)
    with patch(sg.sample, refiners=[QuadrantRefiner()]):
        images, labels, _, _, ws, _, _ = evaluate(sg.sample, m, RUN=RUN, truncation_factor=0.0)
    num_ws, w_dim = m.mapping.num_ws, m.mapping.w_dim
    assert images.shape == (8, 3, 32, 32) and ws.shape == (8, num_ws, w_dim)
    w_avg = m.mapping.w_avg.expand(8, num_ws, w_dim)
    assert torch.allclose(ws[:, :2], w_avg[:, :2]) and not torch.allclose(ws[:, 2:], w_avg[:, 2:])
    adapter = adapter_of(m, truncation_factor=0.7)
    assert adapter.layer_names() == ["latent", "mapping", "output"] and adapter.mapping_layer == "mapping"
    z, y = torch.randn(3, m.cfgs.MODEL.z_dim), torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.equal(adapter.generate_from(adapter.generate_to(z, y, "mapping"), z, y, "mapping"), adapter.generate(z, y))


def test_the_truncation_sampler_uses_w_space_truncation_for_stylegan_and_the_prior_otherwise():
    m = models("StyleGAN2")
    adapter = adapter_of(m, truncation_cutoff=2)
    chain = Chain(adapter, TruncationSampler(0.5), batch_size=8)
    truncated = chain.sample(8, seed=4)
    assert chain.sampler.resolved_mode == "native"
    z, y = truncated.latents, truncated.labels
    with torch.no_grad():
        ws = m.mapping(z, torch.nn.functional.one_hot(y, NUM_CLASSES), truncation_psi=0.5, truncation_cutoff=2)
        assert torch.equal(truncated.images, m.synthesis(ws, noise_mode="const").clamp(-1, 1))
        assert not torch.equal(truncated.images, adapter.generate(z, y))  # the adapter's default: no truncation
    other = Chain(adapter_of(models("SNGAN")), TruncationSampler(0.5), batch_size=8)
    assert float(other.sample(8).latents.abs().max()) <= 0.5 and other.sampler.resolved_mode == "prior"


def test_a_stylegan2_discriminator_is_padded_to_its_minibatch_std_group():
    """The issue: scoring 6 images failed in the minibatch-std layer (``shape '[4, -1, 1, 16, 4, 4]' is
    invalid``). The CIFAR config's group is 32; batches are padded to a multiple of it by repeating
    samples, and each real row gets exactly the discriminator's own score on the padded batch."""
    m = models("StyleGAN2")
    assert m.cfgs.STYLEGAN.d_epilogue_mbstd_group_size == 32 == minibatch_std_group(m.D)
    wrapped = adapter_of(m).discriminator
    assert wrapped.min_batch_size == 32 and wrapped.conditional and wrapped.output.value == "logit"
    x, y = torch.rand(40, 3, 32, 32) * 2 - 1, torch.arange(40) % NUM_CLASSES
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="is invalid for input of size"):
            m.D(x, y, eval=True)  # 40 is no multiple of 32
        rows = torch.arange(64) % 40
        assert torch.equal(wrapped(x, y), m.D(x[rows], y[rows], eval=True)["adv_output"][:40, 0])
        with pytest.raises(InputError, match="at least 32"):
            wrapped(x[:6], y[:6])
        small = torch.arange(32) % 6  # methods score small batches padded to one group
        assert torch.equal(potential(wrapped, x[:6], y[:6]), m.D(x[small], y[small], eval=True)["adv_output"][:6, 0])
    group4 = models("StyleGAN2", mbstd_group_size=4)
    with torch.no_grad():
        with pytest.raises(RuntimeError, match=r"shape '\[4, -1, 1, 16, 4, 4\]' is invalid"):
            group4.D(x[:6], y[:6], eval=True)
        rows = torch.arange(8) % 6
        assert torch.equal(adapter_of(group4).discriminator(x[:6], y[:6]), group4.D(x[rows], y[rows], eval=True)["adv_output"][:6, 0])


# --- discriminator outputs ---------------------------------------------------------------------------------


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


@pytest.mark.parametrize("config, kind", [
    ("BigGAN-Uncond", "critic"), ("SNGAN", "critic"), ("DCGAN", "logit"), ("MHGAN", "critic"), ("ContraGAN", "critic"), ("StyleGAN2", "logit"),
])  # adv_output: [B] (0-d for B == 1; with projection in SNGAN, 2C in ContraGAN), [B, 11] multi-hinge, [B, 1] StyleGAN2
def test_real_discriminators_give_one_score_per_sample(config, kind):
    m = models(config, mbstd_group_size=1) if config == "StyleGAN2" else models(config)
    wrapped = adapter_of(m).discriminator
    assert wrapped.output.value == kind
    x, labels = torch.rand(3, 3, 32, 32) * 2 - 1, torch.tensor([0, 9, 1])
    with torch.no_grad():
        raw = m.D(x, labels, eval=True)["adv_output"]
        for n in (3, 1):
            scores = wrapped(x[:n], labels[:n] if wrapped.conditional else None)
            assert scores.shape == (n,) and torch.isfinite(scores).all()
    if config == "MHGAN":  # the Crammer-Singer margin of the sample's class
        assert raw.shape == (3, NUM_CLASSES + 1) and torch.allclose(scores, studiogan_scores({"adv_output": raw[:1]}, 1, labels[:1], NUM_CLASSES))
    with pytest.raises(InputError, match="declare what the discriminator outputs"):
        studiogan_discriminator(m.D, adv_loss="new_loss")


# --- the adapter, wrappers, methods ----------------------------------------------------------------------


@pytest.mark.parametrize("config", ["BigGAN", "SNGAN", "DCGAN"])
def test_adapter_split_points_reproduce_the_generator(config):
    m = models(config)
    adapter = adapter_of(m)
    expected = {
        "BigGAN": ["linear0", "blocks.0.0", "blocks.1.0", "blocks.2.0", "blocks.3.0", "bn4", "conv2d5"],  # blocks.1.0: self-attention
        "SNGAN": ["linear0", "blocks.0.0", "blocks.1.0", "blocks.2.0", "bn4", "conv2d5"],
        "DCGAN": ["linear0", "blocks.0.0", "blocks.1.0", "blocks.2.0", "conv4"],
    }[config]
    assert adapter.layer_names() == ["latent", *expected, "output"]  # not the shared embedding nor the shared activation
    z = torch.randn(4, m.cfgs.MODEL.z_dim)
    y = torch.tensor([0, 1, 2, 3]) if adapter.conditional else None
    with torch.no_grad():
        for layer in expected:  # bn4 is followed by the shared in-place ReLU
            assert torch.equal(adapter.generate_from(adapter.generate_to(z, y, layer), z, y, layer), adapter.generate(z, y)), layer


def test_adapter_end_to_end():
    adapter = adapter_of(models("BigGAN"))
    check_chain_end_to_end(adapter, image_shape=(3, 32, 32))
    plain = Chain(adapter, batch_size=8).sample(8)
    layered = Chain(adapter, refiners=[EvenRowLayerRefiner("blocks.1.0")], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(layered.images, plain.images, plain.indices)
    assert "studiogan" in get_registry().names("adapter")


@pytest.mark.parametrize("config, sampler, layer", [
    ("BigGAN", "ddls", "blocks.1.0"), ("DCGAN", "ddls", "blocks.1.0"), ("MHGAN", "ddls", "blocks.2.0"), ("StyleGAN2", "drs", "mapping"),
])  # fmt: skip
def test_a_latent_sampler_then_collaborative_at_an_inner_layer_and_dot(config, sampler, layer):
    make = (lambda: DDLS(steps=2, step_size=0.01)) if sampler == "ddls" else (lambda: DiscriminatorRejectionSampler(burn_in=64))
    check_sampler_and_layer_refiners(adapter_of(models(config)), make, layer, (3, 32, 32))


class _ModuleWrapper(nn.Module):
    """Shaped like DistributedDataParallel: the network as its only child ``module``, calls forwarded."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("wrap", [nn.DataParallel, _ModuleWrapper], ids=["DataParallel", "module-wrapper"])
def test_wrapped_networks_are_unwrapped_for_split_points_and_scoring(sg, wrap):
    """The issue: a DataParallel generator offered only the split point 'module'."""
    m = models("SNGAN")
    plain = adapter_of(m)
    wrapped = StudioGANAdapter(wrap(m.G), z_dim=m.cfgs.MODEL.z_dim, num_classes=NUM_CLASSES, discriminator=wrap(m.D), adv_loss="hinge",
                               discriminator_classes=NUM_CLASSES)  # fmt: skip
    assert wrapped.generator is m.G and wrapped.discriminator.module is m.D
    assert wrapped.layer_names() == plain.layer_names() and "module" not in wrapped.layer_names()
    refiner = CollaborativeRefiner(layer="blocks.1.0", steps=2, selection="best")
    assert torch.equal(Chain(wrapped, refiners=[refiner]).sample(4, seed=1).images, Chain(plain, refiners=[refiner]).sample(4, seed=1).images)
    group4 = models("StyleGAN2", mbstd_group_size=4)
    assert studiogan_discriminator(wrap(group4.D), adv_loss="logistic", num_classes=NUM_CLASSES).min_batch_size == 4
    with patch(sg.sample, refiners=[refiner]):  # StudioGAN passes its wrapped networks to generate_images
        through = evaluate(sg.sample, m, generator=wrap(m.G), discriminator=wrap(m.D), batch_size=4)
    with patch(sg.sample, refiners=[refiner]):
        assert torch.equal(through[0], evaluate(sg.sample, m, batch_size=4)[0])


def test_unsupported_settings_and_bad_patches_are_refused(sg):
    m = models("SNGAN")
    c = m.cfgs
    with patch(sg.sample):
        with pytest.raises(InputError, match="langevin_sampling"):
            evaluate(sg.sample, m, RUN=tp.studiogan_run(c, langevin_sampling=True))
        with pytest.raises(InputError, match="apply_lo"):
            evaluate(sg.sample, m, LOSS=_changed(c.LOSS, apply_lo=True))
        with pytest.raises(InputError, match="info_type"):
            evaluate(sg.sample, m, MODEL=_changed(c.MODEL, info_type="discrete"))
        with pytest.raises(InputError, match="patched already"):
            patch(sg.sample)
    old = types.ModuleType("utils.sample")
    old.generate_images = lambda z_prior, truncation_factor, batch_size, z_dim, num_classes, y_sampler, radius, generator, discriminator, is_train, LOSS, RUN, device, is_stylegan, generator_mapping, generator_synthesis, style_mixing_p, cal_trsp_cost: None  # noqa: E731
    with pytest.raises(InputError, match="not the StudioGAN signature"):
        patch(old)
    with pytest.raises(InputError, match="StudioGAN checkout"):
        patch("utils.sample")  # outside a StudioGAN checkout


# --- every gradient method through StudioGAN's own evaluation code -------------------------------------------

_CLASSIFIER = functools.cache(lambda: Classifier(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 32 * 32, NUM_CLASSES)), NUM_CLASSES))


def _method(name: str, m):
    """(sampler, refiners, patch options) of a gradient method for model ``m``."""
    stylegan = m.cfgs.MODEL.backbone == "stylegan2"
    layer = "mapping" if stylegan else "blocks.1.0"
    return {
        "collaborative": (None, [CollaborativeRefiner(layer=layer, steps=2, step_size=0.05, selection="best")]),
        "dot-target": (None, [DOT(steps=2, k_eff=1.0)]),
        "dot-latent": (None, [DOT(space="latent", steps=2, k_eff=1.0)]),
        "ddls": (DDLS(steps=2, step_size=0.01), []),
        "bigroc": (None, [BIGRoC(eps=0.5, steps=2, debias=False)]),
    }[name]


METHODS = ["collaborative", "dot-target", "dot-latent", "ddls", "bigroc"]
EVAL_MODELS = ["BigGAN", "DCGAN", "MHGAN", "StyleGAN2"]


class _Recorder:
    """Stands in for torchvision's save_image (not installed here): keeps what save_images_png saves."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, torch.Tensor]] = []

    def __call__(self, tensor, path):
        self.saved.append((str(path), tensor.clone()))


@pytest.mark.parametrize("config", EVAL_MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_gradient_methods_run_through_save_images_png(sg, monkeypatch, tmp_path, config, method):
    """save_images_png generates under torch.no_grad(): every gradient method still takes its steps, and the
    saved images are exactly the chain's (as generate_images returns them outside no_grad)."""
    m = models(config)
    c = m.cfgs
    recorder = _Recorder()
    monkeypatch.setattr(sg.misc, "save_image", recorder)
    sampler, refiners = _method(method, m)
    with patch(sg.sample, sampler=sampler, refiners=refiners, seed=3, classifier=_CLASSIFIER()):
        sg.misc.save_images_png(
            data_loader=None, generator=m.G, discriminator=m.D, is_generate=True, num_images=8, y_sampler="totally_random", batch_size=8,
            z_prior=c.MODEL.z_prior, truncation_factor=-1.0, z_dim=c.MODEL.z_dim, num_classes=NUM_CLASSES, LOSS=c.LOSS, OPTIMIZATION=c.OPTIMIZATION,
            RUN=c.RUN, MODEL=c.MODEL, is_stylegan=c.MODEL.backbone == "stylegan2", generator_mapping=m.mapping, generator_synthesis=m.synthesis,
            directory=str(tmp_path), device="cpu",
        )  # fmt: skip
    assert len(recorder.saved) == 8
    saved = torch.stack([image for _, image in sorted(recorder.saved, key=lambda item: int(item[0].rsplit("/", 1)[1][:-4]))])
    with patch(sg.sample, sampler=_method(method, m)[0], refiners=_method(method, m)[1], seed=3, classifier=_CLASSIFIER()):
        images, labels, *_ = evaluate(sg.sample, m)
    assert torch.equal(saved, ((images + 1) / 2).clamp(0, 1))
    with patch(sg.sample, seed=3):
        plain = evaluate(sg.sample, m)[0]
    assert bool((images != plain).flatten(1).any(1).any()), "the method did not act"


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference_mode"])
@pytest.mark.parametrize("method", METHODS)
def test_gradient_methods_run_through_the_feature_stacking_of_fid_and_is(sg, method, context):
    """metrics.features.generate_images_and_stack_features, which StudioGAN's worker runs under no_grad."""
    m = models("SNGAN")
    c = m.cfgs

    class EvalModel:
        def eval(self):
            return self

        def get_outputs(self, images, quantize):
            return images.flatten(1)[:, :4], images.flatten(1)[:, :NUM_CLASSES]

    sampler, refiners = _method(method, m)
    with patch(sg.sample, sampler=sampler, refiners=refiners, seed=3, classifier=_CLASSIFIER()), context():
        features, probs, labels = sg.features.generate_images_and_stack_features(
            generator=m.G, discriminator=m.D, eval_model=EvalModel(), num_generate=8, y_sampler="totally_random", batch_size=4,
            z_prior=c.MODEL.z_prior, truncation_factor=-1.0, z_dim=c.MODEL.z_dim, num_classes=NUM_CLASSES, LOSS=c.LOSS, RUN=c.RUN,
            MODEL=c.MODEL, is_stylegan=False, generator_mapping=None, generator_synthesis=None, quantize=False, world_size=1, DDP=False,
            device="cpu", logger=None, disable_tqdm=True,
        )  # fmt: skip
    sampler, refiners = _method(method, m)
    with patch(sg.sample, sampler=sampler, refiners=refiners, seed=3, classifier=_CLASSIFIER()):
        first, second = evaluate(sg.sample, m, batch_size=4), evaluate(sg.sample, m, batch_size=4)
    assert torch.equal(features, torch.cat([first[0], second[0]]).flatten(1)[:, :4]) and len(labels) == 8
