"""``gan-postproc bench realistic``: every method's cost on a network of the size users run.

The network is a StyleGAN2 at config-f widths (256x256, ``channel_base`` 32768,
``channel_max`` 512, z and w of 512; random weights: cost is what is
measured, not quality), built from the real NVlabs stylegan2-ada-pytorch
source when it is found (``--nvlabs-dir``; default
``../shared/third_party/stylegan2-ada-pytorch`` next to the repository, if
present; on a CPU its ``bias_act`` / ``upfirdn2d`` ops fall back to their
reference implementations) and wrapped in the ``stylegan2`` adapter, else
from :mod:`gan_postproc.models.stylegan2_sized` (plain torch, the same
widths) in a ``TorchAdapter``. ``--resolution`` and the width options make it
small enough for a CPU.

For each method: milliseconds per returned image (mean and spread over
``--repeats`` timed runs of ``--batches`` batches of ``--batch-size``, after a
warm-up run), next to the raw generator (``G(z)`` called directly, same batch
size) and next to the method's floor, the three taking turns within every
repeat so that the ratios are measured side by side. The floor is the
network passes the method cannot avoid, timed alone with the method's own
batch shape on the batches it returned
(a proposal sampler: its proposals through G and D, ``batch-size`` at a time;
a gradient method: its steps of forward and backward passes). Setup (burn-in,
calibration, K_eff) is timed once and reported apart. Peak memory of setup
and of sampling: on CUDA ``torch.cuda.max_memory_allocated`` above the
allocation before; on the CPU the peak resident set size sampled every 2 ms
by a thread (psutil), above the resident size before (so it counts the
process's whole growth, allocator caching included).

Inputs a method needs, chosen for cost, not quality: the discriminator's
output is declared a logit (StyleGAN2's logistic loss); the importance
network of latentRS / latentRS+GA is untrained (its weights are 1
everywhere, so latentRS accepts with probability 1/m = 1/3, the acceptance a
trained network has on average: the cost is that of a trained one); MH-GAN's
"real" samples are uniform noise images (its isotonic calibration and chain
starts need some); BIGRoC is left out (no classifier of this network).
Mixed precision: no method but BIGRoC (``autocast=True``) offers it; this
benchmark runs everything in float32.

The latent-reweighting paper's Table 2 (V100, StyleGAN2 LSUN Church 256)
reports bare 11.7, latentRS 16.2, latentRS+GA 43.2, SIR 130 and DOT 196.7 ms
per image; its ratios to the bare generator are printed beside ours.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gan_postproc import rng
from gan_postproc.bench.report import describe_run, format_table, machine_info
from gan_postproc.bench.setups import BenchmarkSetup, generator_floor
from gan_postproc.cli.bench_command import standard_json
from gan_postproc.defaults import DEFAULTS
from gan_postproc.errors import InputError
from gan_postproc.files.writing import atomic_write_json
from gan_postproc.models.stylegan2_sized import StyleGAN2SizedDiscriminator, StyleGAN2SizedGenerator
from gan_postproc.pipeline.adapter import Adapter
from gan_postproc.pipeline.chain import Chain
from gan_postproc.pipeline.sampler import PriorSampler
from gan_postproc.pipeline.torch_adapter import TorchAdapter
from gan_postproc.plugins.collaborative import DEFAULTS as COLLABORATIVE
from gan_postproc.plugins.collaborative import CollaborativeRefiner
from gan_postproc.plugins.collaborative import refinement_floor as collaborative_floor
from gan_postproc.plugins.ddls import DDLS, langevin_floor
from gan_postproc.plugins.density_ratio import DEFAULTS as DENSITY_RATIO
from gan_postproc.plugins.density_ratio import DiscriminatorRejectionSampler, MetropolisHastingsSampler, SamplingImportanceResampling
from gan_postproc.plugins.density_ratio.ratio import network_floor
from gan_postproc.plugins.dot import DEFAULTS as DOT_DEFAULTS
from gan_postproc.plugins.dot import DOT, transport_floor
from gan_postproc.plugins.latent_reweighting import DEFAULTS as LATENT_REWEIGHTING
from gan_postproc.plugins.latent_reweighting import ImportanceNetwork, LatentRS, LatentRSGA
from gan_postproc.plugins.latent_reweighting.importance_network import network_inputs, resolve_layer
from gan_postproc.plugins.truncation import TruncationSampler

NAME = "realistic"
HELP = "ms per image and peak memory of every method on a StyleGAN2-sized network (NVlabs source if given), beside the raw generator and each method's floor"

#: ms per image in the latent-reweighting paper's Table 2 (V100, StyleGAN2 LSUN Church 256x256), by our row name.
PAPER_TABLE_2 = {"raw generator": 11.7, "latent_rs": 16.2, "latent_rs_ga": 43.2, "sir": 130.0, "dot_latent": 196.7}
DEFAULT_NVLABS = Path(__file__).resolve().parents[1].parent / "shared" / "third_party" / "stylegan2-ada-pytorch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nvlabs-dir", default=None, help=f"stylegan2-ada-pytorch source to build the networks from (default: {DEFAULT_NVLABS} if present)")
    parser.add_argument("--plain", action="store_true", help="use the plain-torch StyleGAN2-sized networks even if the NVlabs source is present")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--channel-base", type=int, default=32768)
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--z-dim", type=int, default=512, help="z and w size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=2, help="batches per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--only", nargs="+", default=None, metavar="ROW")
    parser.add_argument("--drs-burn-in", type=int, default=DENSITY_RATIO.drs_burn_in)
    parser.add_argument("--mh-chain-length", type=int, default=DENSITY_RATIO.mh_chain_length)
    parser.add_argument("--sir-pool-size", type=int, default=DENSITY_RATIO.sir_pool_size)
    parser.add_argument("--ddls-steps", type=int, default=100, help="Langevin steps (the reference: 1000; fewer keep the run short)")
    parser.add_argument("--dot-steps", type=int, default=DOT_DEFAULTS.dot_steps)
    parser.add_argument("--collaborative-steps", type=int, default=COLLABORATIVE.collaborative_steps)
    parser.add_argument("--output", default="realistic.json", help="JSON results file (default: realistic.json)")


# --- the networks ---------------------------------------------------------------------------------------------


def _nvlabs_dir(args: argparse.Namespace) -> Path | None:
    if args.plain:
        return None
    if args.nvlabs_dir is not None:
        path = Path(args.nvlabs_dir)
        if not (path / "training" / "networks.py").is_file():
            raise InputError(f"--nvlabs-dir {path} holds no training/networks.py; point it at a stylegan2-ada-pytorch checkout")
        return path
    return DEFAULT_NVLABS if (DEFAULT_NVLABS / "training" / "networks.py").is_file() else None


def build_networks(args: argparse.Namespace, device: torch.device) -> tuple[Adapter, Callable[[torch.Tensor], torch.Tensor], str]:
    """The adapter, the raw generator call ``z -> images`` and a description of the networks."""
    widths = {"channel_base": args.channel_base, "channel_max": args.channel_max}
    source = _nvlabs_dir(args)
    if source is not None:
        sys.path.insert(0, str(source))  # its packages (training, torch_utils, dnnlib) import each other by these names
        try:
            from training.networks import Discriminator, Generator  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(source))
        from gan_postproc.integrations.stylegan2.nvlabs import StyleGAN2Adapter

        torch.manual_seed(0)
        G = Generator(z_dim=args.z_dim, c_dim=0, w_dim=args.z_dim, img_resolution=args.resolution, img_channels=3, synthesis_kwargs=widths)
        D = Discriminator(c_dim=0, img_resolution=args.resolution, img_channels=3, **widths)
        adapter: Adapter = StyleGAN2Adapter(G.eval(), discriminator=D.eval()).to(device)
        return adapter, lambda z: G(z, None, noise_mode="const"), f"NVlabs stylegan2-ada-pytorch networks ({source}), random weights"
    torch.manual_seed(0)
    G = StyleGAN2SizedGenerator(args.resolution, z_dim=args.z_dim, w_dim=args.z_dim, **widths)
    D = StyleGAN2SizedDiscriminator(args.resolution, **widths)
    adapter = TorchAdapter(G.eval(), latent_shape=args.z_dim, discriminator=D.eval(), discriminator_output="logit").to(device)
    return adapter, G, "gan_postproc.models.stylegan2_sized (plain torch, StyleGAN2 widths), random weights"


def _noise_images(shape: tuple[int, ...]) -> Callable[[int, int], torch.Tensor]:
    """Stand-in "real" data: uniform noise images in [-1, 1], keyed by seed."""
    return lambda n, seed: 2 * rng.uniform(seed, torch.arange(n), shape, "noise_images") - 1


def _rows(args: argparse.Namespace, adapter: Adapter, sample_shape: tuple[int, ...]) -> list[BenchmarkSetup]:
    layer = resolve_layer(adapter, None)
    probe = adapter.prior.sample(0, torch.zeros(1, dtype=torch.int64), "probe", device=adapter.device)
    with torch.no_grad():
        width = network_inputs(adapter, probe, layer).shape[1]
    importance = ImportanceNetwork(width, layer=layer)  # untrained: w = 1 everywhere, acceptance 1/m (see the module docs)
    drs = DiscriminatorRejectionSampler(burn_in=args.drs_burn_in)
    sir = SamplingImportanceResampling(pool_size=args.sir_pool_size)
    mh = MetropolisHastingsSampler(real_data=_noise_images(sample_shape), chain_length=args.mh_chain_length, calibration=None)
    ddls = DDLS(steps=args.ddls_steps, decay_steps=max(1, args.ddls_steps // 5))
    dot = DOT(space="latent", steps=args.dot_steps)
    collaborative = CollaborativeRefiner(steps=args.collaborative_steps, selection="best")
    truncation = TruncationSampler(0.7) if adapter.native_truncation else TruncationSampler()
    generator = generator_floor(adapter)
    return [
        BenchmarkSetup("prior", PriorSampler(), floor=generator, note="the bare chain"),
        BenchmarkSetup("truncation", truncation, floor=generator, note="native w truncation psi 0.7" if adapter.native_truncation else "prior truncation"),
        BenchmarkSetup("drs", drs, floor=network_floor(adapter, drs.ratio), note=f"burn-in {args.drs_burn_in}"),
        BenchmarkSetup("mh", mh, floor=network_floor(adapter, mh.ratio), note=f"K={args.mh_chain_length}, chains start at noise 'real' images, no isotonic fit"),
        BenchmarkSetup("sir", sir, floor=network_floor(adapter, sir.ratio), note=f"pool {args.sir_pool_size}"),
        BenchmarkSetup("latent_rs", LatentRS(importance), floor=generator, note=f"untrained w on {layer!r}, m = {importance.max_weight:g}"),
        BenchmarkSetup("latent_rs_ga", LatentRSGA(importance), floor=generator, note=f"untrained w, {LATENT_REWEIGHTING.latent_ga_steps} ascent steps"),
        BenchmarkSetup("ddls", ddls, floor=langevin_floor(ddls, adapter), note=f"{args.ddls_steps} Langevin steps"),
        BenchmarkSetup("dot_latent", refiners=[dot], floor=transport_floor(dot, adapter), note=f"latent space, {args.dot_steps} Adam steps"),
        BenchmarkSetup("collaborative", refiners=[collaborative], floor=collaborative_floor(collaborative, adapter),
                       note=f"layer {collaborative.layer!r}, K={args.collaborative_steps}, keep the best"),
    ]


# --- measuring ------------------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory of a ``with`` block above the start, in MiB (see the module docs for what is counted)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        process = psutil.Process()
        self._start = process.memory_info().rss
        self._peak = self._start
        self._stop = threading.Event()

        def poll() -> None:
            while not self._stop.wait(0.002):
                self._peak = max(self._peak, process.memory_info().rss)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
            return
        self._stop.set()
        self._thread.join()
        import psutil

        self._peak = max(self._peak, psutil.Process().memory_info().rss)
        self.mib = (self._peak - self._start) / 2**20


def _interleaved(fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int) -> dict[str, list[float]]:
    """Seconds of ``repeats`` runs of each function after one warm-up run of each, taking turns in every
    repeat (so a change in the machine's load hits them alike: the ratios are measured side by side)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _ms(times: list[float], images: int) -> dict[str, float]:
    per_image = [1000 * t / images for t in times]
    return {"mean": statistics.fmean(per_image), "std": statistics.pstdev(per_image), "best": min(per_image)}


def _measure(row: BenchmarkSetup, adapter: Adapter, raw: Callable[[], None], args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    chain = Chain(adapter, row.sampler, row.refiners, batch_size=args.batch_size)
    n = args.batch_size * args.batches
    with PeakMemory(device) as setup_memory:
        start = time.perf_counter()
        chain.setup(DEFAULTS.seed)
        setup_s = time.perf_counter() - start
    with PeakMemory(device) as sample_memory:
        batch = chain.sample(n, seed=1)
    report = chain.report
    parts = [batch.select(slice(begin, begin + args.batch_size)) for begin in range(0, n, args.batch_size)]
    times = _interleaved({
        "raw": raw,
        "method": lambda: chain.sample(n, seed=1),
        "floor": lambda: [row.floor(part, report) for part in parts],  # type: ignore[misc]
    }, device, args.repeats)
    method, floor, raw_ms = _ms(times["method"], n), _ms(times["floor"], n), _ms(times["raw"], n)
    return {
        "ms_per_image": method,
        "floor_ms_per_image": floor,
        "raw_generator_ms_per_image": raw_ms,
        "x_raw_generator": method["mean"] / raw_ms["mean"],
        "x_floor": method["mean"] / floor["mean"],
        "setup_s": setup_s,
        "setup_peak_mib": setup_memory.mib,
        "sampling_peak_mib": sample_memory.mib,
        "acceptance_rate": report.sampler.get("acceptance_rate"),
        "note": row.note,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    adapter, raw_generator, networks = build_networks(args, device)
    n = args.batch_size * args.batches
    size = f"{args.resolution}x{args.resolution}, channel_base {args.channel_base}, channel_max {args.channel_max}, z/w {args.z_dim}"
    print(describe_run(f"ms per image (mean +- std over {args.repeats} runs of {args.batches} batches of {args.batch_size}, after a "
                       "warm-up) and peak memory of every method, beside the raw generator and each method's floor",
                       f"{networks}; {size}", n, [1], device))
    latents = [adapter.prior.sample(1, torch.arange(b, b + args.batch_size), "raw", device=device) for b in range(0, n, args.batch_size)]

    def raw() -> None:
        with torch.no_grad():
            for z in latents:
                raw_generator(z)

    with PeakMemory(device) as raw_memory:
        raw_ms = _ms(_interleaved({"raw": raw}, device, args.repeats)["raw"], n)
    sample_shape = tuple(adapter.generate(latents[0][:1]).shape[1:])
    rows: dict[str, dict[str, Any]] = {"raw generator": {"ms_per_image": raw_ms, "sampling_peak_mib": raw_memory.mib, "note": "G(z), no chain"}}
    for row in _rows(args, adapter, sample_shape):
        if args.only is not None and row.name not in args.only:
            continue
        try:
            rows[row.name] = _measure(row, adapter, raw, args, device)
        except Exception as error:  # report, do not hide
            rows[row.name] = {"error": f"{type(error).__name__}: {error}"}
    table = []
    for name, values in rows.items():
        paper = PAPER_TABLE_2.get(name)
        table.append({
            "method": name,
            "ms/img": values.get("ms_per_image", {}).get("mean"),
            "+-": values.get("ms_per_image", {}).get("std"),
            "x raw G": values.get("x_raw_generator", 1.0 if name == "raw generator" else None),
            "floor ms/img": values.get("floor_ms_per_image", {}).get("mean"),
            "x floor": values.get("x_floor"),
            "paper x bare": None if paper is None else paper / PAPER_TABLE_2["raw generator"],
            "setup s": values.get("setup_s"),
            "setup MiB": values.get("setup_peak_mib"),
            "sample MiB": values.get("sampling_peak_mib"),
            "error": values.get("error"),
        })
    columns = ["method", "ms/img", "+-", "x raw G", "floor ms/img", "x floor", "paper x bare", "setup s", "setup MiB", "sample MiB", "error"]
    print(format_table(table, columns))
    memory = "torch.cuda.max_memory_allocated above the start" if device.type == "cuda" else "peak RSS above the start, sampled every 2 ms (psutil)"
    print(f"peak memory: {memory}; paper x bare: the latent-reweighting paper's Table 2 (V100) ms per image over its bare generator's")
    result = {
        "machine": machine_info(device),
        "networks": networks,
        "settings": {key: value for key, value in vars(args).items() if key != "output"},
        "samples_per_run": n,
        "memory_measure": memory,
        "paper_table_2_ms_per_image": PAPER_TABLE_2,
        "rows": rows,
    }
    if args.output:
        atomic_write_json(Path(args.output), standard_json(result))
        print(f"wrote {args.output}")
    return result

