"""The shipped model files reach a non-editable install and load from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

EXPECTED = [
    "assets/dot2d/G_25gaussians_WGAN-GP.npz",
    "assets/dot2d/D_25gaussians_WGAN-GP.npz",
    "assets/dot2d/G_swissroll_WGAN-GP.npz",
    "assets/dot2d/D_swissroll_WGAN-GP.npz",
    "assets/dot2d/LICENSE",
    "assets/dot2d/README.md",
    "assets/digits/manifest.json",
    "assets/digits/generator.safetensors",
    "assets/digits/robust_classifier.safetensors",
    "models/digits.py",
    "classifier_training.py",
    "pipeline/torch_adapter.py",
    "plugins/density_ratio/drs.py",
    "plugins/bigroc/robust_training.py",
    "integrations/stylegan2/nvlabs.py",
    "benchmarks/toy2d.py",
]
#: Modules of 0.1 that moved: they must not ship (a stale one would shadow its old-path alias).
MOVED_AWAY = ["density_ratio.py", "training/robust_classifier.py", "plugins/drs.py", "integrations/stylegan2.py"]
#: What a checkout holds besides the source: not copied, so the install is built from the source alone
#: (setuptools' build/ folder keeps the files of earlier builds, modules since moved included).
NOT_SOURCE = shutil.ignore_patterns("build", "dist", ".venv", "venv", ".git", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis")

LOAD_FROM_INSTALL = """
import gan_postproc, torch
from gan_postproc.models.digits import digits_adapter
from gan_postproc.models.toy2d import toy2d_adapter
assert gan_postproc.__file__.startswith({target!r}), gan_postproc.__file__
print(digits_adapter(conditional=True).generate(torch.zeros(2, 32), torch.tensor([3, 4])).shape)
print(toy2d_adapter("swissroll").generate(torch.zeros(2, 2)).shape)
"""


def test_non_editable_install_ships_and_loads_the_models(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "site"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"pip install failed:\n{result.stderr[-2000:]}")
    package = target / "gan_postproc"
    missing = [name for name in EXPECTED if not (package / name).is_file()]
    assert not missing, f"not in the installed package: {missing}"
    stale = [name for name in MOVED_AWAY if (package / name).exists()]
    assert not stale, f"moved modules in the installed package: {stale}"
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = LOAD_FROM_INSTALL.format(target=str(target))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[:2] == ["torch.Size([2, 1, 8, 8])", "torch.Size([2, 2])"]
