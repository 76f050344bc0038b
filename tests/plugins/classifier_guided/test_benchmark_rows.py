"""The classifier-in-the-loop plugins contribute benchmark rows for the digits suites, and the rows run."""

from __future__ import annotations

import pytest
import torch

from gan_postproc import Chain
from gan_postproc.bench.setups import BenchmarkContext, collect_setups
from gan_postproc.plugin_system.manager import PluginManager
from gan_postproc.plugins.classifier_guided import class_balance, classifier_filter, ensemble

from ...helpers import toy_classes as toy

ROWS = {"classifier_filter", "class_balance", "ensemble"}


def _only_these_plugins() -> PluginManager:
    """A plugin manager with just the three classifier-loop plugins (other plugins' rows need other models)."""
    pm = PluginManager()
    for module in (classifier_filter, class_balance, ensemble):
        pm.register_plugin(module, module.__name__.rsplit(".", 1)[-1])
    return pm


def _context(suite="demo", dataset="digits", **changes) -> BenchmarkContext:
    options = dict(
        suite=suite,
        dataset=dataset,
        adapter=toy.unconditional_adapter(),
        conditional_adapter=toy.conditional_adapter(),
        real_data=lambda n, seed: torch.zeros(n, 1, 4, 4),
        models={"classifier": toy.classifier()},
        quick=suite == "demo",
    )
    options.update(changes)
    return BenchmarkContext(**options)


@pytest.mark.parametrize("suite", ["demo", "digits"])
def test_digits_rows_run_and_their_floors_run(suite):
    context = _context(suite)
    rows = {row.name: row for row in collect_setups(context, _only_these_plugins()) if row.name in ROWS}
    assert set(rows) == ROWS
    assert rows["classifier_filter"].conditional and not rows["class_balance"].conditional and not rows["ensemble"].conditional
    for row in rows.values():
        chain = Chain(context.conditional_adapter if row.conditional else context.adapter, row.sampler, row.refiners, batch_size=64)
        batch = chain.sample(100, seed=0)
        assert len(batch) == 100
        row.floor(batch, chain.report)


def test_no_rows_without_the_models_they_need():
    names = {row.name for row in collect_setups(_context(models={}), _only_these_plugins())}
    assert not ({"classifier_filter", "class_balance"} & names) and "ensemble" in names
    names = {row.name for row in collect_setups(_context(conditional_adapter=None), _only_these_plugins())}
    assert not ({"classifier_filter", "ensemble"} & names) and "class_balance" in names
    toy2d = _context("toy2d", "25gaussians", conditional_adapter=None, models={})
    assert not (ROWS & {row.name for row in collect_setups(toy2d, _only_these_plugins())})
