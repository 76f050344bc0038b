"""The fenced examples of README.md and docs/: found, grouped and run as a user would run them.

A fenced ```python, ```bash or ```console block is an example. The HTML comment on the line
before its fence (blank lines allowed between) says how to run it, options separated by ``;``::

    <!-- example: name=fit -->                  name it, so that a later block can continue it
    <!-- example: continues=fit -->             run after the named block of the same page, in the
                                                same folder and (Python) the same namespace
    <!-- example: file=my_models.py -->         not run: written to that file in the example's folder
    <!-- example: needs-gpu -->                 run only where CUDA is available
    <!-- example: needs-download=what it fetches -->   run only with GAN_POSTPROC_EXAMPLES_DOWNLOAD=1
    <!-- example: skip=why -->                  never run here; the reason is required

``skip`` and ``needs-download`` come last: their text runs to the end of the comment.

Blocks of other languages (toml, text, ...) are shown only, unless a ``file=`` marker writes them.
A block without ``continues`` starts a chain of its own: a fresh temporary folder and a fresh
Python process. This file is also the script that runs one chain (``python doc_examples.py
chain.json``), so that every example starts from a clean interpreter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_LANGUAGES = {"python", "bash", "console"}
MARKER = re.compile(r"^\s*<!--\s*example:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)\s*$")
KNOWN_OPTIONS = {"name", "continues", "file", "needs-gpu", "needs-download", "skip"}
#: Options whose value is prose: written last, they run to the end of the comment (semicolons included).
FREE_TEXT_OPTIONS = {"needs-download", "skip"}


@dataclass
class Example:
    """One fenced block: where it is, its language and source, and its marker options."""

    page: str
    line: int
    language: str
    source: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES or "file" in self.options


def parse_options(text: str, where: str) -> dict[str, str]:
    """``"name=a; needs-gpu"`` -> ``{"name": "a", "needs-gpu": ""}``; unknown options are refused."""
    options: dict[str, str] = {}
    rest = text.strip()
    while rest:
        part, _, rest = rest.partition(";")
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in KNOWN_OPTIONS:
            raise ValueError(f"{where}: unknown example option {key!r}; known: {sorted(KNOWN_OPTIONS)}")
        if key in FREE_TEXT_OPTIONS and rest:  # a reason may hold semicolons: it runs to the end
            value, rest = f"{value};{rest}", ""
        options[key] = value.strip()
        rest = rest.strip()
    return options


def find_examples(page: Path, root: Path) -> list[Example]:
    """Every fenced block of ``page`` with the marker before it (if any)."""
    lines = page.read_text(encoding="utf-8").split("\n")
    name = page.relative_to(root).as_posix()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, ticks, language = opening.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        marker = MARKER.match(lines[j]) if j >= 0 else None
        where = f"{name}:{i + 1}"
        options = parse_options(marker.group(1), where) if marker else {}
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end])
        found.append(Example(name, i + 1, language, textwrap.dedent(body) + "\n", options))
        i = end + 1
    return found


def chains(examples: list[Example]) -> list[list[Example]]:
    """Runnable examples grouped: each block without ``continues`` with every block continuing it (in order)."""
    result: list[list[Example]] = []
    by_name: dict[tuple[str, str], list[Example]] = {}
    for example in examples:
        if not example.runs:
            continue
        parent = example.options.get("continues")
        if parent:
            key = (example.page, parent)
            if key not in by_name:
                raise ValueError(f"{example.where}: continues={parent!r}, but no earlier example of this page is named so")
            chain = by_name[key]
            chain.append(example)
        else:
            chain = [example]
            result.append(chain)
        if "name" in example.options:
            by_name[(example.page, example.options["name"])] = chain
    return result


def why_not_run(chain: list[Example]) -> str | None:
    """The reason a chain cannot run here, or None when it runs."""
    for example in chain:
        options = example.options
        if "skip" in options:
            return f"{example.where}: {options['skip']}"
        if "needs-download" in options and os.environ.get("GAN_POSTPROC_EXAMPLES_DOWNLOAD") != "1":
            return f"{example.where} needs a download ({options['needs-download']}); set GAN_POSTPROC_EXAMPLES_DOWNLOAD=1 to run it"
        if "needs-gpu" in options:
            import torch

            if not torch.cuda.is_available():
                return f"{example.where} needs a CUDA GPU"
    return None


def console_commands(source: str) -> str:
    """The commands of a console transcript (lines starting with ``$ ``); output lines are dropped."""
    return "\n".join(line[2:] for line in source.splitlines() if line.startswith("$ ")) + "\n"


def run_chain(chain: list[dict[str, str]], folder: Path) -> None:
    """Run one chain's blocks in order in ``folder`` (the body of the subprocess)."""
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    namespace: dict[str, object] = {"__name__": "__main__"}
    for block in chain:
        start = time.perf_counter()
        if block["file"]:
            Path(block["file"]).parent.mkdir(parents=True, exist_ok=True)
            Path(block["file"]).write_text(block["source"], encoding="utf-8")
            continue
        print(f"--- {block['where']} ({block['language']})", flush=True)
        if block["language"] == "python":
            exec(compile(block["source"], block["where"], "exec"), namespace)  # noqa: S102 - the examples are ours
        else:
            source = block["source"] if block["language"] == "bash" else console_commands(block["source"])
            subprocess.run(["bash", "-e", "-o", "pipefail", "-c", source], check=True)
        print(f"--- {block['where']} took {time.perf_counter() - start:.1f} s", flush=True)


def as_json(chain: list[Example]) -> str:
    return json.dumps([{"where": e.where, "language": e.language, "source": e.source, "file": e.options.get("file", "")}
                       for e in chain])


if __name__ == "__main__":
    run_chain(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")), Path(sys.argv[2]))
