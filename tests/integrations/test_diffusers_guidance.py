"""DG and DiffRS inside real diffusers pipelines built from configs (DDPM, DDIM, DiT with CFG, Stable Diffusion
with CFG when transformers is installed), and the shipped digits diffusion model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch import nn

diffusers = pytest.importorskip("diffusers")

from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, FlowMatchEulerDiscreteScheduler  # noqa: E402

from gan_postproc.errors import InputError, InputTypeError  # noqa: E402
from gan_postproc.integrations.diffusers import CallbackPipeline, DiffusersCallback, DiffusersPostprocessor  # noqa: E402
from gan_postproc.integrations.diffusers.guidance import (
    DGDenoiser,
    DGPipeline,
    DiffusersDiffRS,
    load_digits_dg_discriminator,
    load_digits_diffusion_pipeline,
    sample_pipeline,
)
from gan_postproc.plugins.discriminator_guidance import AncestralSchedule, TimeDependentDiscriminator  # noqa: E402

from ..helpers.integration_methods import EvenRowLatentRefiner, QuadrantRefiner  # noqa: E402
from .test_diffusers import _embeds, _pixel_unet, _quiet, build_ddim, build_ddpm, build_dit, build_sd  # noqa: E402

STEPS = 3


def disc(shape=(3, 8, 8), timesteps=50, num_classes=None, seed=0):
    """A small random discriminator with a conv feature extractor (random, so its gradient is not zero)."""
    torch.manual_seed(seed)
    extractor = nn.Sequential(nn.Conv2d(shape[0], 4, 3, padding=1), nn.Tanh(), nn.Flatten())
    return TimeDependentDiscriminator(extractor, input_shape=shape, num_timesteps=timesteps, num_classes=num_classes,
                                      width=16, depth=1, time_embedding_dim=8, seed=seed)


def as_array(output):
    images = output.images
    return np.asarray(images) if not isinstance(images, torch.Tensor) else images.numpy()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


CASES = {
    "ddpm": (build_ddpm, (3, 8, 8), None, lambda: {"batch_size": 3}),
    "ddim": (build_ddim, (3, 8, 8), None, lambda: {"batch_size": 3}),
    "dit": (build_dit, (4, 8, 8), 1000, lambda: {"class_labels": [1, 5, 7]}),
    "dit_no_cfg": (build_dit, (4, 8, 8), 1000, lambda: {"class_labels": [1, 5, 7], "guidance_scale": 1.0}),
    "sd": (build_sd, (4, 8, 8), None, lambda: {"prompt_embeds": _embeds(12, (3, 3, 8)), "negative_prompt_embeds": _embeds(13, (3, 3, 8)),
                                               "height": 8, "width": 8, "guidance_scale": 3.0}),
    "sd_no_cfg": (build_sd, (4, 8, 8), None, lambda: {"prompt_embeds": _embeds(12, (3, 3, 8)), "height": 8, "width": 8,
                                                      "guidance_scale": 1.0}),
}


@pytest.fixture(scope="module")
def built():
    return {}


def pipeline(built, name):
    if name not in built:
        built[name] = CASES[name][0]()
    return built[name]


@pytest.mark.parametrize("name", list(CASES))
def test_weight_zero_reproduces_the_unwrapped_pipeline_exactly_and_a_weight_changes_it(built, name):
    pipe = pipeline(built, name)
    _, shape, classes, arguments = CASES[name]
    discriminator = disc(shape, num_classes=classes)
    plain = as_array(pipe(**arguments(), num_inference_steps=STEPS, generator=gen(), output_type="np"))
    zero = as_array(DGPipeline(pipe, discriminator, weight=0.0)(**arguments(), num_inference_steps=STEPS, generator=gen(), output_type="np"))
    assert np.array_equal(plain, zero)
    guided = DGPipeline(pipe, discriminator, weight=50.0)
    moved = as_array(guided(**arguments(), num_inference_steps=STEPS, generator=gen(), output_type="np"))
    assert np.abs(moved - plain).max() > 1e-4
    assert guided.report["guided_steps"] >= 1
    denoiser = getattr(pipe, guided.denoiser_name)
    assert not isinstance(denoiser, DGDenoiser), "the denoiser must be restored after the call"
    again = as_array(pipe(**arguments(), num_inference_steps=STEPS, generator=gen(), output_type="np"))
    assert np.array_equal(plain, again)


def _cfg_denoiser(prediction_type="epsilon"):
    """A DGDenoiser around a fixed linear 'denoiser', so the correction can be checked by hand."""
    scheduler = DDPMScheduler(num_train_timesteps=50, prediction_type=prediction_type)
    unet = _pixel_unet().eval()
    discriminator = disc()
    return DGDenoiser(unet, discriminator, alphas_cumprod=scheduler.alphas_cumprod.double(), prediction_type=prediction_type, weight=2.0), unet


def test_a_cfg_doubled_batch_gets_the_same_correction_in_both_halves_so_the_guided_prediction_moves_by_exactly_it():
    guide, unet = _cfg_denoiser()
    x = torch.randn(2, 3, 8, 8, generator=gen(1))
    t = torch.tensor(30)
    with torch.no_grad():
        single = guide(x, t).sample - unet(x, t).sample
        doubled_x = torch.cat([x, x])
        doubled = guide(doubled_x, t).sample - unet(doubled_x, t).sample
    assert torch.allclose(doubled[:2], single, atol=1e-5) and torch.allclose(doubled[2:], single, atol=1e-5)
    # e_u + s (e_c - e_u) is affine with weights summing to 1: the guided prediction moves by the correction itself
    scale = 7.5
    assert torch.allclose(doubled[:2] + scale * (doubled[2:] - doubled[:2]), single, atol=1e-4)


def test_the_correction_keeps_the_denoisers_dtype_and_device():
    guide, unet = _cfg_denoiser()
    guide.denoiser = unet.double()
    x = torch.randn(2, 3, 8, 8, generator=gen(5), dtype=torch.float64)
    with torch.no_grad():
        out = guide(x, torch.tensor(30)).sample
    assert out.dtype == torch.float64 and out.device == x.device
    assert not torch.equal(out, unet(x, torch.tensor(30)).sample)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_every_handled_prediction_type_runs_in_ddim_and_is_corrected(prediction_type):
    torch.manual_seed(0)
    pipe = _quiet(DDIMPipeline(unet=_pixel_unet(), scheduler=DDIMScheduler(num_train_timesteps=50, prediction_type=prediction_type)))
    plain = as_array(pipe(batch_size=2, num_inference_steps=STEPS, generator=gen(), output_type="np"))
    moved = as_array(DGPipeline(pipe, disc(), weight=50.0)(batch_size=2, num_inference_steps=STEPS, generator=gen(), output_type="np"))
    assert np.abs(moved - plain).max() > 1e-4


def test_time_range_outside_every_step_leaves_the_pipeline_unchanged(built):
    pipe = pipeline(built, "ddpm")
    plain = as_array(pipe(batch_size=2, num_inference_steps=STEPS, generator=gen(), output_type="np"))
    guided = DGPipeline(pipe, disc(), weight=50.0, time_range=(0.99, 1.0))  # timesteps 49/50 = 0.98 and below
    assert np.array_equal(plain, as_array(guided(batch_size=2, num_inference_steps=STEPS, generator=gen(), output_type="np")))
    assert guided.report["guided_steps"] == 0


def test_bad_pipelines_discriminators_and_schedulers_are_refused_before_sampling(built):
    ddpm = pipeline(built, "ddpm")
    with pytest.raises(InputError, match="takes x_t of shape"):
        DGPipeline(ddpm, disc(shape=(1, 8, 8)))
    with pytest.raises(InputError, match="embeds 1000 timesteps"):
        DGPipeline(ddpm, disc(timesteps=1000))
    with pytest.raises(InputTypeError, match="TimeDependentDiscriminator"):
        DGPipeline(ddpm, nn.Linear(3, 1))
    unknown = _quiet(DDIMPipeline(unet=_pixel_unet(), scheduler=DDIMScheduler(num_train_timesteps=50)))
    unknown.scheduler.register_to_config(prediction_type="flow")
    with pytest.raises(InputError, match="prediction_type 'flow'"):
        DGPipeline(unknown, disc())
    flow = _quiet(DDPMPipeline(unet=_pixel_unet(), scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=50)))
    with pytest.raises(InputError, match="no alphas_cumprod"):
        DGPipeline(flow, disc())

    class NoDenoiser:
        components: dict = {}

        def __call__(self):
            raise AssertionError("must not be called")

    with pytest.raises(InputError, match="no denoiser DG can wrap"):
        DGPipeline(NoDenoiser(), disc())
    dit = pipeline(built, "dit")
    conditional = DGPipeline(dit, disc((4, 8, 8), num_classes=1000))
    with pytest.raises(InputError, match="class-conditional"):
        DGPipeline(pipeline(built, "ddpm"), disc(num_classes=10))(batch_size=2, num_inference_steps=STEPS)
    assert conditional.guide.discriminator.num_classes == 1000
    if importlib.util.find_spec("transformers") is not None:  # Stable Diffusion: the call's height / width decide the latents
        sd = pipeline(built, "sd")
        with pytest.raises(InputError, match="gives latents"):
            DGPipeline(sd, disc((4, 8, 8)))(prompt_embeds=_embeds(1, (1, 3, 8)), height=16, width=16, num_inference_steps=STEPS)


def test_dg_in_the_sampler_composes_with_the_step_callback_and_the_postprocessor(built):
    ddpm = pipeline(built, "ddpm")
    guided = DGPipeline(ddpm, disc(), weight=20.0)
    dg_only = as_array(guided(batch_size=4, num_inference_steps=STEPS, generator=gen(), output_type="np"))
    with_callback = CallbackPipeline(guided, DiffusersCallback([EvenRowLatentRefiner()]))
    both = as_array(with_callback(batch_size=4, num_inference_steps=STEPS, generator=gen(), output_type="np"))
    assert np.array_equal(both[1::2], dg_only[1::2]) and not np.array_equal(both[0::2], dg_only[0::2])
    dit = pipeline(built, "dit")
    post = DiffusersPostprocessor([QuadrantRefiner()]).wrap(DGPipeline(dit, disc((4, 8, 8)), weight=20.0))
    out = post(class_labels=[1, 5], num_inference_steps=STEPS, generator=gen(), output_type="np")
    assert np.asarray(out.images).shape[0] == 2


def test_ancestral_schedule_reproduces_ddpmscheduler_step_with_the_same_noise():
    scheduler = DDPMScheduler(num_train_timesteps=50)
    scheduler.set_timesteps(5)
    schedule = AncestralSchedule(scheduler.alphas_cumprod, scheduler.timesteps, "epsilon", 1.0)
    x = torch.randn(3, 3, 8, 8, generator=gen(2))
    prediction = torch.randn(3, 3, 8, 8, generator=gen(3))
    for level, t in enumerate(scheduler.timesteps):
        expected = scheduler.step(prediction, t, x, generator=gen(4)).prev_sample
        noise = torch.randn(x.shape, generator=gen(4))
        got = schedule.step(x, prediction, torch.full((3,), level), noise)
        assert torch.allclose(got, expected, atol=1e-5), f"step {level} (t={int(t)})"


def test_diffrs_runs_on_a_real_ddpm_pipeline_with_statistics_and_refuses_other_schedulers(built):
    ddpm = pipeline(built, "ddpm")
    rs = DiffusersDiffRS(ddpm, disc(), num_inference_steps=4, percentile=0.9)
    thresholds = rs.fit_thresholds(16, seed=0, batch_size=8)
    assert len(thresholds["marginal"]) == 5 and min(thresholds["transition"]) >= 0
    images, stats = rs.sample(6, seed=1, batch_size=4)
    assert images.shape == (6, 3, 8, 8) and images.abs().max() <= 1
    report = stats.as_dict()
    assert report["samples"] == 6 and report["proposals"] >= 6 * 4 and 0 < report["acceptance_rate"] <= 1
    assert report["denoiser_calls_mean"] >= 4
    again, _ = rs.sample(6, seed=1, batch_size=6)  # keyed randomness: another batch split, the same samples
    assert torch.allclose(images, again, atol=1e-5)
    with pytest.raises(InputError, match="DDPMScheduler"):
        DiffusersDiffRS(pipeline(built, "ddim"), disc(), num_inference_steps=4)


def test_the_shipped_digits_diffusion_model_and_discriminator_load_and_guide():
    pipe = load_digits_diffusion_pipeline()
    discriminator = load_digits_dg_discriminator()
    assert discriminator.input_shape == (1, 8, 8) and discriminator.num_timesteps == pipe.scheduler.config.num_train_timesteps
    plain = sample_pipeline(pipe, 4, seed=0, num_inference_steps=4)
    guided = sample_pipeline(DGPipeline(pipe, discriminator, weight=2.0), 4, seed=0, num_inference_steps=4)
    assert plain.shape == (4, 1, 8, 8) and plain.abs().max() <= 1
    assert not torch.equal(plain, guided)


def test_train_dg_command_trains_saves_and_resumes_on_the_shipped_digits_model(tmp_path, capsys):
    from gan_postproc.cli.app import main
    from gan_postproc.integrations.diffusers.guidance import digits_dg_feature_extractor

    out = tmp_path / "dg.safetensors"
    arguments = ["train-dg", "--pipeline", "digits", "--extractor", "digits", "--real", "digits", "--generate", "16",
                 "--num-inference-steps", "2", "--epochs", "1", "--batch-size", "64", "--width", "16", "--depth", "1",
                 "--out", str(out), "--quiet", "--json"]
    assert main(arguments) == 0
    first = TimeDependentDiscriminator.load(out, digits_dg_feature_extractor())
    assert first.info["trained_by"] == "gan-postproc train-dg" and first.input_shape == (1, 8, 8)
    assert main(arguments) == 0  # a re-run resumes from the checkpoint: nothing left to train, the same weights
    second = TimeDependentDiscriminator.load(out, digits_dg_feature_extractor())
    assert all(torch.equal(a, b) for a, b in zip(first.head_state_dict().values(), second.head_state_dict().values()))
    capsys.readouterr()
    assert main(["train-dg", "--pipeline", "digits", "--extractor", "digits", "--real", "digits", "--generate", "4",
                 "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "--num-inference-steps" in capsys.readouterr().err


def test_the_demo_says_dg_rows_need_the_diffusers_extra_when_diffusers_is_missing(monkeypatch, capsys):
    import argparse
    import importlib.util

    from gan_postproc.cli import demo_command

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "diffusers" else real_find_spec(name, *a))
    demo_command._benchmark_rows(argparse.Namespace(n=10, seed=0, out=None))  # the dg_digits benchmark's demo_rows
    assert "pip install 'gan-postproc[diffusers]'" in capsys.readouterr().out


def test_the_dg_benchmark_is_registered():
    from gan_postproc.cli.bench_command import available

    assert "dg_digits" in available()


def test_the_ddim_adapter_runs_a_diffusion_model_in_a_chain_with_dg_then_bigroc(built):
    from gan_postproc import Chain, get_registry
    from gan_postproc.integrations.diffusers.guidance import DDIMDiffusionAdapter

    assert "diffusion_ddim" in get_registry().names("adapter")
    ddpm = pipeline(built, "ddpm")
    plain = Chain(DDIMDiffusionAdapter(ddpm, num_inference_steps=STEPS)).sample(4, seed=0).images
    zero = Chain(DDIMDiffusionAdapter(ddpm, num_inference_steps=STEPS, discriminator=disc(), weight=0.0)).sample(4, seed=0).images
    assert torch.equal(plain, zero)
    guided = DDIMDiffusionAdapter(ddpm, num_inference_steps=STEPS, discriminator=disc(), weight=50.0)
    batch = Chain(guided, refiners=[QuadrantRefiner()]).sample(4, seed=0)
    assert batch.images.shape == (4, 3, 8, 8) and not torch.equal(batch.images, plain)
    with pytest.raises(InputError, match="transformer"):
        DDIMDiffusionAdapter(pipeline(built, "dit"), num_inference_steps=STEPS)
