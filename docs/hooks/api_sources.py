"""MkDocs hook: one `gan_postproc` source tree for mkdocstrings to read.

The package is assembled at install time from four folders (`src/gan_postproc`, `plugins/`,
`integrations/`, `benchmarks/`; see `package-dir` in pyproject.toml), which a static reader of sources
cannot follow. When this hook loads, it lays out `build/api-src/gan_postproc/` as symbolic links to those
folders' files, the layout the installed package has; mkdocs.yml points mkdocstrings there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "build" / "api-src" / "gan_postproc"
SUBPACKAGES = {"plugins": ROOT / "plugins", "integrations": ROOT / "integrations", "benchmarks": ROOT / "benchmarks"}


def _lay_out() -> None:
    if TREE.exists():
        shutil.rmtree(TREE)
    TREE.mkdir(parents=True)
    for entry in (ROOT / "src" / "gan_postproc").iterdir():
        (TREE / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name, folder in SUBPACKAGES.items():
        (TREE / name).symlink_to(folder, target_is_directory=True)


_lay_out()
