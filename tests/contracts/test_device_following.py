"""Every tensor a method makes follows its models' device: on a fake GPU here, on CUDA where there is one.

Every registered sampler and refiner (enumerated as in ``tests/test_method_properties.py``, on the
shipped digits GANs and the DOT 2-D models), the setup paths that estimate something (DOT's
``K_eff``, BIGRoC's debias offsets, isotonic calibration, DRS's burn-in), the trainers
(``calibrate_discriminator``, ``train_importance_network``) and the metrics run end to end with
their models on another device than the CPU:

* on every machine, on the fake device of :mod:`tests.helpers.fake_device` (CPU data tagged as
  ``cuda:0``; an operation mixing it with CPU tensors fails as it would on a GPU). The fake device
  computes on the CPU, so its results must equal a plain CPU run's exactly;
* where CUDA is available, on the real GPU (results finite, in range, on the GPU).

The fake device catches the bug class of issue 13 (``latent_rs`` on CUDA: a CPU ``indices`` field
indexed with rows on the device): :func:`test_the_fake_device_fails_where_cuda_fails` replays it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from gan_postproc import Chain, SampleBatch, get_registry
from gan_postproc.errors import GanPostprocError
from gan_postproc.metrics import SampleEvaluator
from gan_postproc.models.digits import digits_feature_extractor
from gan_postproc.plugins.density_ratio.calibration import calibrate_discriminator
from gan_postproc.plugins.latent_reweighting.latent_rs import train_importance_network

from ..helpers.fake_device import DeviceMixError, FakeCuda
from .test_method_properties import FAST, MODELS, Models, models

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

#: Options that run each method's estimating setup path (FAST skips some: a given k_eff, no debias).
SETUP: dict[str, Callable[[Models], dict[str, Any]]] = {
    "dot": lambda m: {"steps": 2, "k_eff_trials": 2, "k_eff_pairs": 6},
    "bigroc": lambda m: {"eps": 0.5, "steps": 2, "debias_samples": 20},
    "drs": lambda m: {"burn_in": 40, "calibration": "isotonic", "real_data": m.real, "real_labels": m.real_labels,
                      **FAST["drs"](m)},
    "sir": lambda m: {"pool_size": 3, "calibration": "isotonic", "real_data": m.real, "real_labels": m.real_labels,
                      **FAST["sir"](m)},
}

CASES = [(model, kind, name, options) for model in MODELS for kind in ("sampler", "refiner") for name in get_registry().names(kind)
         for options in (("fast", "setup") if name in SETUP else ("fast",))]


def _options(name: str, options: str, m: Models) -> dict[str, Any]:
    table = SETUP if options == "setup" else FAST
    return table[name](m) if name in table else {}


def _run(kind: str, name: str, options: str, m: Models) -> SampleBatch:
    """12 samples in batches of 8 (a full and a partial batch) through a chain with the method."""
    method = get_registry().create(kind, name, **_options(name, options, m))
    chain = Chain(m.adapter, sampler=method, batch_size=8) if kind == "sampler" else Chain(m.adapter, refiners=[method], batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return chain.sample(12, seed=3)


def _outcome(action: Callable[[], SampleBatch]) -> SampleBatch | str:
    """The batch, or the library's error (a method that cannot run on a model says so the same way everywhere)."""
    try:
        return action()
    except GanPostprocError as error:
        return f"{type(error).__name__}: {error}"


def _same(fake: SampleBatch, cpu: SampleBatch) -> None:
    for name in ("images", "latents", "labels", "indices"):
        a, b = getattr(fake, name), getattr(cpu, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.equal(a, b), f"{name} differ between the fake device and the CPU"
    assert fake.scores.keys() == cpu.scores.keys() and fake.provenance.keys() == cpu.provenance.keys()


def test_the_fake_device_fails_where_cuda_fails():
    with FakeCuda() as fake:
        x = torch.ones(4, device="cuda")
        assert x.device == torch.device("cuda", 0) and fake.on_device(x) and fake.on_device(x * 2)
        x + torch.tensor(1.0)  # a CPU scalar is allowed, as on CUDA
        x[torch.tensor([0, 2])]  # CPU indices into a device tensor are allowed, as on CUDA
        with pytest.raises(DeviceMixError, match="same device"):
            x + torch.ones(4)
        with pytest.raises(DeviceMixError, match="indices should be either on cpu"):
            torch.arange(4)[x.long()]
        with pytest.raises(DeviceMixError, match="numpy"):
            x.numpy()
        assert not fake.on_device(x.cpu()) and fake.transfers == 1
        layer = nn.Linear(3, 2).to("cuda")
        assert fake.on_device(layer.weight) and fake.on_device(layer(torch.zeros(5, 3, device="cuda")))
        with pytest.raises(DeviceMixError):
            layer(torch.zeros(5, 3))
        # issue 13: latent_rs on CUDA. A batch holds device latents and CPU indices; rows picked on the device.
        batch = SampleBatch(latents=torch.zeros(6, 2, device="cuda"), indices=torch.arange(6))
        rows = torch.tensor([4, 1], device="cuda")
        with pytest.raises(DeviceMixError, match="indices should be either on cpu"):
            batch.indices[rows]  # what SampleBatch.select did before it moved the rows to each field's device
        picked = batch.select(rows)
        assert fake.on_device(picked.latents) and not fake.on_device(picked.indices) and picked.indices.tolist() == [4, 1]


@pytest.mark.parametrize("model,kind,name,options", CASES, ids=["-".join(c) for c in CASES])
def test_every_method_runs_on_the_fake_device_and_matches_the_cpu(model, kind, name, options):
    m = models(model)
    cpu = _outcome(lambda: _run(kind, name, options, m))
    with FakeCuda() as fake:
        for adapter in (m.adapter, m.other, m.importance):
            fake.move(adapter)
        on_device = _outcome(lambda: _run(kind, name, options, m))
        if isinstance(on_device, SampleBatch):
            assert fake.on_device(on_device.images), "the samples must stay on the models' device"
    if isinstance(cpu, str):
        assert on_device == cpu, "a method that cannot run on this model must say the same on any device"
        return
    assert isinstance(on_device, SampleBatch), on_device
    _same(on_device, cpu)


def test_trainers_and_metrics_run_on_the_fake_device():
    toy, digits = models("toy2d"), models("digits_conditional")
    with FakeCuda() as fake:
        for m in (toy, digits):
            fake.move(m.adapter)
        for m in (toy, digits):
            for select_on in ("bce", "emd"):
                calibrated = calibrate_discriminator(
                    m.adapter, m.real, real_labels=m.real_labels, steps=3, holdout=16, eval_every=2, select_on=select_on, seed=1
                )
                assert fake.on_device(next(calibrated.parameters()))
        training = train_importance_network(
            toy.adapter, toy.real, validation_data=toy.real[:32], steps=2, critic_steps=1, critic_warmup=1,
            batch_size=16, eval_every=1, eval_samples=16, eval_pool=64, progress=False,
        )
        assert fake.on_device(next(training.network.parameters()))
        features = fake.move(digits_feature_extractor())
        evaluator = SampleEvaluator(features, digits.real[:64], classifier=digits.adapter.classifier, kid_subsets=2, kid_subset_size=8)
        evaluator.update(Chain(digits.adapter).sample(32, seed=0).images, torch.arange(32) % 10)
        assert evaluator.compute()["n"] == 32


@CUDA
def test_every_method_runs_end_to_end_on_cuda():
    """Every case above on the GPU: finite samples in range, on the GPU, at the requested indices (one test, every failure listed)."""
    failures = []
    for model, kind, name, options in CASES:
        m = models.__wrapped__(model)  # fresh models: the shared ones stay on the CPU for the other tests
        for adapter in (m.adapter, m.other):
            adapter.to("cuda")
        m.importance.to("cuda")
        m.real = m.real.cuda()  # real data on the GPU as well: methods must accept it where the models are
        try:
            outcome = _outcome(lambda: _run(kind, name, options, m))
            if isinstance(outcome, str):
                assert outcome == _outcome(lambda: _run(kind, name, options, models(model))), outcome
                continue
            assert outcome.images.device.type == "cuda" and bool(torch.isfinite(outcome.images).all())
            assert outcome.indices.cpu().tolist() == list(range(12))
            low, high = m.adapter.value_range or (-float("inf"), float("inf"))
            assert low - 1e-4 <= float(outcome.images.min()) and float(outcome.images.max()) <= high + 1e-4
        except Exception as error:  # collect, so one GPU run names every failing method
            failures.append(f"{model}-{kind}-{name}-{options}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures)
