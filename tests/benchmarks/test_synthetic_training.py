"""The synthetic_training benchmark's machinery, on the toy models (the shipped digits run is `gan-postproc bench synthetic_training`)."""

from __future__ import annotations

import torch

from gan_postproc.benchmarks import synthetic_training as bench

from ..helpers import toy_classes as toy


def test_table1_settings():
    with_truncation = bench.table1_settings(True)
    assert len(with_truncation) == 14 and with_truncation[-2:] == [bench.Setting("real", transforms=True), bench.Setting("real")]
    assert [s.name for s in with_truncation[:6]] == [
        "fixed",
        "fixed+transforms",
        "fixed+filtering",
        "fixed+truncation",
        "fixed+transforms+filtering",
        "fixed+transforms+filtering+truncation",
    ]
    assert len(bench.table1_settings(False)) == 10 and not any(s.truncation for s in bench.table1_settings(False))


def test_run_table_trains_on_synthetic_and_real_data():
    g = torch.Generator().manual_seed(0)
    adapter = toy.conditional_adapter()
    real = adapter.generate(torch.randn(96, toy.LATENT, generator=g), torch.arange(96) % 3)
    real_train = (real.detach(), torch.arange(96) % 3)
    test_labels = torch.arange(60) % 3
    test = (adapter.generate(torch.randn(60, toy.LATENT, generator=g), test_labels).detach(), test_labels)
    settings = [bench.Setting("fixed"), bench.Setting("on-the-fly", transforms=True, filtering=True), bench.Setting("real", transforms=True)]
    rows = bench.run_table(
        settings,
        [0, 1],
        adapter=adapter,
        filter_classifier=toy.classifier(),
        truncation=None,
        make_model=lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)),
        real_train=real_train,
        test=test,
        training=bench.Training(epochs=4, samples_per_epoch=96, batch_size=32, lr=0.05),
    )
    assert [row["setting"] for row in rows] == ["fixed", "on-the-fly+transforms+filtering", "real+transforms"]
    for row in rows:
        assert row["steps"] == 4 * 3 and len(row["per_seed_final"]) == 2
        assert 0 <= row["acc_final"] <= row["acc_best"] + 1e-9 <= 100 + 1e-9
    assert rows[0]["acc_final"] > 80  # the toy classes are easy: training works end to end
    assert bench.truncation_sampler() is None or isinstance(bench.truncation_sampler(), bench.LatentSampler)
