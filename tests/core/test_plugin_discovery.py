"""Entry-point discovery with a real third-party plugin distribution.

The distribution is built from its own pyproject.toml and installed with pip
into an isolated site directory; each check runs in a fresh interpreter whose
PYTHONPATH includes that directory, exactly as if a user had pip-installed it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

THIRD_PARTY_MODULE = '''
"""A third-party gan-postproc plugin: one sampler, one refiner and one command."""
import torch
from gan_postproc import LatentSampler, Refiner, SampleBatch, hookimpl


class UpperHalfSampler(LatentSampler):
    """Draws latents and folds the first coordinate to be non-negative."""
    name = "upper_half"

    def sample(self, adapter, request):
        z = request.draw_latents(adapter)
        z = torch.cat([z[:, :1].abs(), z[:, 1:]], 1)
        return SampleBatch(latents=z, indices=request.indices, value_range=adapter.value_range)


class NegateRefiner(Refiner):
    """Negates images."""
    name = "negate"

    def refine(self, batch, adapter):
        return batch.replace(images=-batch.images)


@hookimpl
def gan_postproc_register_samplers():
    return [UpperHalfSampler]


@hookimpl
def gan_postproc_register_refiners():
    return [NegateRefiner]


class Greet:
    """A command object (not a module): ``gan-postproc greet --name N``."""
    NAME = "greet"
    HELP = "print a greeting (a third-party command)"

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)

    def run(self, args):
        print(f"hello {args.name}")
        return 3 if args.name == "three" else 0


@hookimpl
def gan_postproc_register_commands():
    return [Greet()]
'''

THIRD_PARTY_BENCHMARK = '''
"""A third-party benchmark: found through the entry-point group gan_postproc.benchmarks."""
NAME = "tiny_bench"
HELP = "a third-party benchmark that measures nothing"


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=2)


def run(args):
    print("table on stdout")
    return {"n": args.n}
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "gpp-thirdparty-demo"
version = "1.2.3"

[project.entry-points.gan_postproc]
thirdparty = "gpp_thirdparty"
broken = "gpp_broken"

[project.entry-points."gan_postproc.benchmarks"]
tiny_bench = "gpp_bench"

[tool.setuptools]
py-modules = ["gpp_thirdparty", "gpp_broken", "gpp_bench"]
'''

RUN_CHAIN = '''
import json, warnings, torch
from torch import nn
import gan_postproc as gp
from gan_postproc.plugin_system.registry import get_registry

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    registry = get_registry()
out = {
    "names": {k: registry.names(k) for k in ("sampler", "refiner", "adapter")},
    "errors": [e.plugin for e in registry.plugin_manager.load_errors],
    "warnings": [str(w.message) for w in caught],
    "infos": [i.as_dict() for i in registry.infos()],
}
if "upper_half" in out["names"]["sampler"]:
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 5), nn.Tanh())
    chain = gp.Chain(gp.TorchAdapter(G, latent_shape=3), registry.create("sampler", "upper_half"),
                     [registry.create("refiner", "negate")])
    batch = chain.sample(16, seed=0)
    out["min_z0"] = float(batch.latents[:, 0].min())
    out["matches"] = bool(torch.allclose(batch.images, -G(batch.latents)))
print("JSON" + json.dumps(out))
'''


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("dist")
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "gpp_thirdparty.py").write_text(THIRD_PARTY_MODULE)
    (source / "gpp_bench.py").write_text(THIRD_PARTY_BENCHMARK)
    (source / "gpp_broken.py").write_text('raise ImportError("this plugin needs a package that is not installed")\n')
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True,
    )
    return target


def run_in_fresh_interpreter(site_dir: Path, code: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GAN_POSTPROC_")}
    environment.update(PYTHONPATH=str(site_dir), **env)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(l for l in done.stdout.splitlines() if l.startswith("JSON"))
    return json.loads(line[4:]) | {"stderr": done.stderr}


def test_installed_plugin_is_discovered_and_runs_in_a_chain(site_dir):
    out = run_in_fresh_interpreter(site_dir, RUN_CHAIN)
    assert "upper_half" in out["names"]["sampler"] and "prior" in out["names"]["sampler"]
    assert "negate" in out["names"]["refiner"]
    assert out["min_z0"] >= 0 and out["matches"]
    info = next(i for i in out["infos"] if i["name"] == "negate")
    assert info == {**info, "kind": "refiner", "plugin": "thirdparty", "module": "gpp_thirdparty", "version": "1.2.3"}


def test_a_plugin_that_fails_to_import_is_reported_by_name_and_the_rest_load(site_dir):
    out = run_in_fresh_interpreter(site_dir, RUN_CHAIN)
    assert out["errors"] == ["broken"]
    assert any("plugin 'broken' failed to import: ImportError: this plugin needs a package" in w for w in out["warnings"])
    assert "torch" in out["names"]["adapter"]


def test_blocking_by_environment_variable(site_dir):
    out = run_in_fresh_interpreter(site_dir, RUN_CHAIN, GAN_POSTPROC_BLOCK_PLUGINS="thirdparty, broken")
    assert "upper_half" not in out["names"]["sampler"] and "negate" not in out["names"]["refiner"]
    assert out["errors"] == []  # a blocked plugin is not even imported


def test_blocking_by_api_and_blocking_a_builtin(site_dir):
    code = RUN_CHAIN.replace("registry = get_registry()", "registry = get_registry(gp.get_plugin_manager(block=['thirdparty', 'prior']))")
    out = run_in_fresh_interpreter(site_dir, code)
    assert "upper_half" not in out["names"]["sampler"]
    assert "prior" not in out["names"]["sampler"]
    assert "torch" in out["names"]["adapter"]


def test_cli_lists_the_third_party_plugin_and_warns_about_the_broken_one(site_dir):
    code = "import sys; from gan_postproc.cli import main; print('JSON' + '{}'); sys.exit(main(['plugins', '--json']))"
    environment = {**os.environ, "PYTHONPATH": str(site_dir)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout[len("JSON{}"):])
    assert {"name": "negate", "kind": "refiner", "plugin": "thirdparty", "version": "1.2.3"}.items() <= next(
        r for r in rows if r["name"] == "negate"
    ).items()
    assert "plugin 'broken' failed to import" in done.stderr


def test_tracing_environment_variable_prints_every_hook_call(site_dir):
    out = run_in_fresh_interpreter(site_dir, RUN_CHAIN, GAN_POSTPROC_TRACE="1")
    trace = [line for line in out["stderr"].splitlines() if line.startswith("[gan_postproc trace]")]
    assert any("gan_postproc_register_samplers" in line for line in trace)
    assert any("gan_postproc_batch_done(chain, batch, batch_index)" in line for line in trace)


def _cli(site_dir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GAN_POSTPROC_")}
    environment.update(PYTHONPATH=str(site_dir), **env)
    code = f"import sys; from gan_postproc.cli import main; sys.exit(main({list(argv)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)


def test_a_third_party_command_runs_beside_the_builtin_ones(site_dir):
    done = _cli(site_dir, "greet", "--name", "x")
    assert (done.returncode, done.stdout) == (0, "hello x\n"), done.stderr
    assert _cli(site_dir, "greet", "--name", "three").returncode == 3  # its exit code is the CLI's
    listed = _cli(site_dir, "--help").stdout
    assert "greet" in listed and "print a greeting" in listed
    assert "calibrate" in listed and "train-importance" in listed  # the families' commands, through the same hook
    rows = json.loads(_cli(site_dir, "plugins", "--json").stdout)
    assert {"name": "greet", "kind": "command", "plugin": "thirdparty", "version": "1.2.3"}.items() <= next(
        row for row in rows if row["name"] == "greet"
    ).items()


def test_blocking_a_plugin_removes_its_command(site_dir):
    done = _cli(site_dir, "greet", "--name", "x", GAN_POSTPROC_BLOCK_PLUGINS="thirdparty")
    assert done.returncode == 2 and "invalid choice: 'greet'" in done.stderr
    done = _cli(site_dir, "calibrate", "--help", GAN_POSTPROC_BLOCK_PLUGINS="density_ratio_commands")
    assert done.returncode == 2 and "invalid choice: 'calibrate'" in done.stderr


def test_a_third_party_benchmark_is_listed_and_runs(site_dir):
    listed = _cli(site_dir, "bench", "--list")
    assert listed.returncode == 0 and "tiny_bench" in listed.stdout and "toy2d" in listed.stdout
    done = _cli(site_dir, "bench", "tiny_bench", "--json", "--n", "5")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"n": 5} and "table on stdout" in done.stderr
