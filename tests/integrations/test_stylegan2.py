"""StyleGAN2/3 adapters on the real networks: NVlabs stylegan2-ada-pytorch, StyleGAN3 (its networks_stylegan2 and
networks_stylegan3, configs stylegan3-t and stylegan3-r) and rosinality's stylegan2-pytorch, built from
shared/third_party at small sizes with random weights (see tests/third_party.py; skipped when it is absent)."""

from __future__ import annotations

import argparse
import copy
import os
import pickle

import pytest
import torch

from gan_postproc import Chain, dropin, get_registry
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

from ..helpers import third_party as tp
from ..helpers.integration_methods import (
    EvenRowLayerRefiner,
    assert_differs_only_in_even_rows,
    assert_differs_only_in_rows,
    assert_images,
    check_chain_end_to_end,
    check_sampler_and_layer_refiners,
)

NVLABS_REPOS = ["stylegan2-ada-pytorch", "stylegan3"]


def _one_hot(labels, k):
    return torch.nn.functional.one_hot(labels, k).float()


@pytest.fixture(scope="module")
def rosinality():
    """rosinality's G and D (its D keeps 512 channels: built once for the module)."""
    return tp.rosinality_pair()


def _pair(convention, rosinality_nets, c_dim=3):
    return tp.nvlabs_pair(c_dim=c_dim) if convention == "nvlabs" else rosinality_nets


# --- calling conventions -------------------------------------------------------------------------------


@pytest.mark.parametrize("repo", NVLABS_REPOS)
@pytest.mark.parametrize("c_dim", [0, 3])
def test_nvlabs_adapter_calls_the_generator_with_its_convention(repo, c_dim):
    G, _ = tp.nvlabs_pair(repo, c_dim=c_dim)
    adapter = StyleGAN2Adapter(G, truncation_psi=0.7, truncation_cutoff=2)
    z = torch.randn(5, 8)
    labels = torch.tensor([0, 1, 2, 0, 1]) if c_dim else None
    c = _one_hot(labels, 3) if c_dim else torch.zeros(5, 0)
    with torch.no_grad():
        expected = G(z, c, truncation_psi=0.7, truncation_cutoff=2, noise_mode="const").clamp(-1, 1)
        assert torch.equal(adapter.generate(z, labels), expected)
        ws = adapter.generate_to(z, labels, "mapping")
        assert torch.equal(ws, G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=2))
    assert adapter.num_classes == (3 if c_dim else None) and adapter.prior.shape == (8,)
    assert adapter.layer_names() == ["latent", "mapping", "b4", "b8", "output"]
    assert adapter.mapping_layer == "mapping"
    if c_dim:
        assert adapter.labels_from_native(c).tolist() == labels.tolist()


def test_w_space_truncation_pulls_towards_w_avg_and_respects_the_cutoff():
    G, _ = tp.nvlabs_pair()
    z = torch.randn(4, 8)
    with torch.no_grad():
        full = StyleGAN2Adapter(G, truncation_psi=0.0).generate_to(z, None, "mapping")
        assert torch.allclose(full, G.mapping.w_avg.expand_as(full))
        cut = StyleGAN2Adapter(G, truncation_psi=0.0, truncation_cutoff=2).generate_to(z, None, "mapping")
        untruncated = StyleGAN2Adapter(G).generate_to(z, None, "mapping")
        assert torch.allclose(cut[:, :2], G.mapping.w_avg.expand(4, 2, 8)) and torch.equal(cut[:, 2:], untruncated[:, 2:])
        images = StyleGAN2Adapter(G, truncation_psi=0.0).generate(z)
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-6)


@pytest.mark.parametrize("convention", ["nvlabs", "rosinality"])
def test_the_truncation_sampler_gives_exactly_the_frameworks_own_w_space_truncation(convention, rosinality):
    G, _ = _pair(convention, rosinality)
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


def test_rosinality_adapter_follows_its_forward_and_a_reproducible_mean_latent(rosinality):
    G, _ = rosinality
    adapter = RosinalityStyleGAN2Adapter(G, truncation_psi=0.5)
    noise = [getattr(G.noises, f"noise_{i}") for i in range(G.num_layers)]
    z = torch.randn(4, 8)
    with torch.no_grad():
        expected = G([z], truncation=0.5, truncation_latent=adapter.truncation_latent, noise=noise)[0].clamp(-1, 1)
        assert torch.equal(adapter.generate(z), expected)
        assert not torch.equal(RosinalityStyleGAN2Adapter(G, noise_mode="none").generate(z), RosinalityStyleGAN2Adapter(G).generate(z))
    assert torch.equal(RosinalityStyleGAN2Adapter(G, truncation_psi=0.5).truncation_latent, adapter.truncation_latent)
    assert adapter.layer_names() == ["latent", "mapping", "b4", "b8", "output"]


# --- split points --------------------------------------------------------------------------------------


def _split_cases():
    """(id, generator builder): StyleGAN2 blocks in three codebases, fp16 blocks, StyleGAN3 layers in both configs."""
    return {
        "ada": lambda: tp.nvlabs_pair(c_dim=3)[0],
        "ada-fp16": lambda: tp.nvlabs_pair(c_dim=3, fp16_res=2)[0],  # b8 and b16 run in float16 with conv_clamp=256
        "ada-resnet": lambda: tp.nvlabs_pair(architecture="resnet")[0],  # no RGB image next to inner blocks
        "stylegan3-networks_stylegan2": lambda: tp.nvlabs_pair("stylegan3", c_dim=3)[0],
        "stylegan3-t": lambda: tp.stylegan3_generator("stylegan3-t", c_dim=3),
        "stylegan3-r": lambda: tp.stylegan3_generator("stylegan3-r"),
        "rosinality": lambda: tp.rosinality_pair()[0],
    }


@pytest.mark.parametrize("case", list(_split_cases()))
def test_every_split_point_reproduces_the_generator_and_passes_gradients(case):
    G = _split_cases()[case]()
    adapter = stylegan2_adapter(G, truncation_psi=0.8)
    inner = adapter.layer_names()[1:-1]
    if case.startswith("stylegan3-") and case != "stylegan3-networks_stylegan2":
        assert inner == ["mapping", "input", *G.synthesis.layer_names[:-1]]  # every layer but ToRGB
    else:
        assert inner == ["mapping", "b4", "b8"]
    z = torch.randn(3, 8)
    labels = torch.tensor([0, 2, 1]) if adapter.conditional else None
    with torch.no_grad():
        expected = adapter.generate(z, labels)
    for layer in inner:
        with torch.no_grad():
            h = adapter.generate_to(z, labels, layer)
            assert torch.allclose(adapter.generate_from(h, z, labels, layer), expected, atol=1e-6), layer
        h = h.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(adapter.generate_from(h, z, labels, layer).sum(), h)
        assert float(grad.abs().sum()) > 0, layer
    if case in ("ada", "rosinality"):  # features and the skip-architecture RGB image, stacked
        assert adapter.generate_to(z, labels, "b8").shape[1] == 16 + 3


def test_the_activation_of_an_fp16_block_is_float32_and_decodes_exactly():
    """num_fp16_res: the block computes in float16 (conv_clamp 256); its features enter the activation
    exactly as float32 next to the float32 skip image, and go back to float16 in the next block."""
    G, _ = tp.nvlabs_pair(fp16_res=2)
    assert [getattr(G.synthesis, f"b{r}").use_fp16 for r in (4, 8, 16)] == [False, True, True]
    adapter = StyleGAN2Adapter(G)
    z = torch.randn(4, 8)
    with torch.no_grad():
        block = G.synthesis.b8
        x, img = adapter.synthesis_stages.run(1, adapter.synthesis_stages.run(0, None, adapter.mapping(z, None)), adapter.mapping(z, None))
        assert x.dtype == torch.float16 and img.dtype == torch.float32 and block.conv1.conv_clamp == 256
        h = adapter.generate_to(z, None, "b8")
        assert h.dtype == torch.float32 and torch.equal(h[:, :-3].half(), x)
        assert torch.equal(adapter.generate_from(h, z, None, "b8"), adapter.generate(z))
        fp32 = StyleGAN2Adapter(G, synthesis_kwargs={"force_fp32": True}).generate(z)
        assert not torch.equal(fp32, adapter.generate(z)) and torch.allclose(fp32, adapter.generate(z), atol=0.05)


def test_a_stylegan3_synthesis_splits_at_its_layers_not_blocks():
    """The issue: every split of networks_stylegan3 failed with 'SynthesisNetwork' object has no attribute
    'block_resolutions'. Its layers take one w each, after the input's: ws[:, k + 1] for layer k."""
    G = tp.stylegan3_generator("stylegan3-t")
    assert not hasattr(G.synthesis, "block_resolutions")
    adapter = StyleGAN2Adapter(G)
    z = torch.randn(2, 8)
    with torch.no_grad():
        ws = adapter.mapping(z, None)
        assert ws.shape[1] == len(G.synthesis.layer_names) + 1 == G.synthesis.num_ws
        x = G.synthesis.input(ws[:, 0])
        for k, name in enumerate(G.synthesis.layer_names[:2]):
            x = getattr(G.synthesis, name)(x, ws[:, k + 1], noise_mode="const")
        assert torch.equal(adapter.generate_to(z, None, G.synthesis.layer_names[1]), x)
    broken = copy.deepcopy(G)
    broken.synthesis = torch.nn.Identity()
    with pytest.raises(InputError, match="neither block_resolutions .* nor input and layer_names"):
        StyleGAN2Adapter(broken)


def test_rosinality_collaborative_refinement_at_b8_hands_its_view_calls_contiguous_tensors(rosinality):
    """The issue: collaborative at b8 failed in rosinality's model.py (input.view(...)) because the features
    sliced off the stacked activation were not contiguous."""
    G, D = rosinality
    adapter = RosinalityStyleGAN2Adapter(G, discriminator=D)
    h = adapter.generate_to(torch.randn(4, 8), None, "b8")
    x, img = adapter.synthesis_stages.state(1, h)
    assert x.is_contiguous() and img.is_contiguous() and not h[:, :16].is_contiguous()
    plain = Chain(adapter, batch_size=4).sample(4, seed=0)
    refined = Chain(adapter, refiners=[CollaborativeRefiner(layer="b8", steps=2, step_size=0.1, selection="best")], batch_size=4).sample(4, seed=0)
    assert_images(refined.images, (4, 3, 16, 16))
    moved = refined.provenance["refinement_steps"] > 0
    assert_differs_only_in_rows(refined.images, plain.images, moved)
    assert bool((refined.scores["discriminator"] >= torch.sigmoid(adapter.discriminator(plain.images))).all())


# --- discriminators ------------------------------------------------------------------------------------


@pytest.mark.parametrize("repo", NVLABS_REPOS)
def test_nvlabs_discriminators_declare_the_group_size_and_pad_batches(repo):
    _, D = tp.nvlabs_pair(repo, c_dim=3)
    wrapped = stylegan2_discriminator(D)
    assert D.b4.mbstd.group_size == 4
    assert wrapped.min_batch_size == 4 and wrapped.conditional and wrapped.output.value == "logit"
    x, labels = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2])
    with pytest.raises(RuntimeError, match=r"shape '\[4, -1, 1, 16, 4, 4\]' is invalid"):
        D(x, _one_hot(labels, 3))  # the real minibatch-std layer needs a multiple of its group
    with pytest.raises(InputError, match="at least 4"):
        wrapped(x[:2], labels[:2])
    with torch.no_grad():
        scores = wrapped(x, labels)  # 6 is padded to 8 with samples 0 and 1
        expected = D(torch.cat([x, x[:2]]), _one_hot(torch.cat([labels, labels[:2]]), 3))[:6, 0]
        assert scores.shape == (6,) and torch.equal(scores, expected)
        assert torch.equal(wrapped(x[:4], labels[:4]), D(x[:4], _one_hot(labels[:4], 3))[:, 0])


def test_rosinality_discriminator_pads_to_its_stddev_group(rosinality):
    _, D = rosinality
    wrapped = stylegan2_discriminator(D)
    assert wrapped.min_batch_size == D.stddev_group == 4 and not wrapped.conditional
    x = torch.rand(6, 3, 16, 16) * 2 - 1
    with pytest.raises(RuntimeError, match="is invalid for input of size"):
        D(x)  # rosinality's own .view needs a multiple of the group
    with torch.no_grad():
        assert torch.equal(wrapped(x), D(torch.cat([x, x[:2]]))[:6, 0])


# --- methods end to end ---------------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["nvlabs", "rosinality"])
def test_end_to_end_sampler_and_refiner(convention, rosinality):
    G, D = _pair(convention, rosinality)
    adapter = stylegan2_adapter(G, truncation_psi=0.9, discriminator=D)
    both = check_chain_end_to_end(adapter, image_shape=(3, 16, 16))
    assert (both.labels is not None) == (convention == "nvlabs")
    G_dropin = dropin(Chain(adapter, refiners=[]))
    z = torch.randn(4, 8)
    with torch.no_grad():
        if convention == "nvlabs":
            c = _one_hot(torch.tensor([0, 1, 2, 0]), 3)
            assert torch.equal(G_dropin(z, c), adapter.generate(z, torch.tensor([0, 1, 2, 0])))
        else:
            assert torch.equal(G_dropin(z), adapter.generate(z))


def _method_case(case):
    """(adapter truncating in w with psi 0.7, inner layer for collaborative): one per codebase and configuration."""
    if case in ("ada", "ada-fp16"):
        G, D = tp.nvlabs_pair(c_dim=3 if case == "ada" else 0, fp16_res=2 if case == "ada-fp16" else 0)
        return StyleGAN2Adapter(G, truncation_psi=0.7, discriminator=D), "b8"
    config = case.removesuffix("-cond")
    c_dim = 3 if case.endswith("-cond") else 0
    D = tp.nvlabs_pair("stylegan3", c_dim=c_dim)[1]  # NVlabs' StyleGAN3 trains with the StyleGAN2 discriminator
    G = tp.stylegan3_generator(config, c_dim=c_dim)
    return StyleGAN2Adapter(G, truncation_psi=0.7, discriminator=D), G.synthesis.layer_names[1]


@pytest.mark.parametrize(
    "case, sampler",
    [("ada", "ddls"), ("ada", "drs"), ("ada-fp16", "ddls"), ("ada-fp16", "drs"), ("stylegan3-t-cond", "ddls"), ("stylegan3-r", "ddls")],
)  # DRS draws several proposals per sample: on the (slower) StyleGAN3 networks DDLS only
def test_a_latent_sampler_then_collaborative_at_an_inner_layer_and_dot(case, sampler):
    """Every NVlabs network with a latent sampler, then collaborative sampling at an inner synthesis layer and DOT."""
    adapter, layer = _method_case(case)
    make = (lambda: DDLS(steps=2, step_size=0.01)) if sampler == "ddls" else (lambda: DiscriminatorRejectionSampler(burn_in=64))
    check_sampler_and_layer_refiners(adapter, make, layer, (3, 16, 16))


def test_collaborative_style_refinement_at_a_synthesis_block_raises_the_discriminator_score():
    G, D = tp.nvlabs_pair()
    adapter = StyleGAN2Adapter(G, discriminator=D)
    plain = Chain(adapter, batch_size=8).sample(8)
    refined = Chain(adapter, refiners=[EvenRowLayerRefiner("b8")], batch_size=8).sample(8)
    assert_differs_only_in_even_rows(refined.images, plain.images, plain.indices)
    even = torch.arange(0, 8, 2)
    with torch.no_grad():
        before, after = adapter.discriminator(plain.images[even]), adapter.discriminator(refined.images[even])
    assert float(after.mean()) > float(before.mean())


def _sharp_pair(c_dim: int = 0):
    """A real NVlabs pair with the discriminator's last layer scaled up, so its logits spread over about 2."""
    G, D = tp.nvlabs_pair(c_dim=c_dim)
    with torch.no_grad():
        D.b4.out.weight.mul_(3)
    return G, D


def test_collaborative_refinement_at_a_synthesis_block_moves_exactly_the_samples_below_the_threshold():
    G, D = _sharp_pair(3)
    adapter = StyleGAN2Adapter(G, discriminator=D)  # D's output declared a logit (StyleGAN2's logistic loss)
    plain = Chain(adapter, batch_size=8).sample(8, seed=1)
    with torch.no_grad():
        before = torch.sigmoid(adapter.discriminator(plain.images, plain.labels))
    ordered = before.sort().values
    threshold = float(ordered[2:4].mean())  # between two scores: no sample ties with it
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


def test_latent_reweighting_reads_the_mapping_output_of_an_unconditional_stylegan2():
    """Issue 6/8: w_phi on the mapping network's output (the paper's LSUN setup), trained and sampled through the adapter."""
    from gan_postproc.plugins.latent_reweighting.latent_rs import LatentRS, train_importance_network

    torch.manual_seed(0)
    G, D = tp.nvlabs_pair()
    adapter = StyleGAN2Adapter(G, discriminator=D)
    real = Chain(adapter).sample(64, seed=7).images.detach()
    result = train_importance_network(
        adapter, real, steps=2, critic_steps=1, critic_warmup=2, batch_size=16, eval_every=1, eval_samples=32, eval_pool=64, progress=False
    )
    assert result.network.layer == "mapping" and result.network.input_dim == G.w_dim  # w_dim, not num_ws * w_dim
    chain = Chain(adapter, LatentRS(result.network))
    batch = chain.sample(12, seed=1)
    assert_images(batch.images, (12, 3, 16, 16))
    with torch.no_grad():
        expected = adapter.generate(batch.latents)
    assert torch.equal(batch.images, expected)  # the accepted latents, generated by the framework's own call
    assert bool((batch.scores["acceptance_probability"] > 0).all())


# --- checkpoints and registration -------------------------------------------------------------------------


def _mark_executed():
    os.environ["GAN_POSTPROC_TEST_PICKLE_RAN"] = "1"
    return "executed"


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (_mark_executed, ())


def test_nvlabs_pickles_load_only_with_the_explicit_opt_in(tmp_path, monkeypatch):
    """A pickle of the real networks (NVlabs' persistence stores their source in it) loads with nvlabs_root."""
    monkeypatch.delenv("GAN_POSTPROC_TEST_PICKLE_RAN", raising=False)
    G, D = tp.nvlabs_pair()
    framework = tp.framework("stylegan2-ada-pytorch")
    path = tmp_path / "network-snapshot.pkl"
    with framework.active(), open(path, "wb") as file:
        pickle.dump({"G_ema": G, "D": D, "payload": _RunsCodeWhenUnpickled()}, file)
    with pytest.raises(UnsafeCheckpointError, match="allow_code_execution=True"):
        load_nvlabs_pickle(path)
    with pytest.raises(UnsafeCheckpointError):
        load_nvlabs_pickle(path, allow_code_execution="yes")
    assert "GAN_POSTPROC_TEST_PICKLE_RAN" not in os.environ  # the default never unpickled
    with framework.imported_anew():
        with pytest.raises(CheckpointError, match="needs the NVlabs code .* nvlabs_root"), pytest.warns(CodeExecutionWarning):
            load_nvlabs_pickle(path, allow_code_execution=True)
        with pytest.warns(CodeExecutionWarning, match="executes the code"):
            data = load_nvlabs_pickle(path, allow_code_execution=True, nvlabs_root=framework.path)
    assert os.environ["GAN_POSTPROC_TEST_PICKLE_RAN"] == "1" and data["payload"] == "executed"
    assert type(data["G_ema"]) is not type(G)  # rebuilt from the source stored in the pickle
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(StyleGAN2Adapter(data["G_ema"].eval()).generate(z), StyleGAN2Adapter(G).generate(z))
    with pytest.raises(CheckpointError, match="network pickle .* does not exist"):
        load_nvlabs_pickle(tmp_path / "missing.pkl", allow_code_execution=True)


def test_rosinality_checkpoints_load_weights_only(tmp_path):
    G, _ = tp.rosinality_pair(seed=1)
    path = tmp_path / "550000.pt"
    torch.save({"g_ema": G.state_dict(), "g": G.state_dict(), "args": argparse.Namespace(size=16, latent=8)}, path)
    fresh, _ = tp.rosinality_pair(seed=2)
    fresh.load_state_dict(load_rosinality_checkpoint(path))
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(RosinalityStyleGAN2Adapter(fresh).generate(z), RosinalityStyleGAN2Adapter(G).generate(z))
    torch.save({"g_ema": G.state_dict(), "payload": _RunsCodeWhenUnpickled()}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_rosinality_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="no 'd_ema' entry"):
        load_rosinality_checkpoint(path, key="d_ema")


def test_registration_and_clear_errors_for_the_wrong_convention(rosinality):
    assert {"stylegan2", "stylegan2_rosinality"} <= set(get_registry().names("adapter"))
    G, _ = tp.nvlabs_pair()
    with pytest.raises(InputError, match="RosinalityStyleGAN2Adapter"):
        StyleGAN2Adapter(rosinality[0])
    with pytest.raises(InputError, match="StyleGAN2Adapter"):
        RosinalityStyleGAN2Adapter(G)
    with pytest.raises(InputError, match="neither StyleGAN2 convention"):
        stylegan2_adapter(torch.nn.Linear(2, 2))
    with pytest.raises(InputError, match="noise_mode"):
        StyleGAN2Adapter(G, noise_mode="fixed")
    with pytest.raises(InputError, match="truncation_psi"):
        StyleGAN2Adapter(G, truncation_psi=1.5)
