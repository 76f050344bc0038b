"""The docs and the hooks stay complete: every hook documented with its exact signature, every hook tested."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from gan_postproc import hookspecs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
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


def test_every_hook_is_documented_in_the_readme_with_its_exact_signature():
    missing = [_signature(name) for name in HOOKS if _signature(name) not in README]
    assert not missing, f"README lacks these hook signatures: {missing}"


def test_every_hook_is_exercised_by_a_test():
    texts = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py") if p.name != "test_docs.py")
    untested = [name for name in HOOKS if f"def {name}(" not in texts]
    assert not untested, f"no test implements these hooks: {untested}"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in README
    assert "pytest" in ci


def test_every_benchmark_is_listed_in_the_readme():
    from gan_postproc.cli.bench_command import available

    missing = [name for name in available() if f"| `{name}` |" not in README]
    assert not missing, f"benchmarks missing from the README's table: {missing}"
