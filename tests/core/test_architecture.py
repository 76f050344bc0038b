"""The architecture, checked on the import graph: a core that knows no method and no framework, no circles.

The graph is built with ``ast`` from the source of every module under ``src/gan_postproc`` (the core),
``plugins/`` (methods), ``integrations/`` (frameworks) and ``benchmarks/``, nothing is imported. An edge
``a -> b`` is any ``import`` statement of ``a`` that names ``b``, wherever it stands: at module level,
inside a function or method (a lazy import is still a dependency), or in a ``try``. Imports under
``if TYPE_CHECKING:`` are left out: they are never executed, they only name types for the checker.
``from package import name`` is an edge to ``package.name`` when that is a module, else to ``package``.
Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``; those implicit edges are not drawn,
since every package's facade would otherwise form a circle with every module below it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOTS = {
    "gan_postproc": ROOT / "src" / "gan_postproc",
    "gan_postproc.plugins": ROOT / "plugins",
    "gan_postproc.integrations": ROOT / "integrations",
    "gan_postproc.benchmarks": ROOT / "benchmarks",
}
OUTSIDE_CORE = ("gan_postproc.plugins", "gan_postproc.integrations", "gan_postproc.benchmarks")
#: Top-level modules of the generator frameworks an integration wraps. NVlabs' StyleGAN2-ADA / StyleGAN3
#: import as dnnlib, torch_utils, legacy and training.networks*; rosinality's as model and op; StudioGAN's
#: src/ as models, utils, config; the others are pip packages.
FRAMEWORKS = frozenset({
    "diffusers", "pytorch_pretrained_biggan", "torch_mimicry",
    "dnnlib", "torch_utils", "legacy", "training",
    "model", "op",
    "models", "utils", "config",
})
#: Calls that import the module named by their first argument (importlib, and gan_postproc.optional's helpers).
IMPORT_CALLS = frozenset({"import_module", "__import__", "find_spec", "require", "require_installed"})
#: A string in core code that names a module outside the core (an importlib target, a package to scan).
OUTSIDE_CORE_STRING = re.compile(r"^gan_postproc\.(plugins|integrations|benchmarks)\b")
#: Entry-point group names, which look like module paths but name package metadata (pyproject.toml).
ENTRY_POINT_GROUPS = frozenset({"gan_postproc.benchmarks"})


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: list[tuple[str, int]] = field(default_factory=list)  # (imported dotted name, line)
    strings: list[tuple[str, int]] = field(default_factory=list)  # non-docstring string constants
    import_strings: list[tuple[str, int]] = field(default_factory=list)  # string arguments of import calls


def _module_name(package: str, path: Path) -> tuple[str, bool]:
    parts = path.relative_to(ROOTS[package]).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join((package, *parts[:-1])), True
    return ".".join((package, *parts)), False


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (of the module, a class or a function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _walk_executed(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk_executed(other)
            continue
        yield child
        yield from _walk_executed(child)


def _absolute(module: Module, level: int, target: str | None) -> str:
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _parse(module: Module, known: set[str]) -> None:
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    docstrings = _docstrings(tree)
    for node in _walk_executed(tree):
        if isinstance(node, ast.Import):
            module.imports.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module) if node.level else (node.module or "")
            for alias in node.names:
                # ``from package import submodule`` imports the submodule; ``from module import name`` the module
                full = f"{base}.{alias.name}"
                module.imports.append((full if full in known else base, node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            module.strings.append((node.value, getattr(node, "lineno", 0)))
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            function = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if function in IMPORT_CALLS:
                module.import_strings.append((node.args[0].value, node.lineno))


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for package, base in ROOTS.items():
        for path in sorted(base.rglob("*.py")):
            if package == "gan_postproc" and path.relative_to(base).parts[0] in ("plugins", "integrations", "benchmarks"):
                continue
            name, is_package = _module_name(package, path)
            found[name] = Module(name, path, is_package)
    for module in found.values():
        _parse(module, set(found))
    return found


MODULES = _modules()


def _edges(module: Module) -> dict[str, int]:
    """Project modules ``module`` imports, with the first line that imports each."""
    edges: dict[str, int] = {}
    for name, line in module.imports:
        if name in MODULES and name != module.name:
            edges.setdefault(name, line)
    return edges


GRAPH = {name: _edges(module) for name, module in MODULES.items()}


def _is_core(name: str) -> bool:
    return not name.startswith(OUTSIDE_CORE)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return components


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].path.relative_to(ROOT)}:{line}"


def test_the_graph_covers_every_part_of_the_project():
    names = set(MODULES)
    assert "gan_postproc.pipeline.chain" in names and "gan_postproc.plugins.density_ratio.drs" in names
    assert any(name.startswith("gan_postproc.integrations.") for name in names)
    assert any(name.startswith("gan_postproc.benchmarks.") for name in names)
    assert sum(len(edges) for edges in GRAPH.values()) > 300  # the parser does find imports


def test_no_core_module_imports_a_plugin_an_integration_or_a_benchmark():
    bad = [
        f"{_where(name, line)} {name} -> {target}"
        for name, edges in GRAPH.items() if _is_core(name)
        for target, line in edges.items() if not _is_core(target)
    ]
    assert not bad, "the core must not import methods, frameworks or benchmarks:\n" + "\n".join(bad)


def test_no_core_module_names_a_plugin_an_integration_or_a_benchmark_in_a_string():
    """Strings (outside docstrings) such as importlib targets or a package to scan: a dynamic import is still an import."""
    bad = [
        f"{_where(name, line)} {text!r}"
        for name, module in MODULES.items() if _is_core(name)
        for text, line in module.strings if OUTSIDE_CORE_STRING.match(text) and text not in ENTRY_POINT_GROUPS
    ]
    assert not bad, "the core must not name modules outside it:\n" + "\n".join(bad)


def test_there_are_no_import_cycles():
    cycles = _cycles()
    assert not cycles, "import cycles (module level and function level):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def _owner(name: str) -> str:
    """The package that owns a private module: ``a.b._c`` and ``a.b._c.d`` belong to ``a.b``."""
    parts = name.split(".")
    first_private = next(i for i, part in enumerate(parts) if part.startswith("_"))
    return ".".join(parts[:first_private])


def test_private_modules_are_imported_only_from_inside_their_package():
    """A family's (or any package's) ``_x`` module is its own business; outside code goes through the public face."""
    bad = []
    for name, edges in GRAPH.items():
        for target, line in edges.items():
            if any(part.startswith("_") and not part.startswith("__") for part in target.split(".")):
                owner = _owner(target)
                if name != owner and not name.startswith(owner + "."):
                    bad.append(f"{_where(name, line)} {name} -> {target}")
    assert not bad, "private modules imported from outside their package:\n" + "\n".join(bad)


def _framework_imports(module: Module) -> list[tuple[str, int]]:
    found = [(name, line) for name, line in module.imports if name.split(".")[0] in FRAMEWORKS]
    found += [(text, line) for text, line in module.import_strings if text.split(".")[0] in FRAMEWORKS]
    return found


@pytest.mark.parametrize("part", ["core", "methods"])
def test_no_method_and_no_core_module_imports_a_framework(part):
    """Frameworks live in integrations/ only (import calls with a literal, ``importlib.import_module("diffusers")``, count)."""
    inside = (lambda name: _is_core(name)) if part == "core" else (lambda name: name.startswith("gan_postproc.plugins"))
    bad = [
        f"{_where(name, line)} {name} -> {target}"
        for name, module in MODULES.items() if inside(name)
        for target, line in _framework_imports(module)
    ]
    assert not bad, f"{part} modules importing a framework:\n" + "\n".join(bad)


def test_integrations_do_not_import_each_other():
    def framework(name: str) -> str:
        return name.split(".")[2] if name.count(".") >= 2 else name

    bad = [
        f"{_where(name, line)} {name} -> {target}"
        for name, edges in GRAPH.items() if name.startswith("gan_postproc.integrations.")
        for target, line in edges.items()
        if target.startswith("gan_postproc.integrations.") and framework(target) != framework(name)
    ]
    assert not bad, "an integration importing another:\n" + "\n".join(bad)


def test_methods_do_not_import_integrations_or_benchmarks():
    bad = [
        f"{_where(name, line)} {name} -> {target}"
        for name, edges in GRAPH.items() if name.startswith("gan_postproc.plugins")
        for target, line in edges.items() if target.startswith(("gan_postproc.integrations", "gan_postproc.benchmarks"))
    ]
    assert not bad, "methods importing frameworks' adapters or benchmarks:\n" + "\n".join(bad)


def test_the_checks_find_what_they_look_for():
    """The checks are not vacuous: on a made-up graph they find a cycle, a core -> plugin edge and a framework import."""
    global GRAPH
    saved = GRAPH
    try:
        GRAPH = {"gan_postproc.a": {"gan_postproc.b": 1}, "gan_postproc.b": {"gan_postproc.a": 2}, "gan_postproc.c": {}}
        assert _cycles() == [["gan_postproc.a", "gan_postproc.b"]]
    finally:
        GRAPH = saved
    fake = Module("gan_postproc.fake", ROOT / "fake.py", False)
    fake.imports = [("diffusers.pipelines", 3), ("torch", 4)]
    fake.import_strings = [("torch_mimicry", 5)]
    fake.strings = [("config", 6), ("gan_postproc.plugins.drs", 7)]
    assert [t for t, _ in _framework_imports(fake)] == ["diffusers.pipelines", "torch_mimicry"]
    assert [s for s, _ in fake.strings if OUTSIDE_CORE_STRING.match(s)] == ["gan_postproc.plugins.drs"]
    assert _owner("gan_postproc.plugins.collaborative._files") == "gan_postproc.plugins.collaborative"
