"""The eight_gaussians benchmark runs end to end (tiny settings) and reports every method."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gan_postproc.benchmarks import eight_gaussians
from gan_postproc.cli import main
from gan_postproc.metrics import mode_statistics


def test_real_data_has_the_papers_proportions_and_spread():
    points = eight_gaussians.real_batch(1000, np.random.default_rng(0))
    stats = mode_statistics(points, eight_gaussians.MODES, eight_gaussians.STD, num_std=4, weights=eight_gaussians.WEIGHTS)
    assert stats.good_fraction > 0.99 and stats.kl < 1e-3
    assert torch.allclose(stats.histogram[:2], torch.tensor([0.45, 0.45], dtype=torch.float64), atol=0.01)


def test_the_benchmark_reports_every_method_and_writes_the_figure(tmp_path: Path, capsys):
    figure = tmp_path / "fig3.png"
    argv = ["bench", "eight_gaussians", "--iterations", "20", "--samples", "200", "--steps", "3",
            "--shaping-iterations", "2", "--shaping-batch", "32", "--figure", str(figure), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    methods = [row["method"] for row in result["rows"]]
    assert methods == ["bare", "rejection (drs)", "collaborative (threshold)", "collaborative (best)",
                       "collaborative+shaping (threshold)", "collaborative+shaping (best)"]
    assert result["machine"]["torch"] == torch.__version__
    assert "machine:" in captured.err and figure.stat().st_size > 1000
