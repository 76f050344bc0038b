"""``gan-postproc bench bigroc``: the BIGRoC paper's ablations, reproduced on the shipped digits GANs.

Ganz & Elad, BIGRoC (paper 000): Table 6 (robust vs non-robust guiding
classifier), Table 7 (number of steps), Appendix D.1 (L2 vs L-inf threat
model), Figure 4 (the eps trade-off: here FID, precision and recall against
eps, saved as a plot) and Section 3 / Appendix G (pseudo-label debiasing:
class-balance KL of the pseudo labels with and without it).

Every number is measured the way the demo and ``bench digits`` measure
(:func:`gan_postproc.bench.contexts.digits_evaluator`): with the shipped
*independent* feature network (another architecture, trained separately),
FID and precision/recall on its penultimate features against the 450
held-out test digits, and the class balance of its own predicted labels.
The guiding classifiers never measure. Results are mean and standard
deviation over the given seeds, each a fresh set of generated samples; BIGRoC
is a pure function of the images, so every configuration refines the same
generated images of a seed.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.files.writing import atomic_write, atomic_write_json
from gan_postproc.pipeline.batch import SampleBatch
from gan_postproc.pipeline.chain import Chain
from gan_postproc.plugins.bigroc import DEFAULTS

NAME = "bigroc"
HELP = "BIGRoC ablations on the shipped digits GANs: robust vs normal classifier, steps, L2 vs L-inf, eps curve (plot), debiasing"

#: Seed of every refiner's setup (the debias estimate draws its own stream of generated images).
SETUP_SEED = 1000
#: Images per refiner call.
CHUNK = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=2000, help="generated samples per seed and generator (default 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="sampling seeds (default 0 1)")
    parser.add_argument("--eps", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.5, 2.0], help="eps grid of the trade-off curve, [-1, 1] units")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3, 7, 20], help="step counts of the steps ablation")
    parser.add_argument("--out", type=Path, default=Path("runs/bigroc"), help="folder for the plot and the JSON result (default runs/bigroc)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; see ENV notes on small models)")
    parser.add_argument("--quick", action="store_true", help="500 samples, one seed, shorter grids (a smoke run, not for conclusions)")


class _Setting:
    """One row: a BIGRoC configuration (classifier name + options) on one generator."""

    def __init__(self, table: str, label: str, conditional: bool, classifier: str = "robust", **options: Any) -> None:
        self.table, self.label, self.conditional, self.classifier, self.options = table, label, conditional, classifier, options

    @property
    def key(self) -> tuple[Any, ...]:
        """Rows with equal keys are one configuration, refined and measured once."""
        return (self.conditional, self.classifier, tuple(sorted(self.options.items())))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gan_postproc.bench.contexts import digits_context, digits_evaluator
    from gan_postproc.metrics import balance_kl
    from gan_postproc.models.digits import DIGITS_IMAGE_SHAPE, DIGITS_NUM_CLASSES
    from gan_postproc.plugins.bigroc import BIGRoC

    torch.set_num_threads(args.threads)
    n, seeds = args.n, list(args.seeds)
    eps_grid, steps_grid = sorted(args.eps), sorted(args.steps)
    if args.quick:
        n, seeds, eps_grid, steps_grid = 500, seeds[:1], [0.5, 1.0], [1, 7]
    eps_pl, eps_gt = DEFAULTS.bigroc_digits_eps_pl, DEFAULTS.bigroc_digits_eps_gt
    started = time.perf_counter()

    context = digits_context()  # the digits suite's models, as `bench digits` and the demo use them
    unconditional, conditional = context.adapter, context.conditional_adapter
    classifiers = {"robust": context.models["robust_classifier"], "normal": context.models["classifier"]}
    measure = digits_evaluator()  # the suite's measurement: independent feature network vs the test split
    settings: list[_Setting] = []
    side = math.sqrt(float(math.prod(DIGITS_IMAGE_SHAPE)))  # an L-inf ball of radius r fits in the L2 ball of radius r * sqrt(d)
    for conditional_row, eps in ((False, eps_pl), (True, eps_gt)):
        kind = "GT" if conditional_row else "PL"
        settings.append(_Setting("main", f"BIGRoC_{kind}", conditional_row, eps=eps))
        for name in classifiers:
            for eps_c in sorted({eps_grid[0], eps, eps_grid[-1]}):
                settings.append(_Setting("classifier", f"{kind} {name}", conditional_row, name, eps=eps_c))
        for steps in steps_grid:
            settings.append(_Setting("steps", f"{kind} T={steps}", conditional_row, eps=eps, steps=steps))
        for eps_c in eps_grid:
            settings.append(_Setting("eps_curve", kind, conditional_row, eps=eps_c))
            if not conditional_row:
                settings.append(_Setting("eps_curve", "PL no debias", conditional_row, eps=eps_c, debias=False))
        for factor in (1.0, 2.0, 4.0):
            settings.append(_Setting("norm", f"{kind} linf", conditional_row, eps=factor * eps / side, norm="linf"))
        settings.append(_Setting("norm", f"{kind} l2", conditional_row, eps=eps, norm="l2"))
    for debias in (True, False):
        settings.append(_Setting("debias", f"PL debias {'on' if debias else 'off'}", False, eps=eps_pl, debias=debias))
    refiners = {}
    for setting in settings:
        if setting.key not in refiners:
            refiners[setting.key] = BIGRoC(classifiers[setting.classifier], **setting.options)
            refiners[setting.key].setup(conditional if setting.conditional else unconditional, SETUP_SEED)

    def evaluate(batch: SampleBatch, seed: int) -> dict[str, float]:
        measured = measure(batch, seed)
        return {key: float(measured[key]) for key in ("fid", "precision", "recall", "balance_kl")}

    measured: dict[tuple[Any, ...], list[dict[str, float]]] = {key: [] for key in refiners}
    baselines: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for seed in seeds:
        base = {flag: Chain(adapter, batch_size=CHUNK).sample(n, seed=seed) for flag, adapter in ((False, unconditional), (True, conditional))}
        for flag, batch in base.items():
            baselines[flag].append(evaluate(batch, seed))
        for key, refiner in refiners.items():
            flag = key[0]
            adapter = conditional if flag else unconditional
            start = time.perf_counter()
            refined = SampleBatch.cat([refiner.refine(base[flag].select(slice(i, i + CHUNK)), adapter) for i in range(0, n, CHUNK)])
            elapsed = time.perf_counter() - start
            result = evaluate(refined, seed)
            result["ms_per_image"] = 1000.0 * elapsed / n
            if not flag:
                result["pseudo_label_kl"] = balance_kl(refined.provenance["bigroc_target"], DIGITS_NUM_CLASSES)
            measured[key].append(result)

    def summary(rows: list[dict[str, float]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for key in rows[0]:
            out[f"{key}"], out[f"{key}_std"] = _mean_std([r[key] for r in rows])
        return out

    base_summary = {flag: summary(rows) for flag, rows in baselines.items()}
    tables: dict[str, list[dict[str, Any]]] = {}
    for flag in (False, True):
        tables.setdefault("main", []).append({"row": "baseline " + ("conditional" if flag else "unconditional"), **base_summary[flag]})
    for setting in settings:
        columns = {"classifier": setting.classifier, "eps": setting.options["eps"], "steps": setting.options.get("steps", DEFAULTS.bigroc_steps),
                   "norm": setting.options.get("norm", "l2"), "debias": setting.options.get("debias", True) if not setting.conditional else None}
        row = {"row": setting.label, **columns, **summary(measured[setting.key])}
        base_fid = base_summary[setting.conditional]["fid"]
        row["fid_change_pct"] = 100.0 * (row["fid"] - base_fid) / base_fid
        tables.setdefault(setting.table, []).append(row)

    what = "BIGRoC ablations (Ganz & Elad, Tables 6-7, Appendix D.1, Figure 4, Section 3 debiasing)"
    on = (f"shipped digits GANs (unconditional: BIGRoC_PL eps {eps_pl:g}; conditional: BIGRoC_GT eps {eps_gt:g}; L2, [-1, 1] units, "
          f"T={DEFAULTS.bigroc_steps}, step 1.5 eps/T unless varied); FID / precision / recall (k={DEFAULTS.metrics_nearest_k}) on the "
          "independent feature net's features vs the 450 held-out test digits (the digits suite's measurement); balance KL of "
          "that net's predicted labels; pseudo_label_kl of BIGRoC's own targets")
    print(describe_run(what, on, n, seeds))
    metric_columns = ["fid", "fid_std", "fid_change_pct", "precision", "recall", "balance_kl", "ms_per_image"]
    layouts = {
        "main": ["row", "eps", *metric_columns],
        "classifier": ["row", "classifier", "eps", *metric_columns],
        "steps": ["row", "steps", "eps", *metric_columns],
        "norm": ["row", "norm", "eps", *metric_columns],
        "eps_curve": ["row", "eps", *metric_columns, "pseudo_label_kl"],
        "debias": ["row", "debias", "eps", "fid", "fid_std", "precision", "recall", "pseudo_label_kl", "balance_kl"],
    }
    titles = {
        "main": "BIGRoC vs plain sampling (fid_change_pct < 0 is better)",
        "classifier": "Table 6: guiding classifier, robust (L2 adversarially trained) vs normal",
        "steps": "Table 7: number of steps T at fixed eps (step 1.5 eps / T)",
        "norm": "Appendix D.1: threat model, L2 vs L-inf (L-inf radii eps/8, eps/4, eps/2 of the L2 eps; d = 64)",
        "eps_curve": "Figure 4: the eps trade-off",
        "debias": "Section 3: pseudo-label debiasing (pseudo_label_kl: KL(pseudo-label histogram || uniform))",
    }
    for table, columns in layouts.items():
        print(f"\n{titles[table]}")
        print(format_table(tables[table], columns))
    for row in tables["main"][2:]:
        verdict = "meets" if row["fid_change_pct"] <= -20.0 else "does NOT meet"
        print(f"{row['row']}: FID {row['fid_change_pct']:+.1f}% vs plain sampling; {verdict} the issue's >= 20% improvement target")
    plot = _plot(args.out / "bigroc_eps_curve.png", tables["eps_curve"], base_summary)
    result = {
        "machine": machine_info("cpu"),
        "settings": {"n": n, "seeds": seeds, "eps_pl": eps_pl, "eps_gt": eps_gt, "eps_grid": eps_grid, "steps_grid": steps_grid},
        "tables": tables,
        "seconds": time.perf_counter() - started,
        "plot": None if plot is None else str(plot),
    }
    atomic_write_json(args.out / "bigroc_ablations.json", result)
    print(f"\nplot: {plot or 'not written (install the plots extra: matplotlib)'}; JSON: {args.out / 'bigroc_ablations.json'}; "
          f"{result['seconds']:.0f} s in all")
    return result


def _plot(path: Path, rows: list[dict[str, Any]], baselines: dict[bool, dict[str, float]]) -> Path | None:
    """FID, precision and recall against eps for BIGRoC_PL and BIGRoC_GT, baselines dashed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for axis, metric in zip(axes, ("fid", "precision", "recall")):
        for kind, flag, colour in (("PL", False, "tab:blue"), ("PL no debias", False, "tab:green"), ("GT", True, "tab:orange")):
            own = [r for r in rows if r["row"] == kind]
            eps = [r["eps"] for r in own]
            values = [r[metric] for r in own]
            errors = [r[f"{metric}_std"] for r in own]
            axis.errorbar(eps, values, yerr=errors, marker="o", color=colour, label=f"BIGRoC_{kind}")
            if kind != "PL no debias":
                axis.axhline(baselines[flag][metric], color=colour, linestyle="--", label=f"baseline ({'conditional' if flag else 'unconditional'})")
        axis.set_xlabel("eps (L2, [-1, 1] units)")
        axis.set_title(metric.upper() if metric == "fid" else metric)
    axes[0].legend(fontsize=7)
    figure.suptitle("BIGRoC on the digits GANs: the eps trade-off (independent feature network)")
    figure.tight_layout()
    atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=120))
    plt.close(figure)
    return path
