"""MkDocs hook: the figures in benchmarks/results/ are served as results/... on the site.

The pages link a figure where the benchmarks write it, relative to the page
(``../benchmarks/results/NAME.png`` from docs/, ``../../benchmarks/results/...`` one level down), so
the link also works when the page is read on the repository's web view. On the site those links
point to ``results/NAME.png``, a copy of the file added to the build. Nothing is fetched.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
SERVED = {".png", ".svg", ".jpg"}
LINK = re.compile(r"\]\(((?:\.\./)+)benchmarks/results/")


def on_files(files: Files, config) -> Files:
    for path in sorted(RESULTS.rglob("*")):
        if path.suffix in SERVED:
            uri = "results/" + path.relative_to(RESULTS).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    depth = posixpath.dirname(page.file.src_uri).count("/") + bool(posixpath.dirname(page.file.src_uri))
    here = "../" * depth
    return LINK.sub(lambda m: f"]({here}results/" if len(m[1]) == 3 * (depth + 1) else m[0], markdown)
