"""Every example of README.md and docs/ runs exactly as written (issue 17).

Each chain of examples (see :mod:`tests.helpers.doc_examples` for the markers) runs in a fresh
temporary folder, in a fresh Python process of this interpreter, with this interpreter's
scripts (``gan-postproc``, ``accelerate``, ``python``) first on ``PATH`` and one torch thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import doc_examples

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = [example for page in PAGES for example in doc_examples.find_examples(page, ROOT)]
CHAINS = doc_examples.chains(EXAMPLES)
#: One chain's limit; the examples are sized to take seconds (the longest about a minute on a loaded 2-core CPU).
TIMEOUT_S = 600


def test_the_pages_have_examples_and_every_marker_is_understood():
    assert len(CHAINS) >= 30
    for example in EXAMPLES:
        if "skip" in example.options or "needs-download" in example.options:
            reason = example.options.get("skip") or example.options.get("needs-download")
            assert len(reason) >= 10, f"{example.where}: say why it cannot run here"
        if example.options and not example.runs:
            assert "file" in example.options, f"{example.where}: a marker on a {example.language!r} block, which never runs"


def test_a_block_continues_only_a_named_earlier_block_of_its_page():
    names = [(e.page, e.options["name"]) for e in EXAMPLES if "name" in e.options]
    assert len(names) == len(set(names)), "two examples of one page share a name"


@pytest.mark.parametrize("chain", CHAINS, ids=[chain[0].where for chain in CHAINS])
def test_example_runs_as_written(chain, tmp_path):
    reason = doc_examples.why_not_run(chain)
    if reason:
        pytest.skip(reason)
    script = tmp_path / "chain.json"
    script.write_text(doc_examples.as_json(chain), encoding="utf-8")
    folder = tmp_path / "work"
    folder.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, doc_examples.__file__, str(script), str(folder)], env=env, cwd=folder,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"example {chain[0].where} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
