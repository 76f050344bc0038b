"""Run benchmark rows side by side: same seeds, same sample counts, timed in the same process.

Rows are interleaved seed by seed (baseline included), so slow drifts of the
machine affect every row alike. Each row's ``setup`` (fitting, calibration) is
timed separately from its sampling cost. A row that fails is reported with its
error in the results, never dropped silently.

Sampling cost: by default the scored passes are timed (one pass per seed). With
a :class:`TimingPlan` the cost is measured apart from the scored passes: every
row first runs one untimed warm-up pass, then ``repeats`` timed passes of ``n``
samples each, interleaved across rows in a rotating order (repetition ``k``
starts at row ``k``), and the reported cost is the median over the timed passes.
A row whose timed pass would take longer than ``max_pass_seconds`` (judged by
its scored passes) keeps the median of its scored passes instead: they are long
enough for noise not to matter, and timing it again would cost minutes.
On a small or shared machine a single pass of a tiny model is dominated by
scheduling noise and one-off warm-up; interleaving and the median remove both
without favouring any row.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import GanPostprocError
from ..pipeline.batch import SampleBatch
from ..pipeline.chain import Chain
from ..plugin_system.manager import PluginManager
from ..validation import check_count
from .setups import BenchmarkContext, BenchmarkSetup

__all__ = ["RowOutcome", "TimingPlan", "TIMING_SEED_OFFSET", "baseline_rows", "run_side_by_side", "summarise"]

Evaluate = Callable[[SampleBatch, int], dict[str, float | None]]

#: The timed passes of a :class:`TimingPlan` sample with seeds from here on (not scored).
TIMING_SEED_OFFSET = 1_000_000


@dataclass(frozen=True)
class TimingPlan:
    """How sampling cost is measured apart from the scored passes (see the module docstring).

    Attributes:
        n: samples per timed pass.
        repeats: timed passes per row, interleaved across rows; the median is reported.
        batch_size: chain batch size of the timed passes (``None``: the run's batch size).
        max_pass_seconds: rows slower than this per timed pass keep their scored passes' timing.
    """

    n: int
    repeats: int
    batch_size: int | None = None
    max_pass_seconds: float = 2.0

    def __post_init__(self) -> None:
        check_count(self.n, "timing n")
        check_count(self.repeats, "timing repeats")
        if self.batch_size is not None:
            check_count(self.batch_size, "timing batch_size")

    def describe(self, run_batch_size: int) -> str:
        """One line for a benchmark's printed header."""
        batch = self.batch_size or run_batch_size
        return (f"cost: median of {self.repeats} timed passes of {self.n} samples per row (batch size {batch}), "
                "interleaved across rows in rotating order after one untimed warm-up pass each (rows slower than "
                f"{self.max_pass_seconds:g} s per such pass: median of their scored passes)")


@dataclass
class RowOutcome:
    """Everything measured for one row.

    Attributes:
        metrics: one dict per seed (whatever ``evaluate`` returned).
        ms_per_sample: sampling cost per timed pass (per seed, or the passes of a
            :class:`TimingPlan`), all chain stages, setup excluded.
        setup_seconds: time of the chain's one-off setup (fitting, calibration).
        sampler: the sampler's acceptance statistics after the last seed.
        preview: the first images of the first seed, for a grid (or ``None``).
        error: the error message if the row failed.
    """

    setup: BenchmarkSetup
    metrics: list[dict[str, float | None]] = field(default_factory=list)
    ms_per_sample: list[float] = field(default_factory=list)
    setup_seconds: float = 0.0
    sampler: dict[str, Any] = field(default_factory=dict)
    preview: torch.Tensor | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.setup.name


def baseline_rows(context: BenchmarkContext) -> list[BenchmarkSetup]:
    """Plain generation: ``baseline``, plus ``baseline_conditional`` when the suite has a conditional generator."""
    rows = [BenchmarkSetup("baseline", note="plain sampling from the prior")]
    if context.conditional_adapter is not None:
        rows.append(BenchmarkSetup("baseline_conditional", conditional=True, note="plain sampling, conditional generator"))
    return rows


def run_side_by_side(
    context: BenchmarkContext,
    rows: Sequence[BenchmarkSetup],
    *,
    n: int,
    seeds: Sequence[int],
    evaluate: Evaluate,
    batch_size: int = 500,
    preview: int = 0,
    plugin_manager: PluginManager | None = None,
    progress: bool = True,
    timing: TimingPlan | None = None,
) -> list[RowOutcome]:
    """Run every row for every seed; returns one :class:`RowOutcome` per row, in order.

    Without ``timing`` each scored pass is timed; with it the cost comes from
    the plan's separate interleaved passes (:class:`TimingPlan`).
    """
    outcomes = [RowOutcome(row) for row in rows]
    chains: dict[str, Chain] = {}
    bar = tqdm(total=len(rows) * len(seeds), desc=f"{context.suite}/{context.dataset}", unit="run", disable=not progress)
    for outcome in outcomes:
        row = outcome.setup
        adapter = context.conditional_adapter if row.conditional else context.adapter
        try:
            if adapter is None:
                raise GanPostprocError(f"row {row.name!r} needs a conditional generator, which this suite lacks")
            chain = Chain(adapter, row.sampler, row.refiners, batch_size=batch_size, plugin_manager=plugin_manager)
            start = time.perf_counter()
            chain.setup(context.seed)
            outcome.setup_seconds = time.perf_counter() - start
            chains[row.name] = chain
        except Exception as error:  # a broken row is reported, the others still run
            outcome.error = f"{type(error).__name__}: {error}"
    for seed in seeds:
        for outcome in outcomes:
            chain = chains.get(outcome.name)
            if chain is None or outcome.error is not None:
                bar.update(1)
                continue
            try:
                batch = chain.sample(n, seed=seed)
                outcome.ms_per_sample.append(chain.report.ms_per_sample)
                outcome.metrics.append(evaluate(batch, seed))
                outcome.sampler = chain.report.sampler
                if preview and outcome.preview is None:
                    outcome.preview = batch.images[:preview].cpu()
            except Exception as error:
                outcome.error = f"{type(error).__name__}: {error}"
            bar.update(1)
    bar.close()
    if timing is not None:
        fast = [o for o in outcomes if o.name in chains and o.error is None
                and max(o.ms_per_sample, default=0.0) * timing.n / 1000.0 <= timing.max_pass_seconds]
        for outcome in fast:
            outcome.ms_per_sample = []  # replaced by the timed passes
        _time_rows(fast, chains, timing)
    return outcomes


def _time_rows(outcomes: Sequence[RowOutcome], chains: dict[str, Chain], timing: TimingPlan) -> None:
    """Warm-up pass per row, then ``timing.repeats`` rounds of one timed pass per row in rotating order."""
    live = list(outcomes)
    for repeat in range(-1, timing.repeats):  # -1: the untimed warm-up round
        start = max(repeat, 0) % len(live) if live else 0
        for outcome in live[start:] + live[:start]:
            if outcome.error is not None:
                continue
            chain = chains[outcome.name]
            run_batch_size = chain.batch_size
            chain.batch_size = timing.batch_size or run_batch_size
            try:
                chain.sample(timing.n, seed=TIMING_SEED_OFFSET + max(repeat, 0))
                if repeat >= 0:
                    outcome.ms_per_sample.append(chain.report.ms_per_sample)
            except Exception as error:  # a row that fails while timed is reported like any failure
                outcome.error = f"{type(error).__name__}: {error}"
            finally:
                chain.batch_size = run_batch_size


def _median(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else None


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def summarise(outcomes: Sequence[RowOutcome], metric_names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per row: mean and std over seeds of each metric, ms per sample (median over the timed
    passes), and the cost ratio against the matching baseline (conditional rows against
    ``baseline_conditional``)."""
    base_ms = {o.setup.conditional: _median(o.ms_per_sample) for o in outcomes if o.name in ("baseline", "baseline_conditional")}
    summary: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        entry: dict[str, Any] = {"note": outcome.setup.note, "conditional": outcome.setup.conditional, "seeds": len(outcome.metrics)}
        for name in metric_names:
            entry[f"{name}_mean"], entry[f"{name}_std"] = _mean_std([m.get(name) for m in outcome.metrics])
        ms = _median(outcome.ms_per_sample)
        baseline = base_ms.get(outcome.setup.conditional)
        entry["ms_per_sample"] = ms
        entry["cost_ratio"] = ms / baseline if ms is not None and baseline else None
        entry["setup_seconds"] = outcome.setup_seconds
        entry["acceptance_rate"] = outcome.sampler.get("acceptance_rate")
        entry["error"] = outcome.error
        summary[outcome.name] = entry
    return summary
