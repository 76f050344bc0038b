"""The docs stay complete and true: every hook documented on the plugin page with its exact signature and
tested, CI runs the README's quick start as written and builds the site, every benchmark listed, every
result table generated from its results file."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from gan_postproc import hookspecs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLUGINS_PAGE = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
BENCHMARKS_PAGE = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("gan_postproc_"))


def _signature(name: str) -> str:
    params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    return f"{name}({params})"


def test_there_are_registration_and_run_hooks():
    assert {"gan_postproc_register_samplers", "gan_postproc_register_refiners", "gan_postproc_register_adapters"} <= set(HOOKS)
    assert len(HOOKS) >= 10


def test_every_hook_has_a_docstring_saying_when_it_is_called():
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert re.search(r"\b(called|Called|Return|return)\b", doc), name


def test_every_hook_is_documented_on_the_plugin_page_with_its_exact_signature():
    missing = [_signature(name) for name in HOOKS if _signature(name) not in PLUGINS_PAGE]
    assert not missing, f"docs/plugins.md lacks these hook signatures: {missing}"


def test_every_hook_is_exercised_by_a_test():
    texts = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py")
    untested = [name for name in HOOKS if f"def {name}(" not in texts]
    assert not untested, f"no test implements these hooks: {untested}"


def _quick_start() -> list[str]:
    """The command lines of the README's quick-start block (the first ```bash block after "## Quick start")."""
    section = README.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] in README
    assert "pytest" in ci[-1]
    quick_start = _quick_start()
    assert len(quick_start) == 2 and quick_start[1] == ci[-1]
    assert quick_start[0] in ci, "CI must run the README's first quick-start line (install, demo) as written"
    assert quick_start[0].startswith("python3 -m venv .venv") and "pip install torch==2.13.0 &&" in quick_start[0]


def test_ci_builds_the_docs_site_strictly():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[docs]"' in ci and "mkdocs build --strict" in ci
    assert ci.index("mkdocs build --strict") < ci.index("python -m pytest")


def test_every_benchmark_is_listed_on_the_benchmarks_page():
    from gan_postproc.cli.bench_command import available

    missing = [name for name in available() if f"| `{name}` |" not in BENCHMARKS_PAGE]
    assert not missing, f"benchmarks missing from the table of docs/benchmarks.md: {missing}"


def test_every_generated_table_matches_its_results_file():
    from gan_postproc.benchmarks import tables

    found = 0
    for page in PAGES:
        for marker in tables.MARKER.finditer(page.read_text(encoding="utf-8")):
            found += 1
            expected = tables.render(marker["file"], marker["view"], ROOT)
            assert marker["body"] == expected, (
                f"{page.relative_to(ROOT)}: the table from {marker['file']}#{marker['view']} differs from its file; "
                "run `python -m gan_postproc.benchmarks.tables README.md docs`")
    assert found >= 15


#: A table cell that is a measured number: 12.3, 0.155 ± 0.010, -25.7%, 17x.
NUMBER_CELL = re.compile(r"^\*{0,2}[-+]?\d+\.\d+( ± \d+\.\d+)?%?x?\*{0,2}( \(.*\))?$")


def test_no_result_table_is_typed_by_hand():
    from gan_postproc.benchmarks import tables

    typed = []
    for page in PAGES:
        text = tables.MARKER.sub("", page.read_text(encoding="utf-8"))
        in_code = False
        for number, line in enumerate(text.splitlines(), 1):
            in_code ^= line.lstrip().startswith("```")
            if in_code or not line.startswith("|"):
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if sum(bool(NUMBER_CELL.match(cell)) for cell in cells) >= 2:
                typed.append(f"{page.relative_to(ROOT)}: {line[:80]}")
    assert not typed, "result tables must be generated from a results file (benchmarks/tables.py):\n" + "\n".join(typed)
