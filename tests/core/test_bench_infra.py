"""The benchmark machinery: side-by-side rows, summaries, grids, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from gan_postproc import Refiner
from gan_postproc.bench import BenchmarkContext, BenchmarkSetup
from gan_postproc.bench.grid import save_labelled_grid
from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.bench.suite import baseline_rows, run_side_by_side, summarise
from gan_postproc.files.writing import atomic_write, atomic_write_json


class Zero(Refiner):
    name = "zero"

    def refine(self, batch, adapter):
        return batch.replace(images=torch.zeros_like(batch.images))


class Fails(Refiner):
    name = "fails"

    def refine(self, batch, adapter):
        raise RuntimeError("this method is broken")


def _context(adapter, conditional=None):
    return BenchmarkContext(suite="demo", dataset="tiny", adapter=adapter, conditional_adapter=conditional,
                            real_data=lambda n, seed: torch.zeros(n, 6), quick=True)


def test_rows_run_side_by_side_and_failures_are_reported(tiny_adapter, conditional_adapter, bare_pm):
    context = _context(tiny_adapter, conditional_adapter)
    rows = baseline_rows(context) + [BenchmarkSetup("zero", refiners=[Zero()]), BenchmarkSetup("fails", refiners=[Fails()])]
    outcomes = run_side_by_side(context, rows, n=20, seeds=[0, 1, 2], batch_size=8, preview=4, plugin_manager=bare_pm,
                                evaluate=lambda batch, seed: {"mean_abs": float(batch.images.abs().mean())}, progress=False)
    by_name = {o.name: o for o in outcomes}
    assert [o.name for o in outcomes] == ["baseline", "baseline_conditional", "zero", "fails"]
    assert len(by_name["baseline"].metrics) == 3 and by_name["baseline"].preview.shape == (4, 6)
    assert by_name["zero"].metrics[0]["mean_abs"] == 0.0 and by_name["baseline"].metrics[0]["mean_abs"] > 0
    assert by_name["fails"].error == "RuntimeError: this method is broken"
    summary = summarise(outcomes, ["mean_abs"])
    assert summary["baseline"]["cost_ratio"] == pytest.approx(1.0)
    assert summary["zero"]["cost_ratio"] > 0 and summary["zero"]["mean_abs_mean"] == 0.0
    assert summary["zero"]["mean_abs_std"] == 0.0 and summary["baseline"]["seeds"] == 3
    assert summary["fails"]["error"] and summary["fails"]["mean_abs_mean"] is None
    json.dumps(summary)


def test_conditional_row_without_a_conditional_generator_is_an_error_row(tiny_adapter, bare_pm):
    outcomes = run_side_by_side(_context(tiny_adapter), [BenchmarkSetup("cond", conditional=True)], n=4, seeds=[0],
                                evaluate=lambda b, s: {}, plugin_manager=bare_pm, progress=False)
    assert "conditional generator" in outcomes[0].error


def test_grid_png_has_one_row_per_method(tmp_path):
    path = save_labelled_grid(tmp_path / "grid.png", [("baseline", torch.rand(5, 1, 8, 8) * 2 - 1), ("bigroc", torch.zeros(3, 1, 8, 8))], cell=16, label_width=50)
    image = Image.open(path)
    assert image.size == (50 + 5 * 18, 2 * 18)
    import numpy as np

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32))
    assert pixels[18:34, 50:66].std() == 0  # a constant image stays constant


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    def broken(temp):
        temp.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "out.json", broken)
    assert list(tmp_path.iterdir()) == []
    atomic_write_json(tmp_path / "sub" / "out.json", {"a": 1})
    assert json.loads((tmp_path / "sub" / "out.json").read_text()) == {"a": 1}
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["out.json"]


def test_tables_and_run_descriptions_say_what_and_where():
    table = format_table([{"method": "baseline", "fid": 1.23456, "x": None}], ["method", "fid", "x"])
    assert table.splitlines()[2].split() == ["baseline", "1.235", "-"]
    text = describe_run("EMD", "DOT 2-D models", 1000, [0, 1], "cpu")
    assert "samples: 1000" in text and "seeds: [0, 1]" in text and "thread" in text
    assert machine_info("cpu")["device"] == "cpu"


def test_timing_plan_times_rows_apart_from_the_scored_passes(tiny_adapter, bare_pm):
    from gan_postproc.bench.suite import TimingPlan

    rows = baseline_rows(_context(tiny_adapter)) + [BenchmarkSetup("zero", refiners=[Zero()])]
    outcomes = run_side_by_side(_context(tiny_adapter), rows, n=10, seeds=[0, 1], batch_size=4, plugin_manager=bare_pm,
                                evaluate=lambda b, s: {}, progress=False, timing=TimingPlan(n=30, repeats=5, batch_size=30))
    assert [len(o.ms_per_sample) for o in outcomes] == [5, 5] and all(len(o.metrics) == 2 for o in outcomes)
    # a row slower than max_pass_seconds per timed pass keeps its scored passes' timing (one per seed)
    slow = run_side_by_side(_context(tiny_adapter), rows, n=10, seeds=[0, 1], plugin_manager=bare_pm, evaluate=lambda b, s: {},
                            progress=False, timing=TimingPlan(n=30, repeats=5, max_pass_seconds=1e-9))
    assert [len(o.ms_per_sample) for o in slow] == [2, 2]
    assert "median of 5 timed passes of 30 samples" in TimingPlan(n=30, repeats=5).describe(4)
