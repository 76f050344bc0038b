"""The density-ratio and truncation plugins' benchmark rows: quick demo settings, a shared calibrated critic."""

from __future__ import annotations

import functools

from gan_postproc import Chain
from gan_postproc.bench.setups import BenchmarkContext, collect_setups
from gan_postproc.bench.suite import run_side_by_side, summarise
from gan_postproc.plugin_system.manager import PluginManager, get_plugin_manager
from gan_postproc.plugins.density_ratio import calibration

from ...helpers.density_ratio_models import critic_adapter, real_data, toy_adapter


def _context(adapter, suite: str = "demo"):
    return BenchmarkContext(suite=suite, dataset="digits" if suite != "toy2d" else "25gaussians", adapter=adapter,
                            conditional_adapter=None, real_data=real_data, seed=0, quick=suite == "demo")


def test_benchmark_rows_run_with_their_floors():
    context = _context(toy_adapter())
    rows = {row.name: row for row in collect_setups(context, get_plugin_manager()) if row.name in ("drs", "mh", "sir", "truncation")}
    assert set(rows) == {"drs", "mh", "sir", "truncation"}
    assert rows["mh"].sampler.chain_length == 16 and rows["drs"].sampler.burn_in == 1000  # quick demo settings
    assert rows["mh"].sampler.ratio.calibration_size == 1000
    evaluate = lambda batch, seed: {"mean": float(batch.images.mean())}  # noqa: E731
    outcomes = run_side_by_side(context, list(rows.values()), n=40, seeds=[0], evaluate=evaluate, progress=False)
    summary = summarise(outcomes, ["mean"])
    assert all(entry["error"] is None for entry in summary.values()), summary
    for row in rows.values():
        chain = Chain(context.adapter, row.sampler, plugin_manager=PluginManager())
        row.floor(chain.sample(10, seed=3), chain.report)


def test_benchmark_rows_calibrate_a_critic_once_and_share_it(monkeypatch):
    calls = []
    quick = functools.partial(calibration.calibrate_discriminator, steps=20, holdout=200)
    monkeypatch.setattr(calibration, "calibrate_discriminator", lambda *a, **k: calls.append(1) or quick(*a, **k))
    context = _context(critic_adapter(), suite="toy2d")
    rows = {row.name: row for row in collect_setups(context, get_plugin_manager()) if row.name in ("drs", "mh", "sir", "truncation")}
    assert set(rows) == {"drs", "mh", "sir"} and calls == []  # collecting rows is cheap: calibration waits for setup
    assert "calibrated copy of the critic" in rows["drs"].note
    for row in rows.values():
        row.sampler.setup(context.adapter, context.seed)
    assert len(calls) == 1
    discriminators = {id(row.sampler.ratio.discriminator) for row in rows.values()}
    assert len(discriminators) == 1 and rows["sir"].sampler.ratio.discriminator.output.value == "logit"
