"""Composition: a latent sampler followed by any number of refiners."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..defaults import DEFAULTS
from ..errors import GanPostprocError, HookError, InputError, InputTypeError, PluginError
from ..plugin_system.manager import PluginManager, get_plugin_manager
from ..validation import ValueRange, check_count, check_labels, check_seed
from .adapter import Adapter
from .batch import SampleBatch, check_batch
from .batching import using_batch_size
from .numerics import finite_rows
from .refiner import Refiner
from .sampler import LatentSampler, PriorSampler, SampleRequest

__all__ = ["Chain", "RunReport"]


@dataclass
class RunReport:
    """What a run did and how long each stage took.

    Attributes:
        n: samples returned.
        seed: the run's seed.
        batches: batches run.
        seconds: wall time per stage (``"sampler:NAME"``, ``"generate"``,
            ``"refiner:NAME"``, ``"hooks"``), summed over batches.
        redrawn: samples re-drawn because a filter hook rejected them.
        sampler: the sampler's :class:`~gan_postproc.pipeline.sampler.SamplerStats` as a dict.
    """

    n: int = 0
    seed: int = 0
    batches: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    redrawn: int = 0
    sampler: dict[str, Any] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        """Wall time of all stages together."""
        return sum(self.seconds.values())

    @property
    def ms_per_sample(self) -> float:
        """Milliseconds per returned sample over all stages."""
        return 1000.0 * self.total_seconds / self.n if self.n else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "n": self.n,
            "seed": self.seed,
            "batches": self.batches,
            "seconds": dict(self.seconds),
            "ms_per_sample": self.ms_per_sample,
            "redrawn": self.redrawn,
            "sampler": dict(self.sampler),
        }


class _Timer:
    """Adds the wall time of a ``with`` block to ``report.seconds[stage]``."""

    def __init__(self, report: RunReport, stage: str, device: torch.device) -> None:
        self.report, self.stage, self.device = report, stage, device

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.report.seconds[self.stage] = self.report.seconds.get(self.stage, 0.0) + time.perf_counter() - self.start


class Chain:
    """A sampler and refiners bound to one generator adapter.

    Args:
        adapter: the generator (and its discriminator / classifier); ``None``
            for a chain that only refines existing images (:meth:`refine`).
        sampler: decides latents and labels; default :class:`PriorSampler`.
        refiners: applied in order to every batch.
        batch_size: samples per batch.
        plugin_manager: whose run hooks to call (default: the global one).
        filter_max_attempts: how often samples vetoed by
            ``gan_postproc_filter_batch`` are re-drawn before giving up.

    Example::

        chain = Chain(TorchAdapter(G, discriminator=D, discriminator_output="logit"),
                      sampler=registry.create("sampler", "drs"),
                      refiners=[BIGRoC(classifier=robust, eps=0.5)])
        batch = chain.sample(1000, seed=0)   # batch.images: [1000, C, H, W] in [-1, 1]
    """

    def __init__(
        self,
        adapter: Adapter | None,
        sampler: LatentSampler | None = None,
        refiners: Sequence[Refiner] = (),
        *,
        batch_size: int = DEFAULTS.batch_size,
        plugin_manager: PluginManager | None = None,
        filter_max_attempts: int = DEFAULTS.filter_max_attempts,
    ) -> None:
        if adapter is not None and not isinstance(adapter, Adapter):
            raise InputTypeError(f"adapter must be a gan_postproc.Adapter, got {type(adapter).__name__}; wrap a module with TorchAdapter(G)")
        sampler = sampler if sampler is not None else PriorSampler()
        if not isinstance(sampler, LatentSampler):
            raise InputTypeError(f"sampler must be a gan_postproc.LatentSampler, got {type(sampler).__name__}")
        refiners = list(refiners)
        for position, refiner in enumerate(refiners):
            if not isinstance(refiner, Refiner):
                raise InputTypeError(f"refiners[{position}] must be a gan_postproc.Refiner, got {type(refiner).__name__}")
        self.adapter = adapter
        self.sampler = sampler
        self.refiners = refiners
        self.batch_size = check_count(batch_size, "batch_size")
        self.filter_max_attempts = check_count(filter_max_attempts, "filter_max_attempts")
        self.plugin_manager = plugin_manager if plugin_manager is not None else get_plugin_manager()
        self.report = RunReport()
        self._setup_seed: int | None = None

    @property
    def name(self) -> str:
        """``sampler+refiner+...``, e.g. ``"drs+bigroc"``."""
        return "+".join([self.sampler.name, *(r.name for r in self.refiners)])

    def describe(self) -> dict[str, Any]:
        """Settings that identify this chain's output (used in run manifests)."""
        return {
            "adapter": None if self.adapter is None else self.adapter.describe(),
            "sampler": self.sampler.describe(),
            "refiners": [r.describe() for r in self.refiners],
        }

    # --- running ------------------------------------------------------------

    def setup(self, seed: int = DEFAULTS.seed) -> None:
        """Run the sampler's and refiners' ``setup`` (fitting, calibration) with ``seed``.

        A run calls it with its own seed if the chain was never set up; call it
        yourself to fit once and then sample with several seeds. Calling it again
        with the same seed does nothing; with another seed it fits again.
        """
        seed = check_seed(seed)
        if self._setup_seed == seed:
            return
        with using_batch_size(self.batch_size):  # setup passes (burn-in, calibration, probes) run in batches of batch_size
            if self.adapter is not None:
                _in_stage(f"sampler {self.sampler.name!r} setup", self.sampler.setup, self.adapter, seed)
            for refiner in self.refiners:
                _in_stage(f"refiner {refiner.name!r} setup", refiner.setup, self.adapter, seed)
        self._setup_seed = seed

    def sample(
        self,
        n: int,
        *,
        seed: int = DEFAULTS.seed,
        labels: int | torch.Tensor | None = None,
        start: int = 0,
        progress: bool = False,
    ) -> SampleBatch:
        """Generate ``n`` samples (indices ``start .. start + n - 1``) and return them in one batch.

        Args:
            n: number of samples, >= 1.
            seed: keys every random number; same seed, same samples.
            labels: for a conditional generator: one class for all samples
                (int), one per sample (``[n]`` int64), or ``None`` to draw them.
            start: first global sample index (to continue or shard a run).
            progress: show a progress bar.
        """
        return SampleBatch.cat(self.iter_batches(n, seed=seed, labels=labels, start=start, progress=progress))

    def iter_batches(
        self,
        n: int,
        *,
        seed: int = DEFAULTS.seed,
        labels: int | torch.Tensor | None = None,
        start: int = 0,
        progress: bool = False,
    ) -> Iterator[SampleBatch]:
        """Like :meth:`sample` but yields batches of at most ``batch_size`` as they finish (streaming)."""
        self._require_adapter()
        n = check_count(n, "n")
        start = check_count(start, "start", minimum=0)
        seed = check_seed(seed)
        label_tensor = self._check_run_labels(labels, n)
        return self._iterate(torch.arange(start, start + n), seed, label_tensor, progress)

    def iter_indices(
        self, indices: torch.Tensor, *, seed: int = DEFAULTS.seed, labels: torch.Tensor | None = None, progress: bool = False
    ) -> Iterator[SampleBatch]:
        """Yield the samples of arbitrary global ``indices`` (``[n]`` int64) in batches, in order.

        The same index gives the same sample whatever the batch it runs in;
        this is how a run is sharded across processes or resumed.
        """
        self._require_adapter()
        if not isinstance(indices, torch.Tensor) or indices.dim() != 1 or indices.is_floating_point() or indices.dtype == torch.bool:
            raise InputError("indices must be a 1-D integer tensor of global sample indices")
        check_count(len(indices), "len(indices)")
        if int(indices.min()) < 0:
            raise InputError(f"indices must be global sample indices >= 0, got a minimum of {int(indices.min())}")
        seed = check_seed(seed)
        label_tensor = None if labels is None else self._check_run_labels(labels, len(indices))
        return self._iterate(indices.to(torch.int64).cpu(), seed, label_tensor, progress)

    def _ensure_setup(self, seed: int) -> None:
        if self._setup_seed is None:
            self.setup(seed)

    def _iterate(self, indices: torch.Tensor, seed: int, labels: torch.Tensor | None, progress: bool) -> Iterator[SampleBatch]:
        self._ensure_setup(seed)
        self.sampler.begin_run()
        self.report = RunReport(seed=seed)
        self._call_hook("gan_postproc_run_start", chain=self, n=len(indices), seed=seed)
        bar = tqdm(total=len(indices), desc=self.name, unit="sample") if progress else None
        try:
            for batch_index, begin in enumerate(range(0, len(indices), self.batch_size)):
                rows = slice(begin, begin + self.batch_size)
                request = SampleRequest(
                    indices=indices[rows], seed=seed, labels=None if labels is None else labels[rows]
                )
                batch = self.run_request(request, batch_index)
                self.report.n += len(batch)
                self.report.batches += 1
                if bar is not None:
                    bar.update(len(batch))
                yield batch
        finally:
            if bar is not None:
                bar.close()
        self.report.sampler = self.sampler.stats.as_dict()
        self._call_hook("gan_postproc_run_end", chain=self, report=self.report)

    def run_request(self, request: SampleRequest, batch_index: int = 0) -> SampleBatch:
        """Sampler, generator, refiners, filter hooks and ``batch_done`` for one request."""
        self._ensure_setup(request.seed)
        with using_batch_size(self.batch_size):
            batch = self._run_once(request, batch_index)
            keep = self._filter(batch, batch_index)
            if keep is not None and not bool(keep.all()):
                batch = self._redraw(request, batch, keep, batch_index)
        self._call_hook("gan_postproc_batch_done", chain=self, batch=batch, batch_index=batch_index)
        return batch

    def refine(self, batch: SampleBatch, *, batch_index: int = 0) -> SampleBatch:
        """Apply the refiners (only) to an existing batch with ``images`` set."""
        check_batch(batch, "Chain.refine", num_classes=None if self.adapter is None else self.adapter.num_classes)
        self._ensure_setup(DEFAULTS.seed)
        with using_batch_size(self.batch_size):
            for refiner in self.refiners:
                batch = self._apply_refiner(refiner, batch, batch_index)
        return batch

    # --- stages -------------------------------------------------------------

    def _run_once(self, request: SampleRequest, batch_index: int) -> SampleBatch:
        adapter = self._require_adapter()
        device = adapter.device
        self._call_hook("gan_postproc_before_sample", chain=self, request=request, batch_index=batch_index)
        with _Timer(self.report, f"sampler:{self.sampler.name}", device):
            batch = _in_stage(f"sampler {self.sampler.name!r}, batch {batch_index}", self.sampler.sample, adapter, request)
        if batch.images is None:
            with _Timer(self.report, "generate", device), torch.no_grad():
                images = adapter.generate(batch.latents, batch.labels)
            batch = batch.replace(images=images, value_range=adapter.value_range)
        batch = batch.detach()
        _check_stage_output(f"sampler {self.sampler.name!r}", batch_index, len(request), request.indices, adapter.value_range, batch)
        self._call_hook("gan_postproc_after_sample", chain=self, sampler=self.sampler, batch=batch, batch_index=batch_index)
        for refiner in self.refiners:
            batch = self._apply_refiner(refiner, batch, batch_index)
        return batch

    def _apply_refiner(self, refiner: Refiner, batch: SampleBatch, batch_index: int) -> SampleBatch:
        self._call_hook("gan_postproc_before_refine", chain=self, refiner=refiner, batch=batch, batch_index=batch_index)
        with _Timer(self.report, f"refiner:{refiner.name}", batch.device):
            refined = _in_stage(f"refiner {refiner.name!r}, batch {batch_index}", refiner.refine, batch, self.adapter)
        refined = refined.detach() if isinstance(refined, SampleBatch) else refined
        _check_stage_output(f"refiner {refiner.name!r}", batch_index, len(batch), batch.indices, batch.value_range, refined)
        self._call_hook(
            "gan_postproc_after_refine", chain=self, refiner=refiner, before=batch, after=refined, batch_index=batch_index
        )
        return refined

    def _filter(self, batch: SampleBatch, batch_index: int) -> torch.Tensor | None:
        masks = self._call_hook("gan_postproc_filter_batch", chain=self, batch=batch, batch_index=batch_index)
        keep = None
        for mask in masks:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != (len(batch),):
                got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise PluginError(f"gan_postproc_filter_batch must return a [{len(batch)}] bool tensor or None, got {got} (batch {batch_index})")
            keep = mask.cpu() if keep is None else keep & mask.cpu()
        return keep

    def _redraw(self, request: SampleRequest, batch: SampleBatch, keep: torch.Tensor, batch_index: int) -> SampleBatch:
        """Re-run the rejected rows with fresh random numbers until every row passes the filters."""
        rows = torch.arange(len(request))
        kept_parts, kept_rows = [batch.select(keep)], [rows[keep]]
        pending = rows[~keep]
        for attempt in range(request.attempt + 1, request.attempt + 1 + self.filter_max_attempts):
            self.report.redrawn += len(pending)
            sub = request.subset(pending)
            sub = SampleRequest(indices=sub.indices, seed=sub.seed, labels=sub.labels, latents=None, attempt=attempt)
            redrawn = self._run_once(sub, batch_index)
            mask = self._filter(redrawn, batch_index)
            mask = torch.ones(len(redrawn), dtype=torch.bool) if mask is None else mask
            kept_parts.append(redrawn.select(mask))
            kept_rows.append(pending[mask])
            pending = pending[~mask]
            if len(pending) == 0:
                merged = SampleBatch.cat(kept_parts)
                return merged.select(torch.argsort(torch.cat(kept_rows)))
        raise PluginError(
            f"filter hooks rejected {len(pending)} samples of batch {batch_index} in all {self.filter_max_attempts} "
            "re-draws; loosen the filter or raise filter_max_attempts"
        )

    def _call_hook(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a run hook; an exception from a plugin is re-raised naming the plugin and batch."""
        hook = getattr(self.plugin_manager.hook, hook_name)
        batch_index = kwargs.get("batch_index", -1)
        try:
            return hook(**kwargs)
        except GanPostprocError:
            raise
        except Exception as error:
            plugin = self.plugin_manager.plugin_of_traceback(error) or "?"
            where = "" if batch_index < 0 else f" at batch {batch_index}"
            raise HookError(f"plugin {plugin!r} raised in {hook_name}{where}: {type(error).__name__}: {error}") from error

    def _require_adapter(self) -> Adapter:
        if self.adapter is None:
            raise InputError("this chain has no adapter, so it can only refine existing images (Chain.refine); pass adapter= to generate")
        return self.adapter

    # --- labels ---------------------------------------------------------------

    def _check_run_labels(self, labels: int | torch.Tensor | None, n: int) -> torch.Tensor | None:
        if labels is None:
            return None
        adapter = self._require_adapter()
        if isinstance(labels, int) and not isinstance(labels, bool):
            labels = torch.full((n,), labels, dtype=torch.int64)
        return check_labels(labels, "labels", num_classes=adapter.num_classes, n=n).cpu()


def _in_stage(where: str, fn: Any, *args: Any) -> Any:
    """Call ``fn``; an unexpected exception gets a note saying which stage and batch raised it."""
    try:
        return fn(*args)
    except GanPostprocError:
        raise
    except Exception as error:
        if hasattr(error, "add_note"):
            error.add_note(f"(raised in {where})")
        raise


#: Samples may leave their value range by this fraction of its width (float rounding) before a stage is refused.
_RANGE_TOLERANCE = 1e-4


def _check_stage_output(
    stage: str, batch_index: int, expected: int, indices: torch.Tensor | None, value_range: ValueRange | None, batch: object
) -> None:
    """A plugin must return a SampleBatch with ``expected`` rows (the requested indices, in order, when
    there are indices) and finite images inside ``value_range``, the range it was given."""
    where = f"{stage} at batch {batch_index}"
    if not isinstance(batch, SampleBatch):
        raise PluginError(f"{where} returned {type(batch).__name__}; expected a SampleBatch")
    if len(batch) != expected:
        raise PluginError(f"{where} returned {len(batch)} samples for {expected} requested; a plugin must never change the number of samples")
    if indices is not None and (batch.indices is None or not torch.equal(batch.indices.cpu(), indices.cpu())):
        raise PluginError(f"{where} returned samples whose indices differ from the requested ones (reordered or lost)")
    if batch.images is None:
        raise PluginError(f"{where} returned a batch without images")
    if batch.value_range != (None if value_range is None else tuple(value_range)):
        raise PluginError(f"{where} returned samples declared in value range {batch.value_range}, but it was given {value_range}; a plugin must keep the range")
    # One pass over the images and one device sync: NaN propagates into the min/max and inf lies outside any range.
    if batch.value_range is None:
        lo = hi = 0.0 if bool(torch.isfinite(batch.images).all()) else math.nan
    else:
        lo, hi = torch.stack(torch.aminmax(batch.images.detach())).tolist() if batch.images.numel() else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = finite_rows(batch.images)
        raise PluginError(f"{where} produced NaN/inf in {int((~finite).sum())} of {len(batch)} samples")
    if batch.value_range is not None:
        low, high = batch.value_range
        if lo < low - _RANGE_TOLERANCE * (high - low) or hi > high + _RANGE_TOLERANCE * (high - low):
            raise PluginError(
                f"{where} produced samples with values in [{lo:.4g}, {hi:.4g}], outside their value range "
                f"[{low:g}, {high:g}]. If the generator made them, its declared output range is wrong: pass the "
                "range it really produces, e.g. TorchAdapter(G, output_range=(0, 1)); if a refiner did, it must "
                "clamp its results into the range"
            )
