"""The main job and the benchmark commands, run as a user runs them (small sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gan_postproc.cli import main


def test_demo_writes_results_and_a_grid(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--n", "200", "--only", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"baseline", "baseline_conditional"}
    for row in results.values():
        assert {"fid", "precision", "recall", "balance_kl", "ms_per_sample", "n"} <= set(row)
        assert row["n"] == 200 and row["fid"] > 0 and 0 <= row["precision"] <= 1 and row["ms_per_sample"] > 0
    assert results["baseline"]["cost_ratio"] == pytest.approx(1.0)
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[1] >= 2 * 48
    assert "baseline" in out and "fid" in out and "samples: 200" in out


def test_bench_toy2d_json_maps_dataset_to_method_to_emd(capsys):
    assert main(["bench", "toy2d", "--json", "--n", "200", "--seeds", "2", "--only", "none"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is pure JSON; the table went to stderr
    assert "emd_mean" in captured.err
    assert set(result) == {"25gaussians", "swissroll"}
    baseline = result["25gaussians"]["baseline"]
    assert {"emd_mean", "emd_std", "cost_ratio"} <= set(baseline)
    assert 0.05 < baseline["emd_mean"] < 0.5 and baseline["cost_ratio"] == pytest.approx(1.0)


def test_bench_overhead_measures_the_baseline_floor(capsys):
    assert main(["bench", "overhead", "--json", "--n", "64", "--repeats", "1", "--only", "baseline"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"baseline@digits", "baseline@25gaussians", "baseline@swissroll"} <= set(result)
    row = result["baseline@digits"]
    assert row["ratio"] > 0 and row["floor_ms_per_sample"] > 0


NVLABS = Path(__file__).resolve().parents[1].parent / "shared" / "third_party" / "stylegan2-ada-pytorch"  # ../shared next to the repository
TINY = ["--resolution", "16", "--channel-base", "256", "--channel-max", "16", "--z-dim", "32", "--batch-size", "4",
        "--batches", "1", "--repeats", "1", "--drs-burn-in", "16", "--mh-chain-length", "3", "--sir-pool-size", "2",
        "--ddls-steps", "2", "--dot-steps", "2", "--collaborative-steps", "2", "--threads", "1"]


@pytest.mark.parametrize("networks", ["plain", "nvlabs"])
def test_bench_realistic_measures_every_method_beside_the_raw_generator_and_its_floor(networks, tmp_path, capsys):
    if networks == "nvlabs" and not (NVLABS / "training" / "networks.py").is_file():
        pytest.skip(f"the NVlabs stylegan2-ada-pytorch source is not at {NVLABS}")
    source = ["--plain"] if networks == "plain" else ["--nvlabs-dir", str(NVLABS)]
    out = tmp_path / "realistic.json"
    assert main(["bench", "realistic", "--json", *TINY, *source, "--output", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == result  # the results file holds what was printed
    assert ("NVlabs" in result["networks"]) == (networks == "nvlabs")
    rows = result["rows"]
    expected = {"raw generator", "prior", "truncation", "drs", "mh", "sir", "latent_rs", "latent_rs_ga", "ddls", "dot_latent", "collaborative"}
    assert set(rows) == expected
    for name, row in rows.items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        assert row["ms_per_image"]["mean"] > 0 and row["sampling_peak_mib"] is not None
        if name != "raw generator":
            assert row["floor_ms_per_image"]["mean"] > 0 and row["x_floor"] > 0 and row["x_raw_generator"] > 0
            assert row["setup_peak_mib"] is not None
    assert rows["latent_rs"]["acceptance_rate"] == pytest.approx(1 / 3, abs=0.2)  # untrained w = 1: accept w/m = 1/3
