"""Train the shipped importance networks (latent reweighting) and record them in the asset manifests.

    python benchmarks/train_importance.py                 # all: dot2d (both data sets) and digits
    python benchmarks/train_importance.py --only digits

For each shipped generator this runs Algorithm 1 of Issenhuth et al. (WACV
2022) through :func:`gan_postproc.plugins.latent_reweighting.train_importance_network`
with the settings in :data:`SETTINGS`, selects the snapshot with the best
held-out sliced Wasserstein-1 distance (held-out real samples never used for training,
nor by the benchmarks' measurements), tunes the latentGA step size on the
same held-out samples (by EMD of 1000 chain samples, mean of 2 seeds), and writes

* ``assets/dot2d/importance_<data set>.safetensors`` and ``assets/dot2d/manifest.json``,
* ``assets/digits/importance.safetensors`` and its entry in ``assets/digits/manifest.json``
  (the other entries are kept),

each with how it was made (settings, seed, data, time, machine) and what was
measured. The sampler settings tuned here are stored in the network file's
``info["samplers"]`` and used by the benchmark rows. Training resumes from
``--work-dir`` when re-run. CPU, one thread, fixed seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gan_postproc import Chain
from gan_postproc.bench.report import machine_info
from gan_postproc.files.writing import atomic_write
from gan_postproc.metrics import emd
from gan_postproc.models.assets import sha256_of
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.plugins.latent_reweighting import SHIPPED_NETWORKS, ImportanceNetwork, LatentGA, LatentRS, LatentRSGA, train_importance_network

ASSETS = Path(__file__).resolve().parents[1] / "src" / "gan_postproc" / "assets"

#: Settings of Algorithm 1 per data set (what is not given takes gan_postproc.DEFAULTS); ``width``
#: is the importance MLP's hidden width (the DOT generators cost ~10 us per sample on one CPU
#: thread, so a narrow w keeps latentRS's proposals cheap next to them).
SETTINGS: dict[str, dict[str, Any]] = {
    "25gaussians": {"steps": 600, "eval_samples": 2000, "width": 32},
    "swissroll": {"steps": 600, "eval_samples": 2000, "width": 32},
    "digits": {"steps": 400, "lr": 5e-4, "critic_steps": 5},
}
#: Seeds: of Algorithm 1, of the training / held-out real samples, of the held-out split.
SEEDS = {"training": 0, "real_data": 1, "heldout": 2}
#: latentGA step sizes tried on the held-out data (10 steps each).
GA_STEP_SIZES = (0.005, 0.01, 0.02, 0.05)
#: Held-out real samples.
HELDOUT = {"toy2d": 2000, "digits": 300}


def _toy2d(dataset: str) -> tuple[Adapter, torch.Tensor, torch.Tensor, dict[str, Any]]:
    from gan_postproc.models.toy2d import sample_toy2d_real, toy2d_adapter

    real = sample_toy2d_real(dataset, 50_000, seed=SEEDS["real_data"])
    heldout = sample_toy2d_real(dataset, HELDOUT["toy2d"], seed=SEEDS["heldout"])
    data = {"training": f"sample_toy2d_real({dataset!r}, 50000, seed={SEEDS['real_data']})",
            "heldout": f"sample_toy2d_real({dataset!r}, {HELDOUT['toy2d']}, seed={SEEDS['heldout']})"}
    return toy2d_adapter(dataset), real, heldout, data


def _digits(_: str) -> tuple[Adapter, torch.Tensor, torch.Tensor, dict[str, Any]]:
    from gan_postproc.models.digits import digits_adapter, digits_dataset

    images = digits_dataset("train")[0]
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SEEDS["heldout"]))
    heldout, real = images[order[: HELDOUT["digits"]]], images[order[HELDOUT["digits"] :]]
    data = {"training": f"digits_dataset('train') minus the held-out rows ({len(real)} images)",
            "heldout": f"{HELDOUT['digits']} rows of digits_dataset('train') (torch.randperm, seed {SEEDS['heldout']}); the test split is not used"}
    return digits_adapter(conditional=False, classifier=None), real, heldout, data


LOADERS: dict[str, Callable[[str], tuple[Adapter, torch.Tensor, torch.Tensor, dict[str, Any]]]] = {
    "25gaussians": _toy2d,
    "swissroll": _toy2d,
    "digits": _digits,
}


def _heldout_emd(adapter: Adapter, sampler: Any, heldout: torch.Tensor, seed: int) -> float:
    n = min(len(heldout), 1000)
    batch = Chain(adapter, sampler, batch_size=500).sample(n, seed=seed)
    return emd(batch.images.reshape(n, -1), heldout[:n].reshape(n, -1))


def tune_ga(adapter: Adapter, network: ImportanceNetwork, heldout: torch.Tensor) -> dict[str, dict[str, Any]]:
    """latentGA / latentRS+GA step sizes with the lowest held-out EMD (mean of 2 seeds)."""
    tuned: dict[str, dict[str, Any]] = {"latent_rs": {}}
    for name, make in (("latent_ga", LatentGA), ("latent_rs_ga", LatentRSGA)):
        scores = {size: sum(_heldout_emd(adapter, make(network, steps=10, step_size=size), heldout, s) for s in (101, 102)) / 2 for size in GA_STEP_SIZES}
        best = min(scores, key=scores.get)
        tuned[name] = {"steps": 10, "step_size": best}
        print(f"  {name}: held-out EMD by step size {({k: round(v, 4) for k, v in scores.items()})} -> {best}")
    return tuned


def train_one(dataset: str, work_dir: Path, assets: Path, steps: int | None) -> dict[str, Any]:
    adapter, real, heldout, data = LOADERS[dataset](dataset)
    settings = {**SETTINGS[dataset], **({"steps": steps} if steps else {})}
    options = {key: value for key, value in settings.items() if key != "width"}
    network = ImportanceNetwork(adapter.prior.dim, width=settings["width"]) if "width" in settings else None
    start = time.perf_counter()
    result = train_importance_network(
        adapter, real, validation_data=heldout, network=network, checkpoint_dir=work_dir / dataset, seed=SEEDS["training"], **options
    )
    seconds = time.perf_counter() - start
    print(f"{dataset}: held-out sliced W1 unweighted {result.baseline_score:.4f} -> selected {result.best_score:.4f} (step {result.best_step} of {result.steps})")
    samplers = tune_ga(adapter, result.network, heldout)
    measured = {
        "heldout_sliced_w1_unweighted": result.baseline_score,
        "heldout_sliced_w1_selected": result.best_score,
        "heldout_emd_bare_chain": _heldout_emd(adapter, None, heldout, 101),
        "heldout_emd_latent_rs_chain": _heldout_emd(adapter, LatentRS(result.network), heldout, 101),
    }
    group, name = SHIPPED_NETWORKS[dataset]
    info = {
        "what": f"importance network w(z) for the shipped {dataset} generator (latent reweighting, Issenhuth et al. 2022, Algorithm 1)",
        "samplers": samplers,
        "training": {**settings, "seed": SEEDS["training"], "best_step": result.best_step, "data": data, "seconds": round(seconds, 1)},
        "measured": measured,
        "history": result.history,
    }
    path = result.network.save(assets / group / name, info=info)
    return {"group": group, "file": name, "path": path, "info": info}


def write_manifest_entry(assets: Path, group: str, file: str, path: Path, info: dict[str, Any], command: str) -> None:
    """Add or replace this file's entry in ``assets/<group>/manifest.json``, keeping every other entry."""
    manifest_path = assets / group / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {
        "description": f"files of assets/{group}; importance networks written by benchmarks/train_importance.py",
        "files": {},
    }
    manifest.setdefault("files", {})[file] = {
        "architecture": "ImportanceNetwork",
        "config": ImportanceNetwork.load(path).config(),
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "what": info["what"],
        "training": {"command": command, **info["training"]},
        "samplers": info["samplers"],
        "measured": info["measured"],
        "machine": machine_info("cpu"),
    }
    atomic_write(manifest_path, lambda temporary: temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SETTINGS), default=sorted(SETTINGS), help="data sets to train for")
    parser.add_argument("--work-dir", type=Path, default=Path("importance_work"), help="checkpoints (re-running resumes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--assets", type=Path, default=ASSETS, help="asset folder to write into (default: the package's)")
    parser.add_argument("--steps", type=int, help="override the number of updates of w (quick checks)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/train_importance.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for dataset in args.only:
        written = train_one(dataset, args.work_dir, args.assets, args.steps)
        write_manifest_entry(args.assets, written["group"], written["file"], written["path"], written["info"], command.strip())
        print(f"  wrote {written['path']} ({os.path.getsize(written['path'])} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
