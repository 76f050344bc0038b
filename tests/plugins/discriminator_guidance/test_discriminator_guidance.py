"""The discriminator-guidance family without any framework: the time-dependent discriminator, its training
(resume bit-exact, refusals), DG's correction in every parameterisation, and DiffRS's accept / reject / back-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.plugins.discriminator_guidance import (
    AncestralSchedule,
    DiffRS,
    TimeDependentDiscriminator,
    correct_prediction,
    log_ratio_and_gradient,
    train_dg_discriminator,
)

T = 20
ALPHAS = torch.linspace(0.999, 0.05, T, dtype=torch.float64)


def extractor(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten())


def build(seed=0, **options):
    return TimeDependentDiscriminator(extractor(seed), input_shape=(1, 4, 4), num_timesteps=T, width=16, depth=1,
                                      time_embedding_dim=8, seed=seed, **options)


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    real = (torch.rand(n, 1, 4, 4, generator=g) * 0.2 + 0.5).clamp(-1, 1)   # bright images
    fake = (torch.rand(n, 1, 4, 4, generator=g) * 0.2 - 0.7).clamp(-1, 1)   # dark images
    return real, fake


def test_the_head_is_seeded_the_extractor_frozen_and_the_global_rng_untouched():
    first, second = extractor(0), extractor(0)
    state = torch.random.get_rng_state()
    options = {"input_shape": (1, 4, 4), "num_timesteps": T, "width": 16, "depth": 1, "time_embedding_dim": 8, "seed": 3}
    a, b = TimeDependentDiscriminator(first, **options), TimeDependentDiscriminator(second, **options)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.head_state_dict().values(), b.head_state_dict().values()))
    assert not any(p.requires_grad for p in a.extractor.parameters())
    a.train()
    assert not a.extractor.training and a.training


def test_training_separates_real_from_generated_and_resumes_bit_exactly(tmp_path):
    real, fake = data()
    straight = build()
    report = train_dg_discriminator(straight, real, fake, alphas_cumprod=ALPHAS, epochs=4, batch_size=16, lr=3e-3,
                                    time_sampling="uniform", validation=data(32, seed=1), checkpoint_dir=tmp_path / "a", progress=False)
    assert report.history[-1]["heldout_accuracy"] > 0.7
    resumed = build()
    train_dg_discriminator(resumed, real, fake, alphas_cumprod=ALPHAS, epochs=2, batch_size=16, lr=3e-3, time_sampling="uniform",
                           validation=data(32, seed=1), checkpoint_dir=tmp_path / "b", progress=False)
    again = build()
    second = train_dg_discriminator(again, real, fake, alphas_cumprod=ALPHAS, epochs=4, batch_size=16, lr=3e-3, time_sampling="uniform",
                                    validation=data(32, seed=1), checkpoint_dir=tmp_path / "b", progress=False)
    assert second.start_epoch == 2
    for key, value in straight.head_state_dict().items():
        assert torch.equal(value, again.head_state_dict()[key]), key
    assert second.history == report.history
    with pytest.raises(CheckpointError, match="lr"):
        train_dg_discriminator(build(), real, fake, alphas_cumprod=ALPHAS, epochs=5, batch_size=16, lr=1e-3,
                               time_sampling="uniform", validation=data(32, seed=1), checkpoint_dir=tmp_path / "b", progress=False)


def test_samples_come_from_npz_files_and_image_folders(tmp_path):
    from PIL import Image

    real, fake = data(8)
    pixels = ((real + 1) * 127.5).round().to(torch.uint8).numpy()
    np.savez(tmp_path / "real.npz", images=pixels)
    folder = tmp_path / "fake"
    folder.mkdir()
    for i, image in enumerate(((fake + 1) * 127.5).round().to(torch.uint8).numpy()):
        Image.fromarray(image[0]).save(folder / f"{i}.png")
    report = train_dg_discriminator(build(), tmp_path / "real.npz", folder, alphas_cumprod=ALPHAS, epochs=1, batch_size=4, progress=False)
    assert report.epochs == 1 and len(report.history) == 1


def test_bad_inputs_are_refused_before_any_training(tmp_path):
    real, fake = data(8)
    with pytest.raises(InputError, match="failed on an input of shape"):
        TimeDependentDiscriminator(nn.Linear(7, 2), input_shape=(1, 4, 4), num_timesteps=T)
    with pytest.raises(InputError, match="discriminator takes"):
        train_dg_discriminator(build(), real, torch.zeros(8, 1, 8, 8), alphas_cumprod=ALPHAS, progress=False)
    with pytest.raises(InputError, match="timesteps"):
        train_dg_discriminator(build(), real, fake, alphas_cumprod=ALPHAS[:10], progress=False)
    with pytest.raises(InputError, match="even"):
        train_dg_discriminator(build(), real, fake, alphas_cumprod=ALPHAS, batch_size=5, progress=False)
    with pytest.raises(InputError, match="class-conditional"):
        train_dg_discriminator(build(num_classes=3), real, fake, alphas_cumprod=ALPHAS, progress=False)
    with pytest.raises(InputError, match="neither a folder"):
        train_dg_discriminator(build(), tmp_path / "missing.npz", fake, alphas_cumprod=ALPHAS, progress=False)
    with pytest.raises(InputError, match="built for inputs"):
        build()(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))


def test_save_and_load_round_trip_and_another_extractor_is_refused(tmp_path):
    trained = build(num_classes=3)
    path = trained.save(tmp_path / "d.safetensors", info={"note": "test"})
    loaded = TimeDependentDiscriminator.load(path, extractor(0))
    x, t, y = torch.randn(3, 1, 4, 4), torch.tensor([0, 5, 19]), torch.tensor([0, 1, 2])
    assert torch.equal(loaded(x, t, y), trained(x, t, y)) and loaded.info == {"note": "test"}
    with pytest.raises(CheckpointError, match="another feature extractor"):
        TimeDependentDiscriminator.load(path, extractor(1))


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_the_correction_is_the_same_score_shift_in_every_parameterisation(kind):
    """eps' = eps - w sqrt(1 - abar) g, and x_0 / v computed from eps' equal the corrected x_0 / v predictions."""
    g = torch.Generator().manual_seed(0)
    x, eps, grad = (torch.randn(4, 1, 4, 4, generator=g) for _ in range(3))
    abar = torch.tensor([0.9, 0.5, 0.2, 0.05], dtype=torch.float64)
    a = abar.float().view(-1, 1, 1, 1)
    w = 1.7
    eps_new = correct_prediction(eps, "epsilon", grad, abar, w)
    assert torch.allclose(eps_new, eps - w * (1 - a).sqrt() * grad)
    # the score -eps / sqrt(1 - abar) moves by exactly w * g
    assert torch.allclose(-eps_new / (1 - a).sqrt(), -eps / (1 - a).sqrt() + w * grad, atol=1e-5)
    as_kind = {
        "epsilon": lambda e: e,
        "sample": lambda e: (x - (1 - a).sqrt() * e) / a.sqrt(),
        "v_prediction": lambda e: a.sqrt() * e - (1 - a).sqrt() * (x - (1 - a).sqrt() * e) / a.sqrt(),
    }[kind]
    assert torch.allclose(correct_prediction(as_kind(eps), kind, grad, abar, w), as_kind(eps_new), atol=1e-4)
    assert torch.equal(correct_prediction(as_kind(eps), kind, grad, abar, 0.0), as_kind(eps))


def test_the_log_ratio_gradient_works_inside_inference_mode_and_writes_no_grad():
    d = build()
    x, t = torch.randn(3, 1, 4, 4), torch.tensor([1, 2, 3])
    with torch.inference_mode():
        logit, gradient = log_ratio_and_gradient(d, x, t)
    assert gradient.shape == x.shape and gradient.abs().sum() > 0 and logit.shape == (3,)
    assert all(p.grad is None for p in d.parameters())


def _schedule(levels=5):
    return AncestralSchedule(ALPHAS, torch.linspace(T - 1, 0, levels).round().long(), "epsilon", 1.0)


def _zero_denoiser(x, t):
    return torch.zeros_like(x)


def test_diffrs_with_a_flat_ratio_accepts_every_step_and_costs_exactly_the_plain_sampler():
    rs = DiffRS(_zero_denoiser, lambda x, t: torch.zeros(len(x)), _schedule(), (1, 4, 4))
    rs.fit_thresholds(8, seed=0)
    samples, stats = rs.sample(torch.arange(6), seed=1)
    report = stats.as_dict()
    assert report["acceptance_rate"] == 1.0 and report["marginal_rejections"] == 0 and report["backoffs"] == 0
    assert report["denoiser_calls_mean"] == 5 and report["denoiser_calls_max"] == 5
    assert samples.shape == (6, 1, 4, 4)


def test_diffrs_rejects_backs_off_and_stays_within_its_round_budget():
    # a ratio that strongly prefers positive pixel means: proposals that lower the mean get rejected
    def log_ratio(x, t):
        return 8.0 * x.flatten(1).mean(1).double()

    rs = DiffRS(_zero_denoiser, log_ratio, _schedule(), (1, 4, 4), percentile=0.5, backsteps=1, max_rounds_per_step=3)
    rs.fit_thresholds(64, seed=0)
    samples, stats = rs.sample(torch.arange(16), seed=2)
    report = stats.as_dict()
    assert report["backoffs"] > 0 and report["marginal_rejections"] > 0 and report["acceptance_rate"] < 1
    assert report["rounds"] <= 3 * 5 + 5 + 1  # the budget, then plain steps
    assert report["denoiser_calls_max"] <= 3 * 5 + 5
    assert torch.isfinite(samples).all()
    # keyed randomness: the same samples whatever the batch they run in
    first, _ = rs.sample(torch.arange(8), seed=2)
    second, _ = rs.sample(torch.arange(8, 16), seed=2)
    assert torch.allclose(torch.cat([first, second]), samples, atol=1e-6)
    with pytest.raises(InputError, match="thresholds"):
        DiffRS(_zero_denoiser, log_ratio, _schedule(), (1, 4, 4)).sample(torch.arange(2), seed=0)


def test_the_docs_table_is_the_rendering_of_the_committed_benchmark_results():
    import json
    from pathlib import Path

    from gan_postproc.benchmarks.dg_digits import RESULTS, render_markdown

    page = (Path(__file__).resolve().parents[3] / "docs" / "discriminator_guidance.md").read_text(encoding="utf-8")
    start = page.index("<!-- table: benchmarks/results/dg_digits.json#dg-digits -->")
    body = page[page.index("\n", start) + 1 : page.index("<!-- /table -->", start)].strip()
    assert body == render_markdown(json.loads(RESULTS.read_text(encoding="utf-8"))).strip()
