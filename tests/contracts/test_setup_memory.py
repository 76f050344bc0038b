"""Memory at real size: setup and scoring passes run in batches of the chain's ``batch_size``.

A method's peak memory is set by the largest batch its networks see at once. Each test counts,
with forward pre-hooks on the generator, the discriminator and the classifier, the largest batch
they are called with while a method sets up (and samples), for a small and a ten times larger
burn-in, pool, probe, calibration set or validation set: it must never exceed the chain's
``batch_size`` and must not grow with the set's size. (Deterministic: a count, not a measurement.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from gan_postproc import Chain, get_registry
from gan_postproc.models.digits import digits_adapter, digits_dataset
from gan_postproc.models.toy2d import sample_toy2d_real, toy2d_adapter
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.batching import using_batch_size
from gan_postproc.plugins.density_ratio.calibration import calibrate_discriminator
from gan_postproc.plugins.latent_reweighting.latent_rs import train_importance_network

BATCH = 16


@contextmanager
def largest_batches(adapter: Adapter) -> Iterator[dict[str, int]]:
    """The largest batch each network of ``adapter`` is called with inside the block, by role."""
    largest: dict[str, int] = {}
    handles = []
    roles = {"generator": adapter.generator, "discriminator": adapter.discriminator, "classifier": adapter.classifier}
    roles["discriminator network"] = getattr(adapter.discriminator, "module", None)  # also inside calibrated copies
    for role, module in roles.items():
        if isinstance(module, nn.Module):
            def record(_module: nn.Module, args: tuple, role: str = role) -> None:
                largest[role] = max(largest.get(role, 0), args[0].shape[0])

            handles.append(module.register_forward_pre_hook(record))
    try:
        yield largest
    finally:
        for handle in handles:
            handle.remove()


def _digits(conditional: bool = False) -> Adapter:
    return digits_adapter(conditional=conditional, classifier="normal")


def _real_digits() -> torch.Tensor:
    return digits_dataset("train")[0][:600]


#: (adapter factory, kind, name, option name, options for a size) per setup pass.
PASSES: dict[str, tuple[Callable[[], Adapter], str, str, Callable[[int], dict]]] = {
    "drs burn-in": (_digits, "sampler", "drs", lambda size: {"burn_in": size}),
    "sir probe, then pools": (_digits, "sampler", "sir", lambda size: {"pool_size": size // 20}),
    "mh calibration and chains": (_digits, "sampler", "mh", lambda size: {
        "real_data": _real_digits(), "calibration_size": size, "chain_length": size // 20}),
    "dot K_eff pairs": (lambda: toy2d_adapter("25gaussians"), "refiner", "dot", lambda size: {"steps": 1, "k_eff_pairs": size, "k_eff_trials": 2}),
    "bigroc debias images": (_digits, "refiner", "bigroc", lambda size: {"eps": 0.5, "steps": 1, "debias_samples": size}),
    "class_balance calibration": (_digits, "sampler", "class_balance", lambda size: {"calibration_samples": size}),
}


@pytest.mark.parametrize("what", list(PASSES))
def test_setup_and_sampling_batches_never_exceed_the_chain_batch_size(what):
    make_adapter, kind, name, options = PASSES[what]
    seen = []
    for size in (60, 600):
        adapter = make_adapter()
        method = get_registry().create(kind, name, **options(size))
        chain = Chain(adapter, sampler=method, batch_size=BATCH) if kind == "sampler" else Chain(adapter, refiners=[method], batch_size=BATCH)
        with largest_batches(adapter) as largest, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chain.sample(2 * BATCH + 3, seed=0)
        seen.append(largest)
    for largest in seen:
        assert largest and max(largest.values()) <= BATCH, f"{what}: networks saw batches {largest} > batch_size {BATCH}"
    assert seen[0] == seen[1], f"{what}: the largest batch grew with the set's size: {seen[0]} -> {seen[1]}"


def test_calibration_and_importance_training_run_in_work_batches():
    """The trainers' held-out sets, Platt start, EMD selection pool and evaluation pool move a batch at a time."""
    seen = []
    for size in (40, 400):
        adapter = toy2d_adapter("25gaussians")
        real = sample_toy2d_real("25gaussians", 5 * size)
        with largest_batches(adapter) as largest, using_batch_size(BATCH):
            calibrate_discriminator(adapter, real, steps=2, batch_size=BATCH, holdout=size, eval_every=1, select_on="emd", seed=0)
            train_importance_network(adapter, real, validation_data=real[:size], steps=1, critic_steps=1, critic_warmup=1,
                                     batch_size=BATCH, eval_every=1, eval_samples=size, eval_pool=size, progress=False)
        seen.append(largest)
    assert max(seen[0].values()) <= BATCH and seen[0] == seen[1], seen
