"""``gan-postproc bench latent_rs_figure``: digits samples with their latentRS acceptance probabilities (paper Figure 4).

Issenhuth et al. (WACV 2022), Figure 4: "Images drawn from the generative
model and their acceptance probabilities with the latentRS algorithm ... the
quality of images correlates with higher acceptance rates". This benchmark
draws prior latents for the shipped (deliberately imperfect) digits GAN,
computes ``P_a(z) = min(w(z) / m, 1)`` with the shipped importance network,
and saves a grid with one row per acceptance band (lowest to highest
quantiles of ``P_a``). It also measures the correlation the figure
illustrates, with networks the method never consulted: the confidence
(max softmax) of the independent digits feature network's classifier head,
and the per-sample distance to the nearest held-out test image in that
network's feature space, each against ``P_a`` (Spearman rank correlation).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

from gan_postproc.bench.grid import save_labelled_grid
from gan_postproc.bench.report import describe_run, machine_info
from gan_postproc.models.digits import digits_adapter, digits_dataset, digits_feature_extractor, load_digits_feature_net
from gan_postproc.plugins.latent_reweighting import load_shipped_importance_network

NAME = "latent_rs_figure"
HELP = "digits samples in bands of latentRS acceptance probability, and how P_a correlates with independent quality scores (paper Figure 4)"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", type=int, default=2000, help="prior draws scored (default %(default)s)")
    parser.add_argument("--bands", type=int, default=5, help="rows of the figure: quantile bands of P_a (default %(default)s)")
    parser.add_argument("--per-band", type=int, default=12, help="images per row (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prior draws (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("latent_rs_figure.png"), help="PNG to write (default: latent_rs_figure.png in the current folder)")


@torch.no_grad()
def run(args: argparse.Namespace) -> dict[str, Any]:
    adapter = digits_adapter(conditional=False, classifier=None)
    network = load_shipped_importance_network("digits")
    z = adapter.prior.sample(args.seed, torch.arange(args.samples))
    probability = (network.weights(adapter, z) / network.max_weight).clamp(max=1.0)
    images = adapter.generate(z)
    order = torch.argsort(probability)
    rows = []
    bands = []
    for band, chunk in enumerate(torch.tensor_split(order, args.bands)):
        picked = chunk[torch.linspace(0, len(chunk) - 1, args.per_band).round().long()]
        low, high = float(probability[chunk].min()), float(probability[chunk].max())
        rows.append((f"P_a {low:.2f}-{high:.2f}", images[picked]))
        bands.append({"band": band, "p_min": low, "p_max": high})
    rows.reverse()  # highest acceptance on top, as in the paper
    path = save_labelled_grid(args.out, rows, cell=40, label_width=120)

    feature_net = load_digits_feature_net().eval()
    confidence = torch.softmax(feature_net(images), dim=1).max(dim=1).values
    features = digits_feature_extractor()
    test_features = features(digits_dataset("test")[0])
    nearest = torch.cdist(features(images), test_features).min(dim=1).values
    correlation = {
        "independent_confidence": float(spearmanr(probability.numpy(), confidence.numpy()).statistic),
        "distance_to_nearest_test_image": float(spearmanr(probability.numpy(), nearest.numpy()).statistic),
    }
    print(describe_run("latentRS acceptance probabilities of the shipped digits GAN", "digits", args.samples, [args.seed]))
    print(f"mean P_a {float(probability.mean()):.3f} (1/m = {1 / network.max_weight:.3f}); figure: {path}")
    print(f"Spearman(P_a, independent classifier confidence) = {correlation['independent_confidence']:+.3f} (positive: accepted samples look more like digits)")
    print(f"Spearman(P_a, feature distance to nearest test image) = {correlation['distance_to_nearest_test_image']:+.3f} (negative: accepted samples lie closer to real ones)")
    return {"figure": str(path), "mean_acceptance": float(probability.mean()), "bands": bands, "spearman": correlation, "machine": machine_info("cpu")}
