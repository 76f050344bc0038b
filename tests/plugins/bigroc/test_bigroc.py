"""BIGRoC: targeted PGD on a robust classifier (plugin ``bigroc``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gan_postproc import Chain, Classifier, SampleBatch, TorchAdapter, dropin, get_registry
from gan_postproc.errors import CheckpointError, InputError, InputTypeError, MissingModelError
from gan_postproc.plugins.bigroc import BIGRoC, LogitDebias, targeted_pgd
from gan_postproc.plugins.bigroc.pgd import project_l2_ball, project_linf_ball

torch.set_num_threads(1)


class TinyImageGenerator(nn.Module):
    """z [N, 8] -> images [N, 1, 4, 4] in [-1, 1] (optionally class-conditional)."""

    nz = 8

    def __init__(self, num_classes: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.embed = None if num_classes is None else nn.Embedding(num_classes, 8)
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4)))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z if self.embed is None else z + self.embed(y))


def tiny_classifier(num_classes: int = 3, seed: int = 0, bias: torch.Tensor | None = None) -> Classifier:
    """A fixed small conv net on [N, 1, 4, 4] chain images."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(64, num_classes))
    if bias is not None:
        with torch.no_grad():
            net[-1].bias.copy_(bias)
    return Classifier(net, num_classes)


def images_in_range(n: int, seed: int = 0, low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, 1, 4, 4, generator=g)


def distance(a: torch.Tensor, b: torch.Tensor, norm: str) -> torch.Tensor:
    d = (a - b).flatten(1)
    return d.norm(dim=1) if norm == "l2" else d.abs().amax(dim=1)


# --- Algorithm 1: the projected steps ------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 6),
    eps=st.floats(1e-3, 6.0),
    steps=st.integers(1, 9),
    ratio=st.floats(0.1, 5.0),
    norm=st.sampled_from(["l2", "linf"]),
    value_range=st.sampled_from([(-1.0, 1.0), (0.0, 1.0), (0.0, 255.0)]),
)
def test_the_perturbation_never_leaves_the_ball_or_the_value_range(seed, n, eps, steps, ratio, norm, value_range):
    classifier = tiny_classifier(3, seed=seed % 7)
    x0 = images_in_range(n, seed, *value_range)
    labels = torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))
    batch = SampleBatch(images=x0, labels=labels, value_range=value_range)
    refiner = BIGRoC(classifier, eps=eps, eps_range=value_range, steps=steps, step_size=ratio * eps / steps, norm=norm, debias=False)
    out = refiner.refine(batch, None).images
    assert out.shape == x0.shape
    assert float(out.min()) >= value_range[0] and float(out.max()) <= value_range[1]
    # float32 rounding of the range conversion: a few ulps of the range's largest value per pixel
    rounding = 8 * torch.finfo(torch.float32).eps * max(abs(v) for v in value_range) * math.sqrt(x0[0].numel())
    assert bool((distance(out, x0, norm) <= eps * (1 + 1e-5) + rounding).all())


def test_projection_is_the_identity_inside_the_ball_and_scales_onto_its_surface():
    delta = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert torch.allclose(project_l2_ball(delta, 1.0), torch.tensor([[0.6, 0.8], [0.3, 0.4]]))
    assert torch.equal(project_linf_ball(delta, 0.35), torch.tensor([[0.35, 0.35], [0.3, 0.35]]))


def reference_targeted_pgd_l2(model: nn.Module, x0: torch.Tensor, y: int, eps: float, steps: int, alpha: float) -> torch.Tensor:
    """An independent plain-loop targeted PGD-L2 for ONE image (written from the paper's Algorithm 1)."""
    delta = torch.zeros_like(x0)
    for _ in range(steps):
        d = delta.clone().requires_grad_(True)
        log_p = torch.log_softmax(model((x0 + d).unsqueeze(0)), dim=1)[0, y]
        log_p.backward()  # our own test model: writing its .grad is harmless here
        g = d.grad
        delta = delta + alpha * g / (g.norm() + 1e-10)
        norm = delta.norm()
        if norm > eps:
            delta = delta * (eps / norm)
        delta = (x0 + delta).clamp(-1, 1) - x0
    return (x0 + delta).detach()


def test_batched_refinement_matches_an_independent_per_image_loop():
    classifier = tiny_classifier(4, seed=5)
    x0 = images_in_range(7, seed=1)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    eps, steps = 1.3, 7
    ours = targeted_pgd(classifier, x0, labels, eps=eps, steps=steps)
    for i in range(len(x0)):
        theirs = reference_targeted_pgd_l2(classifier.module, x0[i], int(labels[i]), eps, steps, 1.5 * eps / steps)
        torch.testing.assert_close(ours[i], theirs, atol=1e-5, rtol=1e-5)
    # and it did what it is for: p(y | x) went up for every image
    before = F.softmax(classifier(x0), 1).gather(1, labels[:, None])
    after = F.softmax(classifier(ours), 1).gather(1, labels[:, None])
    assert bool((after > before).all())


def test_the_result_does_not_depend_on_batch_composition():
    classifier = tiny_classifier(3, seed=2)
    x0 = images_in_range(10, seed=4)
    labels = torch.arange(10) % 3
    whole = targeted_pgd(classifier, x0, labels, eps=1.0)
    parts = torch.cat([targeted_pgd(classifier, x0[i : i + 3], labels[i : i + 3], eps=1.0) for i in range(0, 10, 3)])
    torch.testing.assert_close(whole, parts, atol=1e-6, rtol=1e-6)


def test_an_already_perfect_sample_is_left_unchanged():
    # A linear two-class classifier: p(0 | x) grows along w. Inside [-1, 1] it is
    # largest at the corner sign(w); an image already there cannot be improved.
    w = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.25, -0.5, 2.0, 1.0, -1.0, 1.5, -0.75, 0.5, 1.0, -2.0, 0.3])
    linear = nn.Linear(16, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([w, -w]))
    classifier = Classifier(nn.Sequential(nn.Flatten(), linear), 2)
    perfect = w.sign().view(1, 1, 4, 4)
    imperfect = -0.9 * perfect
    x0 = torch.cat([perfect, imperfect])
    out = targeted_pgd(classifier, x0, torch.tensor([0, 0]), eps=2.0)
    assert torch.equal(out[0], x0[0])
    assert float((out[1] - x0[1]).norm()) == pytest.approx(2.0, rel=1e-4)


def test_a_vanishing_gradient_gives_a_zero_step_not_nan():
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([200.0, -200.0]))  # p(0 | x) == 1 exactly in float32
    x0 = images_in_range(3)
    out = targeted_pgd(Classifier(net, 2), x0, torch.zeros(3, dtype=torch.long), eps=1.0)
    assert torch.equal(out, x0)


def test_linf_takes_sign_steps_and_stays_in_the_box():
    classifier = tiny_classifier(3, seed=1)
    x0 = images_in_range(5, seed=2) * 0.5
    out = targeted_pgd(classifier, x0, torch.zeros(5, dtype=torch.long), eps=0.1, steps=1, step_size=0.05, norm="linf")
    # one sign step of 0.05: every pixel with a non-zero gradient moved by exactly 0.05
    moved = (out - x0).abs()
    assert bool(((moved - 0.05).abs() < 1e-6).float().mean() > 0.9)


# --- units and ranges ---------------------------------------------------------------


def test_eps_in_zero_one_units_is_converted_to_chain_units():
    classifier = tiny_classifier(3)
    x0 = images_in_range(6, seed=3)
    batch = SampleBatch(images=x0, labels=torch.arange(6) % 3)
    chain_units = BIGRoC(classifier, eps=1.0).refine(batch, None).images
    unit_units = BIGRoC(classifier, eps=0.5, eps_range=(0, 1)).refine(batch, None).images
    torch.testing.assert_close(chain_units, unit_units)
    assert 0.9 < float(distance(chain_units, x0, "l2").max()) <= 1.0 + 1e-5  # a radius of 1, not of 0.5


def test_a_batch_in_another_value_range_gives_the_same_images_in_its_own_range():
    classifier = tiny_classifier(3)
    x0 = images_in_range(6, seed=3)
    labels = torch.arange(6) % 3
    refiner = BIGRoC(classifier, eps=0.5, eps_range=(0, 1))
    in_chain = refiner.refine(SampleBatch(images=x0, labels=labels), None).images
    in_unit = refiner.refine(SampleBatch(images=(x0 + 1) / 2, labels=labels, value_range=(0.0, 1.0)), None).images
    torch.testing.assert_close(in_unit * 2 - 1, in_chain, atol=1e-6, rtol=1e-6)


def test_autocast_runs_and_keeps_the_guarantees():
    classifier = tiny_classifier(3)
    x0 = images_in_range(4)
    out = BIGRoC(classifier, eps=0.7, autocast=True).refine(SampleBatch(images=x0, labels=torch.tensor([0, 1, 2, 0])), None).images
    assert out.dtype == torch.float32
    assert bool((distance(out, x0, "l2") <= 0.7 * (1 + 1e-5)).all()) and float(out.abs().max()) <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    classifier = tiny_classifier(3)
    x0 = images_in_range(8)
    labels = torch.arange(8) % 3
    cpu = targeted_pgd(classifier, x0, labels, eps=1.0)
    classifier.cuda()
    batch = SampleBatch(images=x0.cuda(), labels=labels.cuda())
    gpu = BIGRoC(classifier, eps=1.0).refine(batch, None).images
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)


# --- labels and debiasing (Algorithm 2, Section 3) ------------------------------------------


def test_debias_offsets_are_one_minus_the_mean_logit_and_are_applied_before_the_argmax():
    classifier = tiny_classifier(3, bias=torch.tensor([3.0, 0.0, 0.0]))
    images = images_in_range(50, seed=9)
    with torch.no_grad():
        logits = classifier(images).double()
    debias = LogitDebias.estimate(classifier, images, batch_size=7)
    torch.testing.assert_close(debias.offsets.double(), 1.0 - logits.mean(0), atol=1e-6, rtol=0)
    assert debias.num_samples == 50
    refiner = BIGRoC(classifier, eps=0.5, debias=debias)
    expected = (logits + debias.offsets.double()).argmax(1)
    assert torch.equal(refiner.pseudo_labels(images), expected)
    # the bias towards class 0 is gone: the debiased pseudo labels are more balanced
    plain = BIGRoC(classifier, eps=0.5, debias=False).pseudo_labels(images)
    assert int((plain == 0).sum()) > int((expected == 0).sum())


@pytest.mark.parametrize("suffix", [".json", ".safetensors"])
def test_debias_offsets_round_trip_through_save_and_load(tmp_path, suffix):
    debias = LogitDebias(offsets=torch.tensor([0.123456789, -2.5, 1e-8, 3.0]), num_samples=77)
    path = debias.save(tmp_path / f"offsets{suffix}")
    loaded = LogitDebias.load(path)
    assert torch.equal(loaded.offsets, debias.offsets) and loaded.num_samples == 77
    refiner = BIGRoC(tiny_classifier(4), eps=1.0, debias=path)
    assert torch.equal(refiner.debias_offsets.offsets, debias.offsets)


def test_bad_debias_files_and_shapes_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        LogitDebias.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": "something else", "offsets": [1, 2], "num_samples": 3}')
    with pytest.raises(CheckpointError, match="format"):
        LogitDebias.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match=".json or .safetensors"):
        LogitDebias(offsets=torch.zeros(3), num_samples=1).save(tmp_path / "offsets.txt")
    with pytest.raises(InputError, match="3 classes but the classifier has 4"):
        BIGRoC(tiny_classifier(4), eps=1.0, debias=torch.zeros(3))
    with pytest.raises(InputError, match="finite"):
        LogitDebias(offsets=torch.tensor([0.0, float("nan")]), num_samples=1)


def test_setup_estimates_the_offsets_from_the_generator_deterministically():
    adapter = TorchAdapter(TinyImageGenerator())
    classifier = tiny_classifier(3, bias=torch.tensor([2.0, 0.0, -1.0]))
    refiner = BIGRoC(classifier, eps=0.5, debias_samples=300, batch_size=64)
    refiner.setup(adapter, seed=5)
    first = refiner.debias_offsets
    assert first is not None and first.num_samples == 300
    latents = adapter.prior.sample(5, torch.arange(300), "bigroc_debias")
    with torch.no_grad():
        expected = 1.0 - classifier(adapter.generate(latents)).double().mean(0)
    torch.testing.assert_close(first.offsets.double(), expected, atol=1e-5, rtol=0)
    other = BIGRoC(classifier, eps=0.5, debias_samples=300, batch_size=100)
    other.setup(adapter, seed=5)
    torch.testing.assert_close(other.debias_offsets.offsets, first.offsets, atol=1e-6, rtol=0)


def test_conditional_generators_use_their_own_labels_and_estimate_nothing():
    adapter = TorchAdapter(TinyImageGenerator(num_classes=3), num_classes=3)
    refiner = BIGRoC(tiny_classifier(3), eps=0.5)
    chain = Chain(adapter, refiners=[refiner])
    batch = chain.sample(12, seed=0, labels=torch.arange(12) % 3)
    assert refiner.debias_offsets is None
    assert torch.equal(batch.provenance["bigroc_target"], torch.arange(12) % 3)


def test_standalone_pseudo_labels_need_offsets_or_an_explicit_choice():
    classifier = tiny_classifier(3)
    batch = SampleBatch(images=images_in_range(4))
    chain = Chain(None, refiners=[BIGRoC(classifier, eps=0.5)])
    with pytest.raises(InputError, match="fit_debias"):
        chain.refine(batch)
    refiner = BIGRoC(classifier, eps=0.5)
    refiner.fit_debias(images_in_range(40, seed=11))
    out = Chain(None, refiners=[refiner]).refine(batch)
    assert out.images.shape == batch.images.shape and out.labels is None
    assert out.provenance["bigroc_target"].shape == (4,)
    assert Chain(None, refiners=[BIGRoC(classifier, eps=0.5, debias=False)]).refine(batch).images.shape == (4, 1, 4, 4)


def test_fit_standalone_estimates_from_the_unlabelled_images_only():
    classifier = tiny_classifier(3, bias=torch.tensor([1.0, 0.0, -1.0]))
    x = images_in_range(30, seed=12)
    batches = [SampleBatch(images=x[:10]), SampleBatch(images=x[10:20], labels=torch.zeros(10, dtype=torch.long)), SampleBatch(images=x[20:])]
    refiner = BIGRoC(classifier, eps=0.5)
    refiner.fit_standalone(iter(batches))
    unlabelled = torch.cat([x[:10], x[20:]])
    expected = LogitDebias.estimate(classifier, unlabelled)
    torch.testing.assert_close(refiner.debias_offsets.offsets, expected.offsets, atol=1e-6, rtol=0)
    assert refiner.debias_offsets.num_samples == 20
    given = BIGRoC(classifier, eps=0.5, debias=torch.zeros(3))
    given.fit_standalone(iter(batches))
    assert torch.equal(given.debias_offsets.offsets, torch.zeros(3))


# --- inside chains and the drop-in wrapper -----------------------------------------


def test_in_a_chain_results_do_not_depend_on_batch_size_and_improve_confidence():
    classifier = tiny_classifier(3, seed=4)
    adapter = TorchAdapter(TinyImageGenerator(), classifier=classifier)
    small = Chain(adapter, refiners=[BIGRoC(eps=1.0, debias_samples=200)], batch_size=5).sample(20, seed=1)
    large = Chain(adapter, refiners=[BIGRoC(eps=1.0, debias_samples=200)], batch_size=64).sample(20, seed=1)
    torch.testing.assert_close(small.images, large.images, atol=1e-5, rtol=1e-5)
    plain = Chain(adapter).sample(20, seed=1)
    targets = small.provenance["bigroc_target"]
    with torch.no_grad():
        before = F.softmax(classifier(plain.images), 1).gather(1, targets[:, None])
        after = F.softmax(classifier(small.images), 1).gather(1, targets[:, None])
    assert bool((after >= before).all())


def test_drop_in_and_registry_creation():
    classifier = tiny_classifier(3)
    G = dropin(TinyImageGenerator(num_classes=3), refiners=[BIGRoC(classifier, eps=0.5)], num_classes=3)
    z = torch.randn(6, 8)
    y = torch.arange(6) % 3
    refined = G(z, y)
    raw = G.chain.adapter.generator(z, y)
    assert refined.shape == raw.shape
    assert bool(((refined - raw).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all())
    created = get_registry().create("refiner", "bigroc", classifier=classifier, eps=0.25, norm="linf")
    assert isinstance(created, BIGRoC) and created.step_size == pytest.approx(1.5 * 0.25 / 7)


# --- clear errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"eps": 0.0}, InputError, "eps must be a finite number > 0"),
        ({"eps": float("nan")}, InputError, "eps must be a finite number"),
        ({"eps": -1.0}, InputError, "eps"),
        ({"eps": 1.0, "steps": 0}, InputError, "steps must be an integer >= 1"),
        ({"eps": 1.0, "steps": 2.5}, InputTypeError, "steps"),
        ({"eps": 1.0, "step_size": -0.1}, InputError, "step_size"),
        ({"eps": 1.0, "norm": "l1"}, InputError, "norm must be one of"),
        ({"eps": 1.0, "labels": "true"}, InputError, "labels must be one of"),
        ({"eps": 1.0, "eps_range": (1, 0)}, InputError, "eps_range"),
        ({"eps": 1.0, "debias": 3}, InputTypeError, "debias"),
    ],
)
def test_out_of_domain_settings_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        BIGRoC(tiny_classifier(3), **kwargs)


def test_eps_is_required():
    with pytest.raises(TypeError, match="eps"):
        BIGRoC(tiny_classifier(3))


def test_bad_inputs_are_refused_with_clear_errors():
    classifier = tiny_classifier(3)
    refiner = BIGRoC(classifier, eps=0.5, debias=False)
    good = images_in_range(3)
    nan = good.clone()
    nan[1, 0, 2, 2] = float("nan")
    with pytest.raises(InputError, match="finite"):
        refiner.refine(SampleBatch(images=nan), None)
    inf = good.clone()
    inf[0, 0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="finite"):
        refiner.refine(SampleBatch(images=inf), None)
    with pytest.raises(InputError, match=r"must lie in \[-1, 1\]"):
        refiner.refine(SampleBatch(images=good * 3), None)
    with pytest.raises(InputError, match=r"must lie in \[0, 2\] for a model with 3 classes"):
        refiner.refine(SampleBatch(images=good, labels=torch.tensor([0, 5, 1])), None)
    with pytest.raises(InputError, match="no labels"):
        BIGRoC(classifier, eps=0.5, labels="given").refine(SampleBatch(images=good), None)


def test_a_classifier_with_the_wrong_number_of_classes_is_refused():
    adapter = TorchAdapter(TinyImageGenerator(num_classes=3), num_classes=3)
    with pytest.raises(InputError, match="conditional with 3 classes but BIGRoC's classifier has 4"):
        Chain(adapter, refiners=[BIGRoC(tiny_classifier(4), eps=0.5)]).sample(4, seed=0)
    # a wrapper that declares 5 classes around a net with 3 outputs
    liar = Classifier(tiny_classifier(3).module, 5)
    with pytest.raises(InputError, match=r"logits of shape \[2, 5\]"):
        BIGRoC(liar, eps=0.5, debias=False).refine(SampleBatch(images=images_in_range(2)), None)


def test_a_missing_classifier_or_an_unwrapped_one_is_named():
    with pytest.raises(MissingModelError, match="BIGRoC needs a robust classifier"):
        Chain(None, refiners=[BIGRoC(eps=0.5)]).refine(SampleBatch(images=images_in_range(2)))
    with pytest.raises(MissingModelError, match="BIGRoC needs a classifier"):
        Chain(TorchAdapter(TinyImageGenerator()), refiners=[BIGRoC(eps=0.5)]).sample(2)
    with pytest.raises(InputTypeError, match="Classifier"):
        BIGRoC(nn.Linear(16, 3), eps=0.5)


def test_describe_names_every_setting():
    described = BIGRoC(tiny_classifier(3), eps=2.0, eps_range=(0, 1), steps=3).describe()
    assert described["name"] == "bigroc" and described["eps"] == 2.0 and described["eps_range"] == [0.0, 1.0]
    assert described["step_size"] == pytest.approx(1.0) and described["norm"] == "l2" and described["debias"] is True
    assert math.isfinite(described["step_size"])


# --- benchmark rows ---------------------------------------------------------------------------


def test_benchmark_rows_for_digits_suites_run_and_have_a_floor():
    from gan_postproc.bench.setups import BenchmarkContext
    from gan_postproc.pipeline.chain import RunReport
    from gan_postproc.plugins.bigroc import refiner as plugin

    classifier = tiny_classifier(3)
    context = BenchmarkContext(
        suite="demo", dataset="digits", adapter=TorchAdapter(TinyImageGenerator()),
        conditional_adapter=TorchAdapter(TinyImageGenerator(num_classes=3), num_classes=3),
        real_data=lambda n, seed: images_in_range(n, seed), models={"robust_classifier": classifier}, quick=True,
    )
    rows = {row.name: row for row in plugin.gan_postproc_benchmark_setups(context=context)}
    assert sorted(rows) == ["bigroc_gt", "bigroc_pl"] and rows["bigroc_gt"].conditional and not rows["bigroc_pl"].conditional
    for row in rows.values():
        adapter = context.conditional_adapter if row.conditional else context.adapter
        batch = Chain(adapter, row.sampler, row.refiners).sample(8, seed=0)
        assert batch.images.shape == (8, 1, 4, 4)
        row.floor(batch, RunReport())
    toy = BenchmarkContext(suite="toy2d", dataset="25gaussians", adapter=context.adapter, conditional_adapter=None, real_data=context.real_data)
    assert plugin.gan_postproc_benchmark_setups(context=toy) == []


def test_refines_diffusers_outputs_through_the_postprocessor():
    from gan_postproc.integrations.diffusers import DiffusersPostprocessor

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))
    classifier = Classifier(net, 5, input_range=(0, 1))
    images = np.random.default_rng(0).uniform(0.1, 0.9, (4, 8, 8, 3)).astype(np.float32)  # output_type="np": NHWC in [0, 1]
    post = DiffusersPostprocessor([BIGRoC(classifier, eps=0.2, eps_range=(0, 1))])
    refined = post(images, labels=[0, 1, 2, 3])  # e.g. DiT's class_labels: BIGRoC_GT
    assert refined.shape == images.shape and refined.dtype == np.float32
    moved = np.sqrt(((refined - images) ** 2).reshape(4, -1).sum(1))
    assert bool((moved <= 0.2 + 1e-5).all()) and bool((moved > 0.1).all())
    with torch.no_grad():
        before = F.softmax(classifier(torch.from_numpy(images).permute(0, 3, 1, 2) * 2 - 1), 1)[torch.arange(4), torch.arange(4)]
        after = F.softmax(classifier(torch.from_numpy(refined).permute(0, 3, 1, 2) * 2 - 1), 1)[torch.arange(4), torch.arange(4)]
    assert bool((after > before).all())
