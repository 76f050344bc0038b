"""``gan-postproc bench dg_digits``: discriminator guidance and DiffRS on the shipped digits diffusion model.

Rows, all from the same shipped model (``DDPMPipeline``, UNet2DModel +
DDPMScheduler) with the same number of DDPM steps (the shipped
discriminator's, ``DIGITS_INFERENCE_STEPS``):

* ``bare``: the plain pipeline;
* ``dg_w{w}``: :class:`~gan_postproc.integrations.diffusers.guidance.DGPipeline`
  with the shipped discriminator at guidance weight w (Kim et al., ICML 2023);
  for a seed it draws exactly the noise the bare row draws (the wrapper uses
  no random numbers), so the rows differ only by the guidance;
* ``diffrs``: :class:`~gan_postproc.integrations.diffusers.guidance.DiffusersDiffRS`
  with the same discriminator (Na et al., ICML 2024; thresholds from a
  warm-up of the base sampler on its own seed), with its acceptance statistics;
* ``bare+bigroc`` and ``dg_w{w}+bigroc``: BIGRoC (Ganz & Elad; the shipped
  robust digits classifier, debiased pseudo labels, the digits eps) applied
  to the bare and the guided samples of the seed.

Measured like every digits benchmark
(:func:`gan_postproc.bench.contexts.digits_evaluator`): FID, precision and
recall on the *independent* digits feature network's features against the 450
held-out test digits; the discriminator and the guiding classifiers were
trained on the train split only and never measure. Mean and sample standard
deviation over the seeds; the FID change is the mean of the per-seed changes
against the bare row of the same seed. Cost: wall time of sampling (and
refining) per sample, CPU, the given thread count, measured apart from the
scored passes: one untimed warm-up pass per row, then ``--timing-repeats``
timed passes of ``--timing-n`` samples per row, interleaved across rows in
rotating order (so slow drifts of a shared machine hit every row alike), the
median per row, relative to the bare row's. One-off setup (DiffRS warm-up,
BIGRoC's debias estimate) is reported apart.

The table of docs/discriminator_guidance.md is generated from the JSON this writes (``--markdown``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch

NAME = "dg_digits"
HELP = "discriminator guidance (several weights), DiffRS and DG + BIGRoC on the shipped digits diffusion model (needs [diffusers])"

#: Where the committed results live (the README table is rendered from it).
RESULTS = Path(__file__).resolve().parent / "results" / "dg_digits.json"
#: Seeds of the one-off setups (never a scoring seed).
DIFFRS_WARMUP_SEED = 9_000
BIGROC_SETUP_SEED = 1_000
#: Seeds of the timed passes (never scored).
TIMING_SEED = 1_000_000


def _time_rows(pipeline: Any, guided: dict[float, Any], diffrs: Any, refined: Any, steps: int, n: int, repeats: int,
               bigroc_weight: float) -> dict[str, list[float]]:
    """ms per sample of every row: a warm-up pass, then ``repeats`` rounds of one timed pass per row in rotating order."""
    from gan_postproc.integrations.diffusers.guidance import sample_pipeline

    def sampled(pipe: Any, seed: int) -> torch.Tensor:
        return sample_pipeline(pipe, n, seed=seed, batch_size=n, num_inference_steps=steps)

    passes: dict[str, Any] = {"bare": lambda seed: sampled(pipeline, seed),
                              "bare+bigroc": lambda seed: refined(sampled(pipeline, seed), seed)}
    for w, pipe in guided.items():
        passes[f"dg_w{w:g}"] = lambda seed, pipe=pipe: sampled(pipe, seed)
    passes[f"dg_w{bigroc_weight:g}+bigroc"] = lambda seed: refined(sampled(guided[bigroc_weight], seed), seed)
    passes["diffrs"] = lambda seed: diffrs.sample(n, seed=seed, batch_size=n)
    names = list(passes)
    timed: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(-1, repeats):  # -1: the untimed warm-up round
        start = max(repeat, 0) % len(names)
        for name in names[start:] + names[:start]:
            began = time.perf_counter()
            passes[name](TIMING_SEED + max(repeat, 0))
            if repeat >= 0:
                timed[name].append(1000.0 * (time.perf_counter() - began) / n)
    return timed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="samples per row and seed (default 1000)")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds, 0 .. N-1 (default 5)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0], help="DG guidance weights (default 0.5 1 2 4)")
    parser.add_argument("--bigroc-weight", type=float, default=_default_weight(),
                        help="the DG weight whose samples BIGRoC refines (default: the family's default weight, %(default)s: the theory's w = 1)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON results file (default: print only; the committed one is {RESULTS.name})")
    parser.add_argument("--markdown", action="store_true", help="print the docs table rendered from --out (or the committed results) and exit")
    parser.add_argument("--timing-n", type=int, default=200, help="samples per timed pass (default 200)")
    parser.add_argument("--timing-repeats", type=int, default=5, help="timed passes per row, interleaved in rotating order (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="200 samples, 2 seeds (a smoke run, not for conclusions)")


def _default_weight() -> float:
    from gan_postproc.plugins.discriminator_guidance import DEFAULTS

    return DEFAULTS.guidance_weight


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def render_markdown(results: dict[str, Any]) -> str:
    """The README table of a results file: one line per row."""
    settings = results["settings"]
    lines = [
        "| row | FID | change vs bare | precision | recall | cost per sample | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    def order(name: str) -> tuple[int, float, str]:
        """bare, the DG weights in increasing order, DiffRS, then the BIGRoC rows."""
        if name == "bare":
            return (0, 0.0, name)
        if name.endswith("+bigroc"):
            return (3, 0.0, name)
        if name.startswith("dg_w"):
            return (1, float(name[4:]), name)
        return (2, 0.0, name)

    for name in sorted(results["rows"], key=order):
        row = results["rows"][name]
        change = "" if name == "bare" else f"{row['fid_change_pct_mean']:+.1f}% ± {row['fid_change_pct_std']:.1f}"
        notes = row.get("note", "")
        lines.append(
            f"| `{name}` | {row['fid_mean']:.2f} ± {row['fid_std']:.2f} | {change} | {row['precision_mean']:.3f} | "
            f"{row['recall_mean']:.3f} | {row['cost_ratio']:.2f} | {notes} |"
        )
    lines.append("")
    lines.append(
        f"{settings['n']} samples per row and seed, seeds {settings['seeds']}, {settings['num_inference_steps']} DDPM steps; "
        f"FID / precision / recall with the independent digits feature network vs the {settings['reference']}; "
        f"cost = sampling time per sample relative to `bare`, median of {settings['timing']['repeats']} interleaved timed passes of "
        f"{settings['timing']['n']} samples per row ({results['machine']['device']}, "
        f"{results['machine']['torch_threads']} thread(s); bare: {results['rows']['bare']['ms_per_sample']:.2f} ms per sample); "
        f"{results['seconds']:.0f} s in all."
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.markdown:
        results = json.loads((args.out or RESULTS).read_text(encoding="utf-8"))
        print(render_markdown(results))
        return results
    from gan_postproc.bench.contexts import digits_evaluator
    from gan_postproc.bench.report import describe_run, format_table, machine_info
    from gan_postproc.defaults import DEFAULTS as CORE_DEFAULTS
    from gan_postproc.files.writing import atomic_write_json
    from gan_postproc.integrations.diffusers.guidance import (
        DIGITS_INFERENCE_STEPS,
        DGPipeline,
        DiffusersDiffRS,
        load_digits_dg_discriminator,
        load_digits_diffusion_pipeline,
        sample_pipeline,
    )
    from gan_postproc.models.digits import digits_classifier
    from gan_postproc.pipeline.batch import SampleBatch
    from gan_postproc.pipeline.chain import Chain
    from gan_postproc.plugins.bigroc.refiner import BIGRoC

    torch.set_num_threads(args.threads)
    n, seeds = (200, list(range(2))) if args.quick else (args.n, list(range(args.seeds)))
    weights = sorted(set(args.weights))
    if args.bigroc_weight not in weights:
        weights = sorted({*weights, args.bigroc_weight})
    steps = DIGITS_INFERENCE_STEPS
    started = time.perf_counter()
    print(describe_run("FID / precision / recall with the independent digits feature network vs the test split; "
                       "sampling cost per sample relative to the bare pipeline",
                       f"the shipped digits diffusion model (DDPMPipeline, {steps} steps) and its DG discriminator", n, seeds, "cpu"))
    pipeline = load_digits_diffusion_pipeline()
    discriminator = load_digits_dg_discriminator()
    evaluate = digits_evaluator()
    setup_seconds: dict[str, float] = {}
    t = time.perf_counter()
    diffrs = DiffusersDiffRS(pipeline, discriminator, num_inference_steps=steps)
    thresholds = diffrs.fit_thresholds(seed=DIFFRS_WARMUP_SEED)
    setup_seconds["diffrs"] = time.perf_counter() - t
    robust = digits_classifier(robust=True)
    bigroc = BIGRoC(robust, eps=CORE_DEFAULTS.bigroc_digits_eps_pl)
    t = time.perf_counter()
    bigroc.fit_debias(sample_pipeline(pipeline, CORE_DEFAULTS.bigroc_debias_samples_quick, seed=BIGROC_SETUP_SEED, num_inference_steps=steps))
    setup_seconds["bigroc"] = time.perf_counter() - t
    refine = Chain(None, refiners=[bigroc])
    refine.setup(BIGROC_SETUP_SEED)
    guided = {w: DGPipeline(pipeline, discriminator, weight=w) for w in weights}

    per_row: dict[str, dict[str, list[Any]]] = {}

    def record(name: str, images: torch.Tensor, seconds: float, seed: int, extra: dict[str, Any] | None = None) -> None:
        measured = evaluate(SampleBatch(images=images), seed)
        entry = per_row.setdefault(name, {"fid": [], "precision": [], "recall": [], "ms": [], "extra": []})
        for key in ("fid", "precision", "recall"):
            entry[key].append(float(measured[key]))
        entry["ms"].append(1000.0 * seconds / len(images))
        entry["extra"].append(extra or {})

    def refined(images: torch.Tensor, seed: int) -> tuple[torch.Tensor, float]:
        t0 = time.perf_counter()
        batch = refine.refine(SampleBatch(images=images, indices=torch.arange(len(images)) + seed * len(images)))
        return batch.images.detach().cpu(), time.perf_counter() - t0

    for seed in seeds:
        t0 = time.perf_counter()
        bare = sample_pipeline(pipeline, n, seed=seed, batch_size=n, num_inference_steps=steps)
        bare_seconds = time.perf_counter() - t0
        record("bare", bare, bare_seconds, seed)
        images, seconds = refined(bare, seed)
        record("bare+bigroc", images, bare_seconds + seconds, seed)
        for w in weights:
            t0 = time.perf_counter()
            dg = sample_pipeline(guided[w], n, seed=seed, batch_size=n, num_inference_steps=steps)
            dg_seconds = time.perf_counter() - t0
            record(f"dg_w{w:g}", dg, dg_seconds, seed)
            if w == args.bigroc_weight:
                images, seconds = refined(dg, seed)
                record(f"dg_w{w:g}+bigroc", images, dg_seconds + seconds, seed)
        t0 = time.perf_counter()
        images, stats = diffrs.sample(n, seed=seed, batch_size=n)
        record("diffrs", images, time.perf_counter() - t0, seed, stats.as_dict())
        print(f"seed {seed}: " + ", ".join(f"{name} FID {entry['fid'][-1]:.2f}" for name, entry in per_row.items()))

    timed = _time_rows(pipeline, guided, diffrs, refined, steps, args.timing_n, args.timing_repeats, args.bigroc_weight)
    base_ms = statistics.median(timed["bare"])
    rows: dict[str, Any] = {}
    order = ["bare", *[f"dg_w{w:g}" for w in weights], "diffrs", "bare+bigroc", f"dg_w{args.bigroc_weight:g}+bigroc"]
    notes = {"bare": "plain DDPMPipeline", "diffrs": "", "bare+bigroc": f"BIGRoC_PL eps {CORE_DEFAULTS.bigroc_digits_eps_pl:g} after sampling",
             f"dg_w{args.bigroc_weight:g}+bigroc": f"DG w={args.bigroc_weight:g}, then BIGRoC_PL eps {CORE_DEFAULTS.bigroc_digits_eps_pl:g}"}
    for name in order:
        entry = per_row[name]
        row: dict[str, Any] = {}
        for key in ("fid", "precision", "recall"):
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std(entry[key])
            row[f"{key}_per_seed"] = entry[key]
        changes = [100.0 * (f / b - 1.0) for f, b in zip(entry["fid"], per_row["bare"]["fid"])]
        row["fid_change_pct_mean"], row["fid_change_pct_std"] = _mean_std(changes)
        row["ms_per_sample"] = statistics.median(timed[name])
        row["ms_per_sample_timed_passes"] = timed[name]
        row["ms_per_sample_scored_passes"] = entry["ms"]
        row["cost_ratio"] = row["ms_per_sample"] / base_ms
        row["note"] = notes.get(name, f"DG weight {name[4:]}")
        if name == "diffrs":
            acceptance = [e["acceptance_rate"] for e in entry["extra"]]
            calls = [e["denoiser_calls_mean"] for e in entry["extra"]]
            row["statistics_per_seed"] = entry["extra"]
            row["thresholds"] = thresholds
            row["note"] = (f"gamma {thresholds['percentile']:g}; step acceptance {sum(acceptance) / len(acceptance):.2f}; "
                           f"{sum(calls) / len(calls):.1f} denoiser calls per sample (bare: {steps})")
        rows[name] = row
    results = {
        "benchmark": NAME,
        "settings": {"n": n, "seeds": seeds, "num_inference_steps": steps, "weights": weights, "bigroc_weight": args.bigroc_weight,
                     "bigroc_eps": CORE_DEFAULTS.bigroc_digits_eps_pl, "time_range": list(guided[weights[0]].guide.time_range),
                     "reference": "450 held-out test digits", "diffrs_warmup_seed": DIFFRS_WARMUP_SEED,
                     "timing": {"n": args.timing_n, "repeats": args.timing_repeats, "seeds_from": TIMING_SEED}},
        "setup_seconds": setup_seconds,
        "rows": rows,
        "machine": machine_info("cpu"),
        "seconds": time.perf_counter() - started,
    }
    table = [{"row": name, "fid": r["fid_mean"], "fid_std": r["fid_std"], "change_%": r["fid_change_pct_mean"], "precision": r["precision_mean"],
              "recall": r["recall_mean"], "cost": r["cost_ratio"]} for name, r in rows.items()]
    print(format_table(table, ["row", "fid", "fid_std", "change_%", "precision", "recall", "cost"]))
    if args.out is not None:
        atomic_write_json(args.out, results)
        print(f"wrote {args.out}")
    if not all(math.isfinite(r["fid_mean"]) for r in rows.values()):
        print("warning: a FID is not finite")
    return results


def demo_rows(n: int, seed: int, out: str | None) -> None:
    """``gan-postproc demo``'s DG rows (at most ``demo_diffusion_samples`` samples each), when diffusers is installed
    (else it says how to get it); written to ``OUT/dg_results.json`` with ``--out``."""
    import importlib.util

    from gan_postproc.files.writing import atomic_write_json
    from gan_postproc.plugins.discriminator_guidance import DEFAULTS

    if importlib.util.find_spec("diffusers") is None:
        print("\ndiscriminator guidance (DG) rows skipped: they need diffusers, pip install 'gan-postproc[diffusers]'")
        return
    rows = run_demo(min(n, DEFAULTS.demo_diffusion_samples), seed)
    if out is not None:
        atomic_write_json(f"{out}/dg_results.json", rows)


def run_demo(n: int, seed: int) -> dict[str, Any]:
    """The demo's DG rows: the shipped digits diffusion model bare and with DG at the default weight, one seed.

    Returns ``{row: {"fid", "precision", "recall", "ms_per_sample", "cost_ratio"}}`` (printed as a table too).
    """
    from gan_postproc.bench.contexts import digits_evaluator
    from gan_postproc.bench.report import format_table
    from gan_postproc.integrations.diffusers.guidance import (
        DIGITS_INFERENCE_STEPS,
        DGPipeline,
        load_digits_dg_discriminator,
        load_digits_diffusion_pipeline,
        sample_pipeline,
    )
    from gan_postproc.pipeline.batch import SampleBatch
    from gan_postproc.plugins.discriminator_guidance import DEFAULTS

    pipeline = load_digits_diffusion_pipeline()
    evaluate = digits_evaluator()
    rows: dict[str, Any] = {}
    for name, pipe in (("diffusion (bare)", pipeline), (f"dg (w={DEFAULTS.guidance_weight:g})", DGPipeline(pipeline, load_digits_dg_discriminator()))):
        started = time.perf_counter()
        images = sample_pipeline(pipe, n, seed=seed, batch_size=n, num_inference_steps=DIGITS_INFERENCE_STEPS)
        seconds = time.perf_counter() - started
        measured = evaluate(SampleBatch(images=images), seed)
        rows[name] = {key: float(measured[key]) for key in ("fid", "precision", "recall")}
        rows[name]["ms_per_sample"] = 1000.0 * seconds / n
    base = next(iter(rows.values()))["ms_per_sample"]
    for row in rows.values():
        row["cost_ratio"] = row["ms_per_sample"] / base
    print(f"\ndiscriminator guidance on the shipped digits diffusion model ({DIGITS_INFERENCE_STEPS} DDPM steps, {n} samples, seed {seed}; "
          "more rows and 5 seeds: gan-postproc bench dg_digits)")
    print(format_table([{"method": name, **row} for name, row in rows.items()], ["method", "fid", "precision", "recall", "ms_per_sample", "cost_ratio"]))
    return rows
