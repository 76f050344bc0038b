"""Latent reweighting: the importance network, Algorithm 1 (training), latentRS, latentGA, latentRS+GA.

The trained network comes from a tiny problem with a known answer: the
generator is the identity on U[-1, 1]^2 and the real data fill the right half
[0, 1] x [-1, 1], so a good w puts its weight on z[0] > 0.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_postproc import Chain, LatentPrior, TorchAdapter, get_registry
from gan_postproc.errors import AcceptanceError, CheckpointError, InputError, InputTypeError, MissingModelError
from gan_postproc.pipeline.numerics import NonFiniteStepWarning
from gan_postproc.plugins.latent_reweighting.latent_ga import LatentGA, ascend_importance
from gan_postproc.plugins.latent_reweighting.latent_rs import ImportanceNetwork, LatentRS, train_importance_network
from gan_postproc.plugins.latent_reweighting.latent_rs_ga import LatentRSGA

FAST = dict(critic_steps=1, critic_warmup=30, batch_size=64, lr=3e-3, critic_lr=3e-3, eval_every=20, eval_samples=300, eval_pool=3000, progress=False)


def _identity_adapter(with_critic: bool = True) -> TorchAdapter:
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        generator[0].weight.copy_(torch.eye(2))
        generator[0].bias.zero_()
    critic = nn.Sequential(nn.Linear(2, 32), nn.LeakyReLU(0.2), nn.Linear(32, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    return TorchAdapter(
        generator,
        prior=LatentPrior.of(2, "uniform"),
        output_range=None,
        discriminator=critic if with_critic else None,
        discriminator_output="critic" if with_critic else None,
    )


def _right_half(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.rand(n, generator=g), torch.rand(n, generator=g) * 2 - 1], 1)


@pytest.fixture(scope="module")
def trained():
    adapter = _identity_adapter()
    result = train_importance_network(adapter, _right_half(4000, 0), validation_data=_right_half(300, 1), steps=100, seed=0, **FAST)
    return adapter, result


def test_training_moves_weight_to_the_real_half_and_improves_the_heldout_score(trained):
    adapter, result = trained
    z = adapter.prior.sample(5, torch.arange(4000))
    with torch.no_grad():
        w = result.network.weights(adapter, z)
    assert w.min() >= 0
    assert abs(float(w.mean()) - 1.0) < 0.05  # normalised: E_prior[w] = 1 (Lemma 1)
    assert float(w[z[:, 0] > 0.2].mean()) > 3 * float(w[z[:, 0] < -0.2].mean())
    assert result.best_step > 0 and result.best_score < 0.5 * result.baseline_score
    assert [h["step"] for h in result.history] == [0, 20, 40, 60, 80, 100]
    assert result.history[0]["heldout_sliced_w1"] == result.baseline_score
    # the user's critic was copied, not trained in place
    assert result.critic.module is not adapter.discriminator.module


def test_latent_rs_acceptance_converges_to_one_over_m(trained):
    adapter, result = trained
    network = result.network
    m = network.max_weight
    chain = Chain(adapter, LatentRS(network), batch_size=1000)
    batch = chain.sample(3000, seed=2)
    assert len(batch) == 3000
    # acceptance E[min(w, m)] / m equals 1/m up to the mass soft-clipped above m
    z = adapter.prior.sample(9, torch.arange(50_000))
    with torch.no_grad():
        w = network.weights(adapter, z)
    expected = float(w.clamp(max=m).mean()) / m
    assert expected == pytest.approx(1 / m, abs=0.03)
    assert chain.sampler.stats.acceptance_rate == pytest.approx(expected, abs=0.015)
    # the accepted latents follow the reweighted prior: mostly from the real half
    assert float((batch.latents[:, 0] > 0).float().mean()) > 0.75
    assert torch.allclose(batch.scores["acceptance_probability"], (batch.scores["importance_weight"] / m).clamp(max=1))
    assert int(batch.provenance["proposals"].sum()) == chain.sampler.stats.proposals


def test_latent_rs_result_does_not_depend_on_batch_size(trained):
    adapter, result = trained
    for sampler in (LatentRS, LatentGA, LatentRSGA):
        a = Chain(adapter, sampler(result.network), batch_size=7).sample(50, seed=4)
        b = Chain(adapter, sampler(result.network), batch_size=50).sample(50, seed=4)
        assert torch.allclose(a.latents, b.latents, atol=1e-5), sampler.name
        assert torch.allclose(a.images, b.images, atol=1e-5), sampler.name


def test_latent_ga_increases_w_and_stays_in_the_uniform_support(trained):
    adapter, result = trained
    batch = Chain(adapter, LatentGA(result.network, steps=10, step_size=0.05)).sample(500, seed=1)
    start, end = batch.scores["importance_weight_start"], batch.scores["importance_weight"]
    assert float(end.mean()) > float(start.mean()) + 0.2
    assert float((end >= start - 1e-4).float().mean()) > 0.95
    assert float(batch.latents.abs().max()) <= 1.0


def test_latent_ga_radial_projection_keeps_the_norm_under_a_normal_prior():
    torch.manual_seed(0)
    adapter = TorchAdapter(nn.Sequential(nn.Linear(8, 3)), latent_shape=8, prior="normal", output_range=None)
    network = ImportanceNetwork(8, width=16)
    nn.init.normal_(network.head.weight)
    z = adapter.prior.sample(0, torch.arange(64))
    ascended = ascend_importance(network, adapter, z, steps=10, step_size=0.5)
    assert not torch.allclose(ascended, z)
    assert torch.allclose(ascended.norm(dim=1), z.norm(dim=1), rtol=1e-5)
    with torch.no_grad():
        assert float(network.weights(adapter, ascended).mean()) > float(network.weights(adapter, z).mean())


def test_latent_ga_stays_inside_a_truncated_normal_prior():
    """A radial projection could leave a truncated normal's box: bounded priors are clipped instead."""
    torch.manual_seed(0)
    prior = LatentPrior.of(8, "truncated_normal", low=-1.0, high=1.0)
    adapter = TorchAdapter(nn.Sequential(nn.Linear(8, 3)), prior=prior, output_range=None)
    network = ImportanceNetwork(8, width=16)
    nn.init.normal_(network.head.weight)
    z = adapter.prior.sample(0, torch.arange(64))
    ascended = ascend_importance(network, adapter, z, steps=10, step_size=2.0)
    assert not torch.allclose(ascended, z)
    assert float(ascended.abs().max()) <= 1.0
    adapter.prior.check(ascended)


def test_latent_rs_ga_rejects_then_ascends(trained):
    adapter, result = trained
    chain = Chain(adapter, LatentRSGA(result.network, steps=5, step_size=0.05))
    batch = chain.sample(400, seed=3)
    assert chain.sampler.stats.acceptance_rate == pytest.approx(1 / result.network.max_weight, abs=0.06)
    assert float(batch.scores["importance_weight"].mean()) > float(batch.scores["importance_weight_start"].mean())
    assert float(batch.latents.abs().max()) <= 1.0


def test_a_degenerate_all_zero_network_stops_with_a_clear_error():
    adapter = _identity_adapter()
    network = ImportanceNetwork(2)
    nn.init.constant_(network.head.bias, -200.0)  # softplus(-200) == 0 in float32
    with pytest.raises(AcceptanceError, match=r"after max_rounds=40.*mean weight on fresh prior draws is 0"):
        Chain(adapter, LatentRS(network, max_rounds=40)).sample(10)


def test_training_resumes_from_its_checkpoint_exactly(tmp_path):
    settings = dict(validation_data=_right_half(300, 1), seed=3, **FAST)
    full = train_importance_network(_identity_adapter(), _right_half(2000, 0), steps=40, **settings)
    first = train_importance_network(_identity_adapter(), _right_half(2000, 0), steps=20, checkpoint_dir=tmp_path, **settings)
    assert first.steps == 20 and first.checkpoint == tmp_path / "last.safetensors"
    resumed = train_importance_network(_identity_adapter(), _right_half(2000, 0), steps=40, checkpoint_dir=tmp_path, **settings)
    assert [h["step"] for h in resumed.history] == [0, 20, 40]
    assert resumed.history == full.history
    for key, value in full.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), key
    # a finished run returns at once; other settings refuse the checkpoint
    again = train_importance_network(_identity_adapter(), _right_half(2000, 0), steps=40, checkpoint_dir=tmp_path, **settings)
    assert again.history == full.history
    with pytest.raises(CheckpointError, match="lr differ"):
        train_importance_network(_identity_adapter(), _right_half(2000, 0), steps=40, checkpoint_dir=tmp_path, **{**settings, "lr": 1e-2})


def test_an_iterable_of_batches_is_accepted_as_real_data():
    batches = [(_right_half(64, k), torch.zeros(64)) for k in range(3)]  # (x, y) pairs, as a DataLoader yields
    result = train_importance_network(_identity_adapter(), batches, steps=10, **{**FAST, "eval_every": 10})
    assert result.best_step == 10 and result.baseline_score is None  # no validation data: the last iterate
    with pytest.raises(InputError, match="yielded no batch"):
        train_importance_network(_identity_adapter(), iter([]), steps=2, **FAST)


def test_saved_networks_round_trip_and_load_by_path(trained, tmp_path):
    adapter, result = trained
    path = result.network.save(tmp_path / "w.safetensors", info={"note": "test"})
    loaded = ImportanceNetwork.load(path)
    z = adapter.prior.sample(0, torch.arange(100))
    with torch.no_grad():
        assert torch.equal(loaded.weights(adapter, z), result.network.weights(adapter, z))
    assert loaded.config() == result.network.config() and ImportanceNetwork.read_info(path) == {"note": "test"}
    a = Chain(adapter, LatentRS(path)).sample(20, seed=1)
    b = Chain(adapter, LatentRS(result.network)).sample(20, seed=1)
    assert torch.equal(a.latents, b.latents)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError, match="cannot read"):
        ImportanceNetwork.load(tmp_path / "junk.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        LatentRS(tmp_path / "missing.safetensors")


def test_the_network_can_sit_on_a_mapping_network_output():
    torch.manual_seed(0)
    generator = nn.Sequential(OrderedDict(mapping=nn.Sequential(nn.Linear(4, 6), nn.ReLU()), synthesis=nn.Linear(6, 2)))
    adapter = TorchAdapter(generator, latent_shape=4, prior="normal", output_range=None, discriminator=nn.Linear(2, 1), discriminator_output="critic")
    adapter.mapping_layer = "mapping"
    real = torch.randn(500, 2) + 1.0
    result = train_importance_network(adapter, real, steps=4, **{**FAST, "eval_every": 2, "eval_pool": 500})
    assert result.network.layer == "mapping" and result.network.input_dim == 6
    batch = Chain(adapter, LatentRSGA(result.network, steps=2)).sample(30)
    assert batch.latents.shape == (30, 4)


def test_samplers_are_registered_by_name(trained):
    adapter, result = trained
    registry = get_registry()
    for name in ("latent_rs", "latent_ga", "latent_rs_ga"):
        sampler = registry.create("sampler", name, importance=result.network)
        assert sampler.name == name and sampler.describe()["importance"]["layer"] == "latent"


def test_bad_inputs_give_clear_errors(trained, tmp_path):
    adapter, result = trained
    with pytest.raises(InputError, match="takes 2 inputs per sample.*have 5"):
        Chain(TorchAdapter(nn.Linear(5, 2), latent_shape=5, output_range=None), LatentRS(result.network)).sample(4)
    with pytest.raises(InputError, match="max_weight"):
        LatentRS(result.network, max_weight=-1.0)
    with pytest.raises(InputError, match="must be >= 1"):
        ImportanceNetwork(2, max_weight=0.5)
    with pytest.raises(InputTypeError, match="importance=ImportanceNetwork or the path"):
        LatentRS(nn.Linear(2, 1))
    with pytest.raises(InputError, match="step_size"):
        LatentGA(result.network, step_size=0.0)
    with pytest.raises(InputError, match="steps"):
        LatentRSGA(result.network, steps=0)
    conditional = TorchAdapter(nn.Linear(2, 2), latent_shape=2, num_classes=3, output_range=None, call=lambda g, z, y: g(z))
    with pytest.raises(InputError, match="unconditional"):
        Chain(conditional, LatentRS(result.network)).sample(4)
    with pytest.raises(InputError, match=r"real_data holds samples of shape \[3\], but the generator has samples of shape \[2\]"):
        train_importance_network(adapter, torch.rand(100, 3), steps=2, **FAST)
    with pytest.raises(InputError, match="validation_data must be finite"):
        train_importance_network(adapter, _right_half(100, 0), validation_data=torch.full((10, 2), math.nan), steps=2, **FAST)
    with pytest.raises(InputTypeError, match="real_data must be a tensor"):
        train_importance_network(adapter, 3.0, steps=2, **FAST)
    with pytest.raises(MissingModelError, match="needs a critic"):
        train_importance_network(_identity_adapter(with_critic=False), _right_half(100, 0), steps=2, **FAST)
    with pytest.raises(InputError, match="layer must be one of"):
        train_importance_network(adapter, _right_half(100, 0), layer="0", steps=2, **FAST)
    with pytest.raises(InputError, match="steps must be an integer >= 1"):
        train_importance_network(adapter, _right_half(100, 0), steps=0, **FAST)
    with pytest.raises(InputError, match="max_weight"):
        train_importance_network(adapter, _right_half(100, 0), max_weight=-3.0, steps=2, **FAST)


def cli_adapter() -> TorchAdapter:
    """``--adapter`` factory for the CLI test."""
    return _identity_adapter()


def cli_data() -> torch.Tensor:
    """``--data`` factory for the CLI test."""
    return _right_half(1200, 0)


def test_cli_trains_saves_and_resumes(tmp_path, capsys):
    from gan_postproc.cli import main

    out = tmp_path / "w.safetensors"
    argv = [
        "train-importance", "--model", f"{__name__}:cli_adapter", "--data", f"{__name__}:cli_data", "--holdout", "200",
        "--out", str(out), "--steps", "20", "--critic-steps", "1", "--critic-warmup", "10", "--batch-size", "64",
        "--lr", "3e-3", "--critic-lr", "3e-3", "--eval-every", "10", "--quiet", "--json",
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 20 and summary["heldout_sliced_w1_unweighted"] > 0
    assert (tmp_path / "w.safetensors.checkpoint" / "last.safetensors").is_file()
    network = ImportanceNetwork.load(out)
    assert ImportanceNetwork.read_info(out)["best_step"] == summary["best_step"]
    assert Chain(cli_adapter(), LatentRS(network)).sample(5).images.shape == (5, 2)
    # re-running with more steps resumes from the checkpoint
    argv[argv.index("--steps") + 1] = "30"
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 30
    assert main(["train-importance", "--model", "no_such_module:f", "--data", f"{__name__}:cli_data", "--out", str(out)]) == 2
    assert "cannot import 'no_such_module'" in capsys.readouterr().err
    assert main(["train-importance", "--model", f"{__name__}:cli_adapter", "--data", f"{__name__}:cli_data", "--holdout", "5000", "--out", str(out)]) == 2
    assert "leaves no training data" in capsys.readouterr().err


def test_benchmark_rows_use_the_shipped_networks_with_their_tuned_settings():
    from gan_postproc.bench.contexts import toy2d_context
    from gan_postproc.bench.setups import BenchmarkContext
    from gan_postproc.plugins.latent_reweighting import latent_ga, latent_rs, latent_rs_ga
    from gan_postproc.plugins.latent_reweighting.importance_network import load_shipped_importance_network

    context = toy2d_context("25gaussians")
    rows = [*latent_rs.gan_postproc_benchmark_setups(context), *latent_ga.gan_postproc_benchmark_setups(context),
            *latent_rs_ga.gan_postproc_benchmark_setups(context)]
    assert [row.name for row in rows] == ["latent_rs", "latent_ga", "latent_rs_ga"]
    shipped = load_shipped_importance_network("25gaussians")
    assert rows[0].sampler.importance.config() == shipped.config()
    assert f"step_size={rows[1].sampler.step_size}" in rows[1].note
    batch = Chain(context.adapter, rows[0].sampler).sample(50)
    rows[0].floor(batch, None)  # one generator pass over the returned latents
    other = BenchmarkContext(suite="toy2d", dataset="moons", adapter=context.adapter, conditional_adapter=None, real_data=context.real_data)
    assert latent_rs.gan_postproc_benchmark_setups(other) == []


class _NaNGradientWherePositive(torch.autograd.Function):
    """The identity, with a NaN gradient for the rows whose first coordinate is > 0."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.where(x[:, :1] > 0, torch.full_like(grad, math.nan), grad)


class _NaNGradientWhereFirstCoordinatePositive(ImportanceNetwork):
    """The same weights as w_phi, with a NaN gradient wherever z0 > 0 (an overflowing network there)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(_NaNGradientWherePositive.apply(inputs))


def test_latent_ga_freezes_latents_whose_step_is_nan_and_reports_them(trained):
    adapter, result = trained
    network = _NaNGradientWhereFirstCoordinatePositive(**result.network.config())
    network.load_state_dict(result.network.state_dict())
    for sampler in (LatentGA(network, steps=1, step_size=0.05), LatentRSGA(network, steps=1, step_size=0.05)):
        with pytest.warns(NonFiniteStepWarning, match=sampler.name):
            batch = Chain(adapter, sampler).sample(64, seed=2)
        frozen = batch.provenance["nonfinite_restored"].bool()
        assert bool(torch.isfinite(batch.latents).all()) and bool(torch.isfinite(batch.images).all())
        assert 0 < int(frozen.sum()) < 64, sampler.name
        assert bool((batch.latents[frozen, 0] > 0).all())  # kept their start: the step from there was NaN
        assert torch.equal(batch.scores["importance_weight"][frozen], batch.scores["importance_weight_start"][frozen])
        moved = ~frozen
        assert not torch.allclose(batch.scores["importance_weight"][moved], batch.scores["importance_weight_start"][moved])


class _CountingGenerator(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(z)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(validation_data=torch.full((10, 2), math.inf)), "validation_data must be finite"),
        (dict(validation_data=torch.rand(10, 2, 1)), r"validation_data holds samples of shape \[2, 1\]"),
        (dict(real_data=torch.full((10, 2), math.nan)), "real_data must be finite"),
        (dict(critic=3), "critic must be a torch.nn.Module"),
        (dict(selection_features="flat"), "selection_features must be a function"),
        (dict(lr=math.nan), "lr must be a finite number"),
        (dict(network=ImportanceNetwork(3)), "takes 3 inputs per sample"),
    ],
)
def test_training_checks_every_input_before_the_first_generator_pass(bad, match):
    adapter = _identity_adapter()
    counting = _CountingGenerator(adapter.generator)
    adapter = TorchAdapter(
        counting, prior=adapter.prior, output_range=None, discriminator=adapter.discriminator.module, discriminator_output="critic"
    )
    arguments = {"real_data": _right_half(100, 0), "steps": 2, **FAST, **bad}
    with pytest.raises((InputError, InputTypeError), match=match):
        train_importance_network(adapter, **arguments)
    assert counting.calls <= 1  # at most the one-latent probe of the sample shape


def test_a_network_with_nan_parameters_is_refused(trained, tmp_path):
    adapter, result = trained
    broken = ImportanceNetwork(**result.network.config())
    broken.load_state_dict(result.network.state_dict())
    with torch.no_grad():
        broken.body[0].weight[0, 0] = math.nan
    with pytest.raises(InputError, match=r"body.0.weight holds NaN/inf"):
        LatentRS(broken)
    with pytest.raises(InputError, match=r"body.0.weight holds NaN/inf"):
        train_importance_network(adapter, _right_half(100, 0), network=broken, steps=2, **FAST)
    path = broken.save(tmp_path / "broken.safetensors")
    with pytest.raises(InputError, match=r"holds NaN/inf.*load another file"):
        LatentGA(path)


def test_cli_killed_part_way_resumes_to_the_uninterrupted_network(tmp_path):
    """Fault test: SIGKILL during `train-importance`, re-run, the same network as an uninterrupted run."""
    import signal

    from gan_postproc.cli import main

    from ...helpers.faults import interrupt_part_way, safetensors_content

    def argv(out: Path) -> list[str]:
        return [
            "train-importance", "--model", "tests.plugins.latent_reweighting.test_latent_reweighting:cli_adapter", "--data", "tests.plugins.latent_reweighting.test_latent_reweighting:cli_data",
            "--holdout", "200", "--out", str(out), "--steps", "40", "--critic-steps", "1", "--critic-warmup", "10",
            "--batch-size", "64", "--lr", "3e-3", "--critic-lr", "3e-3", "--eval-every", "10", "--quiet",
        ]

    reference, killed = tmp_path / "reference.safetensors", tmp_path / "killed.safetensors"
    assert main(argv(reference)) == 0
    checkpoint = tmp_path / "killed.safetensors.checkpoint" / "last.safetensors"
    stopped = interrupt_part_way(argv(killed), started=checkpoint.is_file, finished=killed.is_file, slow=0.05)
    assert stopped.returncode == -signal.SIGKILL
    assert main(argv(killed)) == 0
    assert safetensors_content(killed)[0] == safetensors_content(reference)[0]  # the network's tensors, bit for bit
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["last.safetensors"]  # no temp file left


def test_figure_4_benchmark_draws_acceptance_bands_and_reports_correlations(tmp_path, capsys):
    from gan_postproc.cli import main

    figure = tmp_path / "fig4.png"
    argv = ["bench", "latent_rs_figure", "--samples", "300", "--bands", "3", "--per-band", "4", "--out", str(figure), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    bands = result["bands"]
    assert len(bands) == 3 and all(a["p_max"] <= b["p_min"] + 1e-6 for a, b in zip(bands, bands[1:]))  # ordered bands
    assert 0.2 < result["mean_acceptance"] < 0.5  # about 1/m = 1/3 on the shipped network
    assert all(-1.0 <= value <= 1.0 for value in result["spearman"].values())
    assert figure.stat().st_size > 1000
