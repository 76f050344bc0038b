"""The result tables of README.md and docs/, rendered from the benchmarks' output files.

No result table in the documentation is typed by hand. A table sits between two markers that name
its results file and a view of it::

    <!-- table: benchmarks/results/toy2d.json#toy2d -->
    | method | ... |
    <!-- /table -->

``python -m gan_postproc.benchmarks.tables README.md docs`` rewrites every table between markers from
its file (``--check``: only report the tables that differ, exit 1 if any). ``tests/contracts/test_docs.py``
fails when a table differs from what :func:`render` makes of its file. Each view picks rows and columns
and formats numbers; it computes nothing but relative changes from the file's own numbers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MARKER", "VIEWS", "render", "update_text", "main"]

#: A generated table: ``<!-- table: FILE#VIEW -->`` newline, the table, ``<!-- /table -->``.
MARKER = re.compile(r"<!-- table: (?P<file>[^#\s]+)#(?P<view>[\w-]+) -->\n(?P<body>.*?)<!-- /table -->", re.S)

Row = Mapping[str, Any]


def _fixed(digits: int) -> Callable[[Any], str]:
    return lambda value: "-" if value is None else f"{value:.{digits}f}"


def _ratio(value: Any) -> str:
    """A cost ratio: two significant digits below 100, whole numbers above."""
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.2g}" if value >= 1 else f"{value:.2f}"


def _mean_std(row: Row, key: str, digits: int) -> str:
    value, spread = row.get(key), row.get(f"{key}_std")
    if value is None:
        return "-"
    return f"{value:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread else "")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n"


def _pick(rows: Mapping[str, Row], names: Sequence[str] | None) -> list[tuple[str, Row]]:
    """Rows by name in the given order (all rows, file order, when ``names`` is None); a missing name is an error."""
    if names is None:
        return list(rows.items())
    missing = [name for name in names if name not in rows]
    if missing:
        raise KeyError(f"rows {missing} are not in the results file (it has {sorted(rows)})")
    return [(name, rows[name]) for name in names]


# ---------------------------------------------------------------- digits suite (demo, bench digits)

def _digits_order(rows: Mapping[str, Row]) -> list[str]:
    """Unconditional rows (baseline first), then conditional ones (their baseline first)."""
    def group(conditional: bool, baseline: str) -> list[str]:
        names = sorted(name for name, row in rows.items() if bool(row.get("conditional")) == conditional and name != baseline)
        return ([baseline] if baseline in rows else []) + names
    return group(False, "baseline") + group(True, "baseline_conditional")


def digits_view(names: Sequence[str] | None = None, acceptance: bool = True) -> Callable[[Any], str]:
    """FID, precision, recall, balance KL, cost (and acceptance) of digits-suite rows, with each row's setting."""
    def view(data: Mapping[str, Row]) -> str:
        header = ["method", "FID", "precision", "recall", "balance KL", "cost", *(["acceptance"] if acceptance else []), "setting"]
        body = []
        for name, row in _pick(data, names or _digits_order(data)):
            if row.get("error"):
                body.append([f"`{name}`", "failed: " + str(row["error"]), *[""] * (len(header) - 2)])
                continue
            cells = [f"`{name}`", _mean_std(row, "fid", 2), _fixed(3)(row.get("precision")), _fixed(3)(row.get("recall")),
                     _fixed(4)(row.get("balance_kl")), _ratio(row.get("cost_ratio"))]
            cells += [_fixed(2)(row.get("acceptance_rate"))] if acceptance else []
            body.append(cells + [str(row.get("note", ""))])
        return _table(header, body)
    return view


def digits_time_view(n: int) -> Callable[[Any], str]:
    """Sampling time per sample of each digits-suite row and what it makes for ``n`` samples (setup excluded)."""
    def view(data: Mapping[str, Row]) -> str:
        body = [[f"`{name}`", f"{row['ms_per_sample']:.2f}", f"{row['ms_per_sample'] * n / 1000:.0f} s", _ratio(row.get("cost_ratio"))]
                for name, row in _pick(data, _digits_order(data)) if not row.get("error")]
        return _table(["method", "ms per sample", f"{n:,} samples", "cost vs plain"], body)
    return view


# ---------------------------------------------------------------- toy2d (DOT's 2-D models)

TOY2D_TITLES = {"25gaussians": "25 Gaussians", "swissroll": "Swiss roll"}


def toy2d_view(names: Sequence[str] | None = None, acceptance: bool = False) -> Callable[[Any], str]:
    """EMD (mean ± std over seeds) and cost per data set, side by side, one row per method."""
    def view(data: Mapping[str, Mapping[str, Row]]) -> str:
        datasets = list(data)
        header = ["method"]
        for dataset in datasets:
            title = TOY2D_TITLES.get(dataset, dataset)
            header += [f"{title} EMD", "cost", *(["acceptance"] if acceptance else [])]
        header.append("setting")
        first = data[datasets[0]]
        body = []
        for name, row in _pick(first, names):
            cells = [f"`{name}`"]
            for dataset in datasets:
                entry = data[dataset][name]
                cells += [_mean_std({"emd": entry["emd_mean"], "emd_std": entry["emd_std"]}, "emd", 3), _ratio(entry["cost_ratio"])]
                cells += [_fixed(2)(entry.get("acceptance_rate"))] if acceptance else []
            body.append(cells + [str(row.get("note", ""))])
        return _table(header, body)
    return view


# ---------------------------------------------------------------- bench bigroc

def _change(row: Row) -> str:
    change = row.get("fid_change_pct")
    return "" if change is None else f"{change:+.1f}%"


def bigroc_main(data: Mapping[str, Any]) -> str:
    """The headline rows of ``bench bigroc``: each baseline, then BIGRoC at the demo's settings."""
    body = [[row["row"], _fixed(2)(row["fid"]), _change(row), _fixed(3)(row["precision"]), _fixed(3)(row["recall"]),
             "" if row.get("eps") is None else f"{row['eps']:g}", {True: "debiased", False: "plain argmax", None: "-"}[row.get("debias")]
             if "debias" in row else "-"]
            for row in data["tables"]["main"]]
    return _table(["row", "FID", "change", "precision", "recall", "eps", "pseudo labels"], body)


def bigroc_eps_curve(data: Mapping[str, Any]) -> str:
    """FID (change vs plain sampling) / precision / recall per eps, one column group per variant."""
    rows = data["tables"]["eps_curve"]
    variants = list(dict.fromkeys(row["row"] for row in rows))
    header = ["eps"] + [f"{variant} {what}" for variant in variants for what in ("FID (change)", "precision", "recall")]
    body = []
    for eps in sorted({row["eps"] for row in rows}):
        cells = [f"{eps:g}"]
        for variant in variants:
            row = next(r for r in rows if r["row"] == variant and r["eps"] == eps)
            cells += [f"{row['fid']:.2f} ({_change(row)})", _fixed(3)(row["precision"]), _fixed(3)(row["recall"])]
        body.append(cells)
    return _table(header, body)


def bigroc_ablation(table: str) -> Callable[[Any], str]:
    """One ablation table of ``bench bigroc`` (classifier, steps, norm, debias) as it was run."""
    def view(data: Mapping[str, Any]) -> str:
        body = [[row["row"], f"{row['eps']:g}", str(row["steps"]), row["norm"], _fixed(2)(row["fid"]), _change(row),
                 _fixed(3)(row["precision"]), _fixed(3)(row["recall"])] for row in data["tables"][table]]
        return _table(["row", "eps", "steps", "norm", "FID", "change", "precision", "recall"], body)
    return view


# ---------------------------------------------------------------- bench synthetic_training

def synthetic_training(data: Mapping[str, Any]) -> str:
    """Final-epoch test accuracy (%) per training-data setting, mean ± std over seeds."""
    body = [[row["data"], row["transforms"], row["filtering"], row["truncation"], _mean_std(
        {"acc": row["acc_final"], "acc_std": row["acc_final_std"]}, "acc", 1)] for row in data["rows"]]
    return _table(["data", "transforms (crop)", "filtering", "truncation (psi 1.5)", "accuracy (%)"], body)


def dg_digits(data: Mapping[str, Any]) -> str:
    """``bench dg_digits``: the benchmark's own rendering of its results file (one renderer, not two)."""
    from gan_postproc.benchmarks.dg_digits import render_markdown

    return render_markdown(data).rstrip("\n") + "\n"


#: Every view a marker can name.
VIEWS: dict[str, Callable[[Any], str]] = {
    "digits": digits_view(),
    "digits-density-ratio": digits_view(["baseline", "drs", "mh", "sir", "truncation"]),
    "digits-latent-reweighting": digits_view(["baseline", "latent_rs", "latent_ga", "latent_rs_ga"]),
    "digits-classifier-guided": digits_view(["baseline", "class_balance", "ensemble", "baseline_conditional", "classifier_filter"]),
    "digits-time-50k": digits_time_view(50_000),
    "toy2d": toy2d_view(),
    "toy2d-density-ratio": toy2d_view(["baseline", "drs", "mh", "sir"], acceptance=True),
    "toy2d-latent-reweighting": toy2d_view(["baseline", "latent_rs", "latent_ga", "latent_rs_ga"], acceptance=True),
    "toy2d-discriminator": toy2d_view(["baseline", "collaborative", "dot", "dot_latent", "ddls"]),
    "bigroc": bigroc_main,
    "bigroc-eps-curve": bigroc_eps_curve,
    "bigroc-classifier": bigroc_ablation("classifier"),
    "bigroc-steps": bigroc_ablation("steps"),
    "bigroc-norm": bigroc_ablation("norm"),
    "bigroc-debias": bigroc_ablation("debias"),
    "synthetic-training": synthetic_training,
    "dg-digits": dg_digits,
}


def render(file: str, view: str, root: Path) -> str:
    """The markdown table of ``view`` made from the JSON results ``file`` (relative to ``root``)."""
    if view not in VIEWS:
        raise KeyError(f"no table view named {view!r}; views: {sorted(VIEWS)}")
    return VIEWS[view](json.loads((root / file).read_text(encoding="utf-8")))


def update_text(text: str, root: Path) -> str:
    """``text`` with every table between markers rendered anew from its file."""
    return MARKER.sub(lambda m: f"<!-- table: {m['file']}#{m['view']} -->\n{render(m['file'], m['view'], root)}<!-- /table -->", text)


def _pages(paths: Sequence[str]) -> list[Path]:
    pages: list[Path] = []
    for path in map(Path, paths):
        pages += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_postproc.benchmarks.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="markdown files or folders (searched for *.md)")
    parser.add_argument("--root", default=".", help="folder the results paths in markers are relative to (default: .)")
    parser.add_argument("--check", action="store_true", help="change nothing; list the pages whose tables differ, exit 1 if any")
    args = parser.parse_args(argv)
    stale = []
    for page in _pages(args.paths):
        text = page.read_text(encoding="utf-8")
        new = update_text(text, Path(args.root))
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new, encoding="utf-8")
    for page in stale:
        print(f"{'differs' if args.check else 'updated'}: {page}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
