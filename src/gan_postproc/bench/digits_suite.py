"""The digits suite, shared by ``gan-postproc demo`` (quick) and ``gan-postproc bench digits``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files.writing import atomic_write_json, check_writable
from ..plugin_system.manager import get_plugin_manager
from ..validation import check_count
from .contexts import digits_context, digits_evaluator
from .grid import save_labelled_grid
from .report import describe_run, format_table
from .setups import collect_setups
from .suite import baseline_rows, run_side_by_side, summarise

__all__ = ["METRICS", "run_digits_suite"]

#: What the suite reports per row (from the independent feature network).
METRICS = ("fid", "kid", "precision", "recall", "density", "coverage", "balance_kl")
GRID_COLUMNS = 12


def run_digits_suite(
    *, quick: bool, n: int, seeds: Sequence[int], out: str | Path | None = None, only: Sequence[str] | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run the baseline and every plugin's digits rows; print a table; optionally write
    ``out/results.json`` and ``out/grid.png``.

    Returns:
        ``{row name: {fid, precision, recall, balance_kl, ms_per_sample, n, ...}}``.
    """
    n = check_count(n, "n")
    if out is not None:
        check_writable(out, "--out", folder=True)
    context = digits_context(quick=quick)
    pm = get_plugin_manager()
    setups = collect_setups(context, pm)
    unknown = sorted(set(only or ()) - {r.name for r in setups} - {"none"})
    if unknown:
        raise InputError(f"no digits rows named {unknown}; the rows are {sorted(r.name for r in setups)} ('none': the baselines alone)")
    rows = baseline_rows(context) + [r for r in setups if only is None or r.name in only]
    print(describe_run(
        "FID/KID/precision/recall/density/coverage with the independent digits feature network vs the test split; "
        "balance KL of that network's predicted labels to uniform; ms per sample of sampling (setup excluded), "
        "and its ratio to plain generation of the same generator",
        "the shipped digits GANs (unconditional and conditional), sklearn load_digits", n, seeds))
    outcomes = run_side_by_side(context, rows, n=n, seeds=seeds, evaluate=digits_evaluator(), batch_size=min(n, 500),
                                preview=GRID_COLUMNS, plugin_manager=pm, progress=progress)
    summary = summarise(outcomes, METRICS)
    results = {
        name: {
            **{metric: entry[f"{metric}_mean"] for metric in METRICS},
            **{f"{metric}_std": entry[f"{metric}_std"] for metric in METRICS},
            "ms_per_sample": entry["ms_per_sample"],
            "cost_ratio": entry["cost_ratio"],
            "setup_seconds": entry["setup_seconds"],
            "acceptance_rate": entry["acceptance_rate"],
            "conditional": entry["conditional"],
            "n": n,
            "seeds": entry["seeds"],
            "note": entry["note"],
            "error": entry["error"],
        }
        for name, entry in summary.items()
    }
    table = [{"method": name, **r, "vs": "baseline_conditional" if r["conditional"] else "baseline"} for name, r in results.items()]
    print(format_table(table, ["method", "fid", "precision", "recall", "balance_kl", "ms_per_sample", "cost_ratio", "acceptance_rate", "vs"]))
    for name, r in results.items():
        if r["error"]:
            print(f"row {name!r} failed: {r['error']}")
    if out is not None:
        out = Path(out)
        atomic_write_json(out / "results.json", results)
        from ..models.digits import digits_dataset

        real = ("real (test split)", digits_dataset("test")[0][:GRID_COLUMNS])
        previews = [(o.name, o.preview.reshape(-1, 1, 8, 8)) for o in outcomes if o.preview is not None]
        save_labelled_grid(out / "grid.png", [real, *previews])
        print(f"wrote {out / 'results.json'} and {out / 'grid.png'}")
    return results
