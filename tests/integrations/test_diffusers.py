"""The diffusers integration on tiny pipelines built from configs with random weights.

Pipelines: DDPM and DDIM (pixel space, no callback_on_step_end), DiT (latent,
class-conditional, no callback_on_step_end, CFG-doubled scheduler batch),
Kandinsky 2.2 (latent, callback_on_step_end, image embeddings instead of a
text encoder) and, when transformers is installed, Stable Diffusion with
``prompt_embeds`` and no text encoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    DiTPipeline,
    DiTTransformer2DModel,
    UNet2DConditionModel,
    UNet2DModel,
    VQModel,
)
from diffusers.callbacks import MultiPipelineCallbacks  # noqa: E402
from diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2 import KandinskyV22Pipeline  # noqa: E402

from gan_postproc import Classifier, RejectionSampler, get_registry  # noqa: E402
from gan_postproc.errors import InputError, OptionalDependencyError  # noqa: E402
from gan_postproc.integrations.diffusers import CallbackPipeline, DiffusersAdapter, DiffusersCallback, DiffusersPostprocessor
from gan_postproc.plugins.bigroc import BIGRoC  # noqa: E402
from gan_postproc.plugins.collaborative import CollaborativeRefiner  # noqa: E402
from gan_postproc.plugins.dot import DOT  # noqa: E402

from ..helpers.integration_methods import (
    EvenRowAscent,
    EvenRowLatentRefiner,
    QuadrantRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_rows,
    quadrant_mask,
)

STEPS = 3


def _quiet(pipe):
    """No progress bars; models in eval mode, as from_pretrained leaves them (DiT drops labels in train mode)."""
    pipe.set_progress_bar_config(disable=True)
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()
    return pipe


def _pixel_unet() -> UNet2DModel:
    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
    )


def _vae() -> AutoencoderKL:
    torch.manual_seed(1)
    return AutoencoderKL(
        block_out_channels=(4,), norm_num_groups=2, latent_channels=4, layers_per_block=1, sample_size=8,
        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
    )


def build_ddpm():
    return _quiet(DDPMPipeline(unet=_pixel_unet(), scheduler=DDPMScheduler(num_train_timesteps=50)))


def build_ddim():
    return _quiet(DDIMPipeline(unet=_pixel_unet(), scheduler=DDIMScheduler(num_train_timesteps=50)))


def build_dit():
    torch.manual_seed(2)
    transformer = DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=4, in_channels=4, out_channels=8, num_layers=1, sample_size=8,
        patch_size=2, norm_num_groups=2, num_embeds_ada_norm=1000,  # the pipeline's null class is 1000
    )
    return _quiet(DiTPipeline(transformer=transformer, vae=_vae(), scheduler=DDIMScheduler(num_train_timesteps=50)))


def build_kandinsky():
    torch.manual_seed(3)
    unet = UNet2DConditionModel(
        in_channels=4, out_channels=8, sample_size=8, addition_embed_type="image", encoder_hid_dim=8,
        encoder_hid_dim_type="image_proj", cross_attention_dim=8, attention_head_dim=4, block_out_channels=(8, 16),
        layers_per_block=1, norm_num_groups=4, resnet_time_scale_shift="scale_shift", class_embed_type=None,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    )
    movq = VQModel(
        block_out_channels=[8, 16], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"], in_channels=3, out_channels=3, latent_channels=4,
        layers_per_block=1, norm_num_groups=4, num_vq_embeddings=12, vq_embed_dim=4,
    )
    return _quiet(KandinskyV22Pipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=50, clip_sample=False), movq=movq))


def build_sd():
    pytest.importorskip("transformers")
    from diffusers import StableDiffusionPipeline

    torch.manual_seed(4)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(4, 8), layers_per_block=1, norm_num_groups=2,
        cross_attention_dim=8, attention_head_dim=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    scheduler = DDIMScheduler(num_train_timesteps=50, steps_offset=1, clip_sample=False)
    return _quiet(
        StableDiffusionPipeline(
            vae=_vae(), text_encoder=None, tokenizer=None, unet=unet, scheduler=scheduler, safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )
    )


def _embeds(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# name -> (builder, call arguments for a batch of 4 images)
PIPELINES = {
    "ddpm": (build_ddpm, lambda: {"batch_size": 4}),
    "ddim": (build_ddim, lambda: {"batch_size": 4}),
    "dit": (build_dit, lambda: {"class_labels": [1, 5, 7, 9]}),
    "kandinsky": (
        build_kandinsky,
        lambda: {"image_embeds": _embeds(10, (4, 8)), "negative_image_embeds": _embeds(11, (4, 8)), "height": 16, "width": 16},
    ),
    "sd": (
        build_sd,
        lambda: {"prompt_embeds": _embeds(12, (4, 3, 8)), "negative_prompt_embeds": _embeds(13, (4, 3, 8)), "height": 16, "width": 16},
    ),
}


@pytest.fixture(scope="module")
def pipelines():
    return {}


def get_pipeline(pipelines, name):
    if name not in pipelines:
        pipelines[name] = PIPELINES[name][0]()
    return pipelines[name]


def call(pipe, name, seed=0, **extra):
    arguments = {**PIPELINES[name][1](), "num_inference_steps": STEPS, "generator": torch.Generator().manual_seed(seed)}
    return pipe(**{**arguments, **extra})


class ContractSpy:
    """Wraps a step callback and checks diffusers' tensor_inputs contract on every call.

    The callback may read and write only the tensors it declares, must leave
    the other entries of ``callback_kwargs`` untouched, must return a dict
    with the same keys, and must not change the pipeline's tensors in place.
    """

    def __init__(self, callback):
        self.callback = callback
        self.tensor_inputs = callback.tensor_inputs
        self.calls = 0
        self.keys_seen: set[str] = set()

    def __call__(self, pipe, step_index, timestep, callback_kwargs):
        accessed: set[str] = set()

        class Recording(dict):
            def __getitem__(self, key):
                accessed.add(key)
                return super().__getitem__(key)

            def get(self, key, default=None):
                accessed.add(key)
                return super().get(key, default)

            def pop(self, key, *default):
                accessed.add(key)
                return super().pop(key, *default)

        snapshot = {key: value.clone() for key, value in callback_kwargs.items()}
        originals = dict(callback_kwargs)
        result = self.callback(pipe, step_index, timestep, Recording(callback_kwargs))
        self.calls += 1
        self.keys_seen |= set(callback_kwargs)
        assert isinstance(result, dict)
        assert set(result) == set(callback_kwargs), "the callback dropped or added entries"
        assert accessed <= set(self.tensor_inputs), f"read undeclared tensors {accessed - set(self.tensor_inputs)}"
        for key, value in originals.items():
            assert torch.equal(value, snapshot[key]), f"{key!r} was modified in place"
            if key not in self.tensor_inputs:
                assert result[key] is value, f"undeclared {key!r} was replaced"
        return result


def _all_tensor_inputs(pipe) -> list[str]:
    return list(getattr(pipe, "_callback_tensor_inputs", ["latents"]))


@pytest.mark.parametrize("name", list(PIPELINES))
def test_callback_touches_only_its_declared_tensors_on_every_pipeline(pipelines, name):
    pipe = get_pipeline(pipelines, name)
    spy = ContractSpy(DiffusersCallback([EvenRowLatentRefiner(steps=1)], steps=[0, -1]))
    wrapped = CallbackPipeline(pipe, spy)
    if wrapped.native:
        # Hand the callback every tensor the pipeline can give, declared or not.
        out = wrapped(**PIPELINES[name][1](), num_inference_steps=STEPS, callback_on_step_end_tensor_inputs=_all_tensor_inputs(pipe), output_type="pt")
        assert spy.keys_seen == set(_all_tensor_inputs(pipe)) and len(spy.keys_seen) > 1
    else:
        out = wrapped(**PIPELINES[name][1](), num_inference_steps=STEPS, output_type="pt")
        assert spy.keys_seen == {"latents"}
    assert spy.calls == STEPS
    assert isinstance(out.images, torch.Tensor) and out.images.shape[0] == 4


@pytest.mark.parametrize("name", list(PIPELINES))
def test_latent_refiner_at_the_last_step_changes_exactly_its_samples(pipelines, name):
    pipe = get_pipeline(pipelines, name)
    plain = call(pipe, name, output_type="pt").images
    refined = CallbackPipeline(pipe, DiffusersCallback([EvenRowLatentRefiner()]))
    out = call(refined, name, output_type="pt").images
    assert isinstance(out, torch.Tensor) and out.shape == plain.shape and out.dtype == plain.dtype
    if name != "kandinsky":  # Kandinsky's "pt" images are its decoder's unclamped output
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert_differs_only_in_even_rows(out, plain, torch.arange(4))


def test_refiner_at_an_earlier_step_keeps_other_samples_identical(pipelines):
    pipe = get_pipeline(pipelines, "ddim")
    plain = call(pipe, "ddim", output_type="np").images
    out = call(CallbackPipeline(pipe, DiffusersCallback([EvenRowLatentRefiner()], steps=[0])), "ddim", output_type="np").images
    assert isinstance(out, np.ndarray) and out.shape == plain.shape == (4, 8, 8, 3)
    assert_differs_only_in_even_rows(torch.from_numpy(out), torch.from_numpy(plain), torch.arange(4))


def test_native_callback_composes_with_multipipelinecallbacks_and_runs_under_inference_mode(pipelines):
    pipe = get_pipeline(pipelines, "kandinsky")
    seen = []

    def embeds_callback(pipe, step_index, timestep, callback_kwargs):
        seen.append(tuple(callback_kwargs["image_embeds"].shape))
        return callback_kwargs

    embeds_callback.tensor_inputs = ["image_embeds"]
    both = MultiPipelineCallbacks([embeds_callback, DiffusersCallback([EvenRowLatentRefiner()])])
    plain = call(pipe, "kandinsky", output_type="pt").images
    with torch.inference_mode():  # stricter than the pipeline's own no_grad
        out = call(pipe, "kandinsky", output_type="pt", callback_on_step_end=both, callback_on_step_end_tensor_inputs=both.tensor_inputs).images
    assert len(seen) == STEPS and seen[0] == (8, 8)  # CFG: negative and positive embeddings
    assert_differs_only_in_even_rows(out, plain, torch.arange(4))


def test_a_gradient_sampler_runs_in_the_loop_and_a_rejection_sampler_is_refused(pipelines):
    pipe = get_pipeline(pipelines, "dit")
    plain = call(pipe, "dit", output_type="pt").images
    out = call(CallbackPipeline(pipe, DiffusersCallback(sampler=EvenRowAscent())), "dit", output_type="pt").images
    assert_differs_only_in_even_rows(out, plain, torch.arange(4))

    class AcceptAll(RejectionSampler):
        name = "accept_all"

        def propose(self, adapter, request, round):
            raise AssertionError("never called")

    with pytest.raises(InputError, match="fresh draws from the prior"):
        DiffusersCallback(sampler=AcceptAll())


def test_sampler_and_refiners_in_the_loop_and_after_it_together(pipelines):
    pipe = get_pipeline(pipelines, "ddim")
    plain = torch.from_numpy(call(pipe, "ddim", output_type="np").images)
    in_loop = CallbackPipeline(pipe, DiffusersCallback([EvenRowLatentRefiner(steps=1)], sampler=EvenRowAscent(steps=1)))
    latent_only = torch.from_numpy(call(in_loop, "ddim", output_type="np").images)
    in_loop.callback.reset_indices()
    both = call(DiffusersPostprocessor([QuadrantRefiner()]).wrap(in_loop), "ddim", output_type="np").images
    assert isinstance(both, np.ndarray) and both.shape == (4, 8, 8, 3) and both.min() >= 0 and both.max() <= 1
    assert_differs_only_in_even_rows(latent_only, plain, torch.arange(4))
    mask = quadrant_mask(tuple(plain.shape), channels_last=True)
    both = torch.from_numpy(both)
    assert torch.equal(both[~mask], latent_only[~mask]) and bool((both[mask] != latent_only[mask]).any())


def test_image_refiners_are_refused_in_the_loop_with_a_pointer_to_the_postprocessor(pipelines):
    pipe = get_pipeline(pipelines, "ddpm")
    with pytest.raises(InputError, match="DiffusersPostprocessor"):
        call(CallbackPipeline(pipe, DiffusersCallback([QuadrantRefiner()])), "ddpm")


def test_callback_indices_and_seeds_make_reruns_identical(pipelines):
    pipe = get_pipeline(pipelines, "ddpm")
    callback = DiffusersCallback([EvenRowLatentRefiner()])
    first = call(CallbackPipeline(pipe, callback), "ddpm", output_type="pt").images
    # A second call continues the sample count: indices 4..7, the same even rows.
    second = call(CallbackPipeline(pipe, callback), "ddpm", output_type="pt").images
    assert torch.equal(first, second)
    callback.reset_indices()
    assert torch.equal(call(CallbackPipeline(pipe, callback), "ddpm", output_type="pt").images, first)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_postprocessor_returns_the_same_type_and_changes_only_the_quadrant(pipelines, output_type):
    pipe = get_pipeline(pipelines, "ddpm")
    plain = call(pipe, "ddpm", output_type=output_type)
    refined = DiffusersPostprocessor([QuadrantRefiner(delta=0.25)]).wrap(pipe)
    out = call(refined, "ddpm", output_type=output_type)
    assert type(out) is type(plain)
    if output_type == "pil":
        assert isinstance(out.images, list) and len(out.images) == 4
        assert all(image.mode == "RGB" and image.size == (8, 8) for image in out.images)
        before = np.stack([np.asarray(image) for image in plain.images])
        after = np.stack([np.asarray(image) for image in out.images])
        mask = quadrant_mask(before.shape, channels_last=True).numpy()
    elif output_type == "np":
        before, after = plain.images, out.images
        assert isinstance(after, np.ndarray) and after.dtype == before.dtype and after.shape == (4, 8, 8, 3)
        assert after.min() >= 0.0 and after.max() <= 1.0
        mask = quadrant_mask(before.shape, channels_last=True).numpy()
    else:
        before, after = plain.images.numpy(), out.images.numpy()
        assert isinstance(out.images, torch.Tensor) and out.images.shape == (4, 3, 8, 8)
        assert after.min() >= 0.0 and after.max() <= 1.0
        mask = quadrant_mask(before.shape).numpy()
    assert np.array_equal(after[~mask], before[~mask])
    assert (after[mask] != before[mask]).any()
    assert (after[mask] >= before[mask]).all()


def test_postprocessor_keeps_tuple_outputs_and_passes_dit_labels_as_ground_truth(pipelines):
    pipe = get_pipeline(pipelines, "dit")
    refiner = QuadrantRefiner()
    out = DiffusersPostprocessor([refiner]).wrap(pipe)(class_labels=[3, 1, 4, 1], num_inference_steps=STEPS, return_dict=False, output_type="np")
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (4, 8, 8, 3)
    assert refiner.seen_labels[-1].tolist() == [3, 1, 4, 1]
    standalone = DiffusersPostprocessor([refiner])
    standalone(call(pipe, "dit", output_type="pil"), labels=torch.tensor([0, 0, 2, 2]))
    assert refiner.seen_labels[-1].tolist() == [0, 0, 2, 2]


def test_postprocessor_reads_kandinsky_tensors_in_minus_one_to_one(pipelines):
    pipe = get_pipeline(pipelines, "kandinsky")
    plain = call(pipe, "kandinsky", output_type="pt").images
    out = call(DiffusersPostprocessor([QuadrantRefiner(delta=0.1)]).wrap(pipe), "kandinsky", output_type="pt").images
    mask = quadrant_mask(tuple(plain.shape))
    assert torch.equal(out[~mask], plain[~mask])  # unclamped values outside the quadrant survive
    inside = plain[mask].clamp(-1, 1)
    assert torch.allclose(out[mask], (inside + 0.1).clamp(-1, 1), atol=1e-6)


def test_postprocessor_refuses_latents_and_unknown_outputs(pipelines):
    pipe = get_pipeline(pipelines, "dit")
    post = DiffusersPostprocessor([QuadrantRefiner()])
    with pytest.raises(InputError, match="latents, not images"):
        post.wrap(pipe)(class_labels=[1], num_inference_steps=STEPS, output_type="latent")
    with pytest.raises(InputError, match="output_type='latent'"):
        post(torch.full((1, 4, 8, 8), 3.0))
    with pytest.raises(TypeError, match="cannot refine str"):
        post("images")
    with pytest.raises(InputError, match="one non-negative class per image"):
        post(torch.zeros(2, 3, 4, 4), labels=[1])


def _unit_nhwc(images) -> np.ndarray:
    """Pipeline images of any output_type as a float NHWC array in [0, 1]."""
    if isinstance(images, list):
        return np.stack([np.asarray(image) for image in images]).astype(np.float32) / 255.0
    if isinstance(images, torch.Tensor):
        return images.permute(0, 2, 3, 1).numpy()
    return images


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_bigroc_refines_dit_outputs_towards_their_requested_classes(pipelines, output_type):
    pipe = get_pipeline(pipelines, "dit")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10))
    classifier = Classifier(net, 10, input_range=(0, 1))
    eps = 0.3  # in [0, 1] units, as the output's pixels
    refined_pipe = DiffusersPostprocessor([BIGRoC(classifier, eps=eps, eps_range=(0, 1))]).wrap(pipe)
    plain, out = call(pipe, "dit", output_type=output_type), call(refined_pipe, "dit", output_type=output_type)
    assert type(out) is type(plain) and type(out.images) is type(plain.images)
    if output_type == "pil":
        assert all(image.mode == "RGB" and image.size == (8, 8) for image in out.images)
    else:
        assert out.images.dtype == plain.images.dtype
    before, after = _unit_nhwc(plain.images), _unit_nhwc(out.images)
    assert after.shape == before.shape == (4, 8, 8, 3) and after.min() >= 0.0 and after.max() <= 1.0
    moved = np.sqrt(((after - before) ** 2).reshape(4, -1).sum(1))
    rounding = np.sqrt(8 * 8 * 3) / 255 / 2 if output_type == "pil" else 1e-5  # PIL re-quantises changed pixels
    assert bool((moved > 0).all()) and bool((moved <= eps + rounding).all())
    labels = torch.tensor(PIPELINES["dit"][1]()["class_labels"])  # DiT's class_labels reach BIGRoC as ground truth
    with torch.no_grad():
        confidence = [torch.softmax(classifier(torch.from_numpy(x).permute(0, 3, 1, 2) * 2 - 1), 1)[torch.arange(4), labels] for x in (before, after)]
    assert bool((confidence[1] > confidence[0]).all())


def _image_critic(size: int) -> torch.nn.Module:
    """A small critic on ``size`` x ``size`` RGB images in [-1, 1] (the chain convention)."""
    torch.manual_seed(7)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(4 * size * size, 1))


def test_dot_in_latent_space_at_the_last_step_raises_every_samples_critic_score(pipelines):
    pipe = get_pipeline(pipelines, "ddim")  # no callback_on_step_end: through CallbackPipeline
    critic = _image_critic(8)
    dot = DOT(space="latent", steps=10, k_eff_trials=2, k_eff_pairs=20)
    callback = DiffusersCallback([dot], discriminator=critic, discriminator_output="critic")
    plain = call(pipe, "ddim", output_type="pt").images
    out = call(CallbackPipeline(pipe, callback), "ddim", output_type="pt").images
    assert isinstance(out, torch.Tensor) and out.shape == plain.shape == (4, 3, 8, 8) and out.dtype == plain.dtype
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert_differs_only_in_rows(out, plain, torch.ones(4, dtype=torch.bool))  # DOT moves every sample
    with torch.no_grad():
        assert bool((critic(out * 2 - 1)[:, 0] > critic(plain * 2 - 1)[:, 0]).all())


def test_collaborative_at_the_latent_moves_only_samples_below_its_threshold_inside_a_native_callback(pipelines):
    pipe = get_pipeline(pipelines, "kandinsky")  # has callback_on_step_end: the callback is passed natively
    critic = _image_critic(16)
    plain = call(pipe, "kandinsky", output_type="pt").images  # Kandinsky's "pt": [-1, 1], unclamped
    with torch.no_grad():
        before = critic(plain.clamp(-1, 1))[:, 0]
    ordered = before.sort().values
    threshold = float(ordered[1:3].mean())  # two samples start below it
    refiner = CollaborativeRefiner(layer="latent", steps=5, step_size=0.5, threshold=threshold)
    callback = DiffusersCallback([refiner], discriminator=critic, discriminator_output="critic")
    out = call(pipe, "kandinsky", output_type="pt", callback_on_step_end=callback).images
    assert isinstance(out, torch.Tensor) and out.shape == plain.shape and out.dtype == plain.dtype
    below = before < threshold
    assert_differs_only_in_rows(out, plain, below)
    with torch.no_grad():
        after = critic(out.clamp(-1, 1))[:, 0]
    assert bool((after[below] > before[below]).all())


@pytest.mark.parametrize("name", ["ddpm", "dit", "kandinsky"])
def test_adapter_decodes_latents_like_the_pipeline(pipelines, name):
    pipe = get_pipeline(pipelines, name)
    final = []

    def record(pipe, step_index, timestep, callback_kwargs):
        final.append(callback_kwargs["latents"].clone())
        return callback_kwargs

    record.tensor_inputs = ["latents"]
    images = call(CallbackPipeline(pipe, record), name, output_type="pt").images
    adapter = DiffusersAdapter(pipe)
    assert adapter.prior.shape == tuple(final[-1].shape[1:])  # inferred from the denoiser's config
    with torch.no_grad():
        decoded = adapter.generate(final[-1].float())
    expected = images.clamp(-1, 1) if name == "kandinsky" else images * 2 - 1  # Kandinsky's "pt" is unclamped [-1, 1]
    assert decoded.shape == images.shape and float(decoded.abs().max()) <= 1.0
    assert torch.allclose(decoded, expected, atol=1e-5)
    assert "diffusers" in get_registry().names("adapter")


def test_bad_inputs_give_clear_errors(pipelines, monkeypatch):
    pipe = get_pipeline(pipelines, "ddpm")
    with pytest.raises(InputError, match="at least one refiner or a sampler"):
        DiffusersCallback()
    with pytest.raises(InputError, match="step 5 does not exist in a loop of 3 steps"):
        call(CallbackPipeline(pipe, DiffusersCallback([EvenRowLatentRefiner()], steps=[5])), "ddpm")
    with pytest.raises(InputError, match="callback_kwargs\\['latents'\\]"):
        DiffusersCallback([EvenRowLatentRefiner()])(pipe, 0, 1, {"prompt_embeds": torch.zeros(1)})
    with pytest.raises(InputError, match="only 'latents' can reach"):
        spy = DiffusersCallback([EvenRowLatentRefiner()])
        spy.tensor_inputs = ["latents", "prompt_embeds"]
        call(CallbackPipeline(pipe, spy), "ddpm")
    from gan_postproc import optional

    monkeypatch.setattr(optional.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OptionalDependencyError, match=r"pip install 'gan-postproc\[diffusers\]'"):
        DiffusersAdapter(pipe)
