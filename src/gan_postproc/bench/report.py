"""Printing benchmark results: the machine, the settings, and aligned tables."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["machine_info", "format_table", "describe_run"]


def machine_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """What the numbers were measured on: device, CPU, threads, library versions."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info: dict[str, Any] = {
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def describe_run(what: str, on: str, samples: int, seeds: Sequence[int], device: torch.device | str | None = None) -> str:
    """One paragraph saying what a benchmark measured, on what, with how many samples and seeds, where."""
    machine = machine_info(device)
    where = f"{machine['device']}" + (f" ({machine['gpu']})" if "gpu" in machine else f" ({machine['cpu']}, {machine['cpu_count']} cores)")
    return (
        f"{what}\non: {on}\nsamples: {samples} per method and seed; seeds: {list(seeds)}\n"
        f"machine: {where}, torch {machine['torch']}, {machine['torch_threads']} thread(s)"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned plain-text table with the given columns (missing cells print '-')."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) if cells else len(column) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in cells]
    return "\n".join(lines)
