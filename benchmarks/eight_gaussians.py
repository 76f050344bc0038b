"""``gan-postproc bench eight_gaussians``: the imbalanced 8-Gaussians experiment of collaborative
sampling (Liu, Kothari & Alahi, AAAI 2020, Sec. 5.1, Figures 3 and 4).

Data: eight Gaussians on a circle of radius ``10 / 1.414``, standard deviation
``0.02 * 10 / 1.414``; 90% of the samples come from two of them (45% each), 10% from the other
six (the reference code's ``Imbal-8Gaussians``, ``scale=10``, ``ratio=0.9``; every batch holds
the components in these proportions, as there).

Model: the paper's small GAN, generator and discriminator fully-connected with 4 hidden layers
of 64 units (ReLU; batch norm in the generator), latent ``z ~ N(0, I_2)``, non-saturating loss,
SGD (lr 5e-3 for G, 1e-2 for D; batch 1000, one D and one G step per iteration, as the reference
code trains it), trained on the CPU with a fixed seed and stopped early (3000 iterations, the
paper's early-stopped generator of Figure 3a: samples off the modes, minority modes missed).

Compared on the same latents (Figure 4):

* ``bare``: plain sampling;
* ``rejection``: discriminator rejection sampling (plugin ``drs``, its defaults), if installed;
* ``collaborative``: collaborative sampling in data space (Algorithm 1; ``K`` steps of size
  ``lambda``), guided by the trained discriminator, with the paper's stopping rule
  (``threshold``) and with the reference code's keep-the-best-iterate (``best``);
* ``collaborative+shaping``: the same, guided by a copy of the discriminator shaped with
  Algorithm 2 (negatives from Algorithm 1 with the threshold rule).

Measured (``gan_postproc.metrics.mode_statistics``): the fraction of good samples (within
``num_std`` standard deviations of the nearest mode; the paper says 3, its code 4) and the KL
divergence of the mode histogram of the good samples from the true mixture weights
(``KL(p_real || p_model)``, as the metrics module defines it), and the modes covered.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gan_postproc import Chain, Discriminator, TorchAdapter
from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.errors import OptionalDependencyError
from gan_postproc.files.writing import atomic_write
from gan_postproc.plugin_system.registry import get_registry
from gan_postproc.plugins.collaborative import DEFAULTS, CollaborativeRefiner, shape_discriminator

NAME = "eight_gaussians"
HELP = "collaborative sampling's imbalanced 8-Gaussians experiment (Sec. 5.1, Fig. 3-4): bare, rejection, collaborative with and without shaping"

#: Radius of the circle the eight means lie on, and the components' standard deviation (reference: scale 10).
RADIUS = 10.0 / 1.414
STD = 0.02 * 10.0 / 1.414
#: Share of the two majority components together (reference: ratio 0.9).
MAJORITY = 0.9
_ANGLES = (0.0, 45.0, -45.0, 180.0, 90.0, -90.0, 135.0, -135.0)  # the reference's order: the first two are the majority
MODES = torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in _ANGLES]) * RADIUS
WEIGHTS = [MAJORITY / 2] * 2 + [(1 - MAJORITY) / 6] * 6
#: Network width and depth (paper: 4 hidden layers; reference code: 64 units).
HIDDEN, LAYERS = 64, 4
#: Training (reference code): batch, SGD learning rates of G and D.
TRAIN_BATCH, LR_G, LR_D = 1000, 5e-3, 1e-2


def real_batch(n: int, generator: np.random.Generator) -> torch.Tensor:
    """``n`` real points ``[n, 2]``: the components in fixed proportions (as the reference's batches), shuffled."""
    majority = int(n * MAJORITY / 2)
    minority = (n - 2 * majority) // 6
    components = np.concatenate([np.repeat([0, 1], majority), np.repeat(np.arange(2, 8), minority)])
    components = np.concatenate([components, generator.integers(0, 8, n - len(components))])
    points = MODES.numpy()[components] + generator.normal(0.0, STD, size=(n, 2))
    return torch.from_numpy(points[generator.permutation(n)].astype(np.float32))


def _mlp(out_features: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 2
    for _ in range(LAYERS):
        layers += [nn.Linear(width, HIDDEN), *([nn.BatchNorm1d(HIDDEN)] if batch_norm else []), nn.ReLU()]
        width = HIDDEN
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def train_gan(iterations: int, seed: int) -> tuple[nn.Sequential, nn.Sequential]:
    """The paper's small GAN, trained with a fixed seed for ``iterations`` steps; returned in eval mode."""
    torch.manual_seed(seed)
    generator, discriminator = _mlp(2, batch_norm=True), _mlp(1, batch_norm=False)
    opt_g = torch.optim.SGD(generator.parameters(), lr=LR_G)
    opt_d = torch.optim.SGD(discriminator.parameters(), lr=LR_D)
    data = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed)
    softplus = nn.functional.softplus
    for _ in range(iterations):
        real = real_batch(TRAIN_BATCH, data)
        with torch.no_grad():
            fake = generator(torch.randn(TRAIN_BATCH, 2, generator=noise))
        loss_d = softplus(-discriminator(real)).mean() + softplus(discriminator(fake)).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = softplus(-discriminator(generator(torch.randn(TRAIN_BATCH, 2, generator=noise)))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return generator.eval().requires_grad_(False), discriminator.eval().requires_grad_(False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, default=3000, help="GAN training iterations before the early stop (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=5000, help="samples per method (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training, shaping and sampling (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.collaborative_steps, help="refinement steps K (default: %(default)s)")
    parser.add_argument("--step-size", type=float, default=1.0, help="refinement step size lambda in data space (default: %(default)s)")
    parser.add_argument("--shaping-iterations", type=int, default=300, help="discriminator shaping steps (default: %(default)s)")
    parser.add_argument("--shaping-batch", type=int, default=256, help="real and refined samples per shaping step (default: %(default)s)")
    parser.add_argument("--shaping-lr", type=float, default=1e-4, help="shaping Adam learning rate (default: %(default)s)")
    parser.add_argument("--num-std", type=float, default=DEFAULTS.mode_num_std, help="a sample is good within this many std of a mode (default: %(default)s)")
    parser.add_argument("--figure", default=None, help="write a figure like the paper's Figure 3 to this PNG (needs matplotlib)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gan_postproc.metrics import mode_statistics

    torch.set_num_threads(1)
    pyplot = _pyplot() if args.figure else None
    started = time.perf_counter()
    generator, discriminator = train_gan(args.iterations, args.seed)
    train_seconds = time.perf_counter() - started
    adapter = TorchAdapter(generator, latent_shape=2, output_range=None, discriminator=Discriminator(discriminator, "logit", input_range=None))
    held_out = real_batch(args.samples, np.random.default_rng(args.seed + 1))
    shaping_real = real_batch(20 * args.shaping_batch, np.random.default_rng(args.seed + 2))

    def collaborative(selection: str, guide: Discriminator | None = None) -> CollaborativeRefiner:
        real = {"real_data": held_out} if selection == "threshold" else {}
        return CollaborativeRefiner(discriminator=guide, layer="output", steps=args.steps, step_size=args.step_size, selection=selection, **real)  # type: ignore[arg-type]

    started = time.perf_counter()
    shaped = shape_discriminator(
        adapter, shaping_real, refiner=collaborative("threshold"), iterations=args.shaping_iterations,
        batch_size=args.shaping_batch, lr=args.shaping_lr, seed=args.seed, progress=False,
    )
    shaping_seconds = time.perf_counter() - started

    methods: dict[str, Chain | None] = {"bare": Chain(adapter)}
    registry = get_registry()
    methods["rejection (drs)"] = Chain(adapter, sampler=registry.create("sampler", "drs")) if "drs" in registry.names("sampler") else None
    for selection in ("threshold", "best"):
        methods[f"collaborative ({selection})"] = Chain(adapter, refiners=[collaborative(selection)])
    for selection in ("threshold", "best"):
        methods[f"collaborative+shaping ({selection})"] = Chain(adapter, refiners=[collaborative(selection, shaped)])

    rows, samples = [], {"real": held_out}
    for name, chain in methods.items():
        if chain is None:
            rows.append({"method": name, "note": "plugin drs not installed"})
            continue
        started = time.perf_counter()
        points = chain.sample(args.samples, seed=args.seed, progress=False).images
        seconds = time.perf_counter() - started
        stats = mode_statistics(points, MODES, STD, num_std=args.num_std, weights=WEIGHTS)
        samples[name] = points
        rows.append({"method": name, "good_fraction": stats.good_fraction, "kl": stats.kl, "modes_covered": stats.modes_covered, "seconds": seconds})

    print(describe_run(
        "collaborative sampling, imbalanced 8 Gaussians (Liu et al. Sec. 5.1, Fig. 4): fraction of good samples "
        f"(within {args.num_std:g} std of a mode, higher is better) and KL(real || model) of the mode histogram (lower is better)",
        f"the paper's small GAN trained {args.iterations} iterations (seed {args.seed}, {train_seconds:.0f} s), "
        f"refinement in data space K={args.steps}, lambda={args.step_size:g}; shaping {args.shaping_iterations} steps of "
        f"{args.shaping_batch} (Adam lr {args.shaping_lr:g}, {shaping_seconds:.0f} s)",
        args.samples, [args.seed],
    ))
    print(format_table(rows, ["method", "good_fraction", "kl", "modes_covered", "seconds", "note"]))
    if pyplot is not None:
        _figure(pyplot, Path(args.figure), samples, discriminator, shaped)
        print(f"figure: {args.figure}")
    return {
        "rows": rows,
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "train_seconds": train_seconds,
        "shaping_seconds": shaping_seconds,
        "machine": machine_info("cpu"),
    }


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError as error:
        raise OptionalDependencyError("matplotlib", "plots", "the eight_gaussians figure") from error
    return pyplot


def _figure(pyplot: Any, path: Path, samples: dict[str, torch.Tensor], original: nn.Module, shaped: Discriminator) -> None:
    """Top row: samples of each method (Fig. 3a-d); bottom row: the discriminator each one uses (Fig. 3e-h)."""
    names = [name for name in samples]
    extent = RADIUS * 1.4
    axis = torch.linspace(-extent, extent, 121)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        landscapes = {"original": torch.sigmoid(original(grid)).reshape(121, 121), "shaped": torch.sigmoid(shaped(grid)).reshape(121, 121)}
    figure, axes = pyplot.subplots(2, len(names), figsize=(3 * len(names), 6), squeeze=False)
    for column, name in enumerate(names):
        top, bottom = axes[0][column], axes[1][column]
        points = samples[name].numpy()
        top.scatter(points[:, 0], points[:, 1], s=1, alpha=0.3, color="tab:blue" if name != "real" else "gray")
        top.set_title(name, fontsize=8)
        landscape = "shaped" if "shaping" in name else "original"
        bottom.imshow(landscapes[landscape].numpy(), extent=(-extent, extent, -extent, extent), origin="lower", cmap="Greys")
        bottom.set_title(f"D: {landscape}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xlim(-extent, extent)
            ax.set_ylim(-extent, extent)
            ax.set_xticks([])
            ax.set_yticks([])
    figure.tight_layout()
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=100))
    pyplot.close(figure)
