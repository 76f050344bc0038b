"""calibrate_discriminator: a critic becomes a density-ratio estimator; checkpoints resume exactly."""

from __future__ import annotations

import itertools
import json
import signal

import pytest
import torch
from scipy import stats

from gan_postproc import Chain, Discriminator, TorchAdapter
from gan_postproc.cli.app import main
from gan_postproc.errors import CheckpointError, InputError
from gan_postproc.files.loading import read_safetensors_metadata
from gan_postproc.plugins.density_ratio.calibration import calibrate_discriminator, load_calibrated_discriminator
from gan_postproc.plugins.density_ratio.drs import DiscriminatorRejectionSampler

from ...helpers.density_ratio_models import AffineGenerator, critic_adapter, data_cdf, exact_discriminator, real_data
from ...helpers.faults import interrupt_part_way, safetensors_content
from .test_density_ratio import Step

SETTINGS = dict(steps=300, lr=3e-3, holdout=2000, eval_every=50, seed=0)


def held_out_bce(discriminator: Discriminator) -> float:
    """BCE on fresh real and generated samples (neither used in calibration)."""
    real = real_data(4000, 999)
    fake = AffineGenerator()(torch.randn(4000, 1, generator=torch.Generator().manual_seed(998)))
    with torch.no_grad():
        logits = torch.cat([discriminator.logit(real), discriminator.logit(fake)])
    labels = torch.cat([torch.ones(4000), torch.zeros(4000)])
    return float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))


@pytest.fixture(scope="module")
def calibrated() -> tuple[TorchAdapter, Discriminator, dict]:
    adapter = critic_adapter()
    before = {k: v.clone() for k, v in adapter.discriminator.state_dict().items()}
    return adapter, calibrate_discriminator(adapter, real_data, **SETTINGS), before


def test_the_calibrated_copy_approaches_the_optimal_discriminator(calibrated):
    adapter, result, before = calibrated
    assert result.output.value == "logit" and adapter.discriminator.output.value == "critic"
    assert all(torch.equal(v, before[k]) for k, v in adapter.discriminator.state_dict().items())  # the original is untouched
    optimum, calibrated_loss = held_out_bce(exact_discriminator()), held_out_bce(result)
    history = dict(result.module.history)
    assert history[0] > calibrated_loss + 0.02  # better than Platt scaling of the critic alone
    assert calibrated_loss < optimum + 0.01


def test_density_ratio_samplers_accept_the_calibrated_copy_and_recover_the_target(calibrated, bare_pm):
    adapter, result, _ = calibrated
    batch = Chain(adapter, DiscriminatorRejectionSampler(result, percentile=None), batch_size=500, plugin_manager=bare_pm).sample(1500, seed=1)
    pvalue = stats.kstest(batch.images[:, 0].double().numpy(), lambda x: data_cdf(torch.as_tensor(x)).numpy()).pvalue
    assert pvalue > 0.01


def test_a_checkpointed_run_resumes_to_the_uninterrupted_result(tmp_path):
    adapter = critic_adapter()
    settings = dict(SETTINGS, steps=40, eval_every=10, holdout=200)
    whole = calibrate_discriminator(adapter, real_data, **settings)
    path = tmp_path / "calibration.safetensors"
    calibrate_discriminator(adapter, real_data, **dict(settings, steps=20), checkpoint=path)  # "interrupted" at step 20
    resumed = calibrate_discriminator(adapter, real_data, **settings, checkpoint=path)
    assert resumed.module.history == whole.module.history
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values()))
    loaded = load_calibrated_discriminator(path, adapter.discriminator)
    x = torch.linspace(-3, 3, 7)[:, None]
    assert torch.equal(loaded.logit(x), resumed.logit(x))
    with pytest.raises(CheckpointError, match="other settings"):
        calibrate_discriminator(adapter, real_data, **dict(settings, lr=1e-2), checkpoint=path)
    with pytest.raises(CheckpointError, match="declared"):
        load_calibrated_discriminator(path, exact_discriminator())


def test_a_logistic_head_on_features(tmp_path):
    adapter = critic_adapter()
    head = calibrate_discriminator(adapter, real_data, mode="head", feature_layer="body", **dict(SETTINGS, steps=100), checkpoint=tmp_path / "h.safetensors")
    assert head.module.head.in_features == 16
    assert not any(p.requires_grad for p in head.module.body.parameters())
    assert held_out_bce(head) < dict(head.module.history)[0]
    loaded = load_calibrated_discriminator(tmp_path / "h.safetensors", adapter.discriminator)
    assert torch.equal(loaded.logit(torch.zeros(3, 1)), head.logit(torch.zeros(3, 1)))
    with pytest.raises(InputError, match="submodules"):
        calibrate_discriminator(adapter, real_data, mode="head", feature_layer="nope", steps=1)
    with pytest.raises(InputError, match="feature_layer"):
        calibrate_discriminator(adapter, real_data, mode="head", steps=1)


def test_a_saturated_probability_output_calibrates_to_finite_logits():
    adapter = TorchAdapter(AffineGenerator(), latent_shape=1, output_range=None, discriminator=Discriminator(Step(), "probability", input_range=None))
    result = calibrate_discriminator(adapter, real_data, **dict(SETTINGS, steps=50, holdout=500))
    logits = result.logit(torch.tensor([[-5.0], [0.0], [1.0], [5.0]]))
    assert bool(torch.isfinite(logits).all())
    # the best a step can do: log(P_data / P_g) on each side of 0.8 (0.5 / 0.297 above, 0.5 / 0.703 below)
    assert float(logits[-1]) == pytest.approx(0.521, abs=0.15) and float(logits[0]) == pytest.approx(-0.341, abs=0.15)


def test_bad_inputs_are_refused_before_training():
    adapter = critic_adapter()
    with pytest.raises(InputError, match="mode"):
        calibrate_discriminator(adapter, real_data, mode="platt")
    with pytest.raises(InputError, match="steps"):
        calibrate_discriminator(adapter, real_data, steps=-1)
    with pytest.raises(InputError, match="at least 10 real samples"):
        calibrate_discriminator(adapter, torch.zeros(5, 1))
    with pytest.raises(InputError, match="real_data"):
        calibrate_discriminator(adapter, "data.npy")


def test_the_calibrate_command_writes_and_resumes_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "cal.safetensors"
    command = ["calibrate", "--model", "tests.helpers.density_ratio_models:critic_adapter", "--real-data",
               "tests.helpers.density_ratio_models:real_data_tensor", "--output", str(path), "--steps", "20", "--eval-every", "10",
               "--holdout", "200", "--no-progress"]
    assert main(command) == 0
    first = json.loads(capsys.readouterr().out)
    assert path.is_file() and first["held_out_bce_best"] <= first["held_out_bce_start"]
    assert main(command) == 0  # finished: re-running resumes at the end and changes nothing
    assert json.loads(capsys.readouterr().out) == first
    assert main([*command[:2], "tests.helpers.density_ratio_models:nope", *command[3:]]) == 2


def test_the_calibrate_command_killed_part_way_resumes_to_the_uninterrupted_checkpoint(tmp_path):
    def command(path):
        return ["calibrate", "--model", "tests.helpers.density_ratio_models:critic_adapter", "--real-data", "tests.helpers.density_ratio_models:real_data_tensor",
                "--output", str(path), "--steps", "40", "--eval-every", "5", "--holdout", "200", "--no-progress"]

    reference, killed = tmp_path / "reference.safetensors", tmp_path / "killed.safetensors"
    assert main(command(reference)) == 0

    def step() -> int:
        return json.loads(read_safetensors_metadata(killed)["state"])["step"] if killed.is_file() else -1

    stopped = interrupt_part_way(command(killed), started=lambda: step() >= 5, finished=lambda: step() == 40)
    assert stopped.returncode == -signal.SIGKILL
    assert main(command(killed)) == 0
    assert safetensors_content(killed) == safetensors_content(reference)  # weights, optimiser, best copy, history: bit for bit
    assert sorted(p.name for p in tmp_path.iterdir()) == ["killed.safetensors", "reference.safetensors"]  # no temp file left


def _penalty(discriminator: Discriminator) -> float:
    """Mean (|d logit / dx| - 1)^2 over x in [-3, 4], the quantity the WGAN-GP penalty drives to 0."""
    x = torch.linspace(-3, 4, 200)[:, None].requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(discriminator.module(x).sum(), x)
    return float(((gradient.abs()[:, 0] - 1) ** 2).mean())


def test_the_gradient_penalty_bounds_the_slope_of_the_calibrated_logit():
    last = lambda: dict(SETTINGS, steps=150, select_on=lambda _, later=itertools.count(): -next(later))  # noqa: E731  (keep the last step)
    plain = calibrate_discriminator(critic_adapter(), real_data, **last())
    penalised = calibrate_discriminator(critic_adapter(), real_data, gradient_penalty=10.0, **last())
    assert _penalty(penalised) < 0.5 * _penalty(plain)
    again = calibrate_discriminator(critic_adapter(), real_data, gradient_penalty=10.0, **last())
    assert all(torch.equal(v, again.module.state_dict()[k]) for k, v in penalised.module.state_dict().items())  # same seed, same copy


def test_a_selection_criterion_picks_the_step_it_scores_lowest():
    seen = []

    def criterion(discriminator: Discriminator) -> float:
        seen.append({k: v.clone() for k, v in discriminator.module.state_dict().items()})
        return 1.0 if len(seen) != 3 else 0.0  # the third evaluation (step 100) is the best

    result = calibrate_discriminator(critic_adapter(), real_data, select_on=criterion, **dict(SETTINGS, steps=200))
    assert [step for step, _ in result.module.history] == [0, 50, 100, 150, 200]
    assert result.module.best_step == 100
    assert all(torch.equal(v, seen[2][k]) for k, v in result.module.state_dict().items())


def test_emd_selection_scores_steps_by_the_emd_of_sir_resampled_samples(monkeypatch):
    from gan_postproc.metrics import emd
    from gan_postproc.plugins.density_ratio import calibration

    adapter = critic_adapter()
    result = calibrate_discriminator(adapter, real_data, select_on="emd", **dict(SETTINGS, steps=100))
    history = dict(result.module.history)
    assert result.module.best_step == min(history, key=history.get)
    bare = emd(AffineGenerator()(torch.randn(1000, 1, generator=torch.Generator().manual_seed(5))), real_data(1000, 6))
    assert min(history.values()) < bare  # resampling with the calibrated ratios moves samples towards the data
    seen = {}
    monkeypatch.setattr(calibration, "calibrate_discriminator", lambda *args, **kwargs: seen.update(kwargs) or result)
    calibration.calibrated_copy(adapter, adapter.discriminator, real_data, seed=12345)
    assert seen["select_on"] == "emd"  # the samplers' calibration (calibrate_critic_on, benchmark rows) selects by EMD


def test_an_unknown_selection_criterion_is_refused():
    with pytest.raises(InputError, match="select_on"):
        calibrate_discriminator(critic_adapter(), real_data, select_on="fid", steps=1)
