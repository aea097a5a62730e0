"""The import rules that keep the layout layered, checked statically (``ast``, no import of
harness), on every ``.py`` under ``harness/`` and ``plugins/`` (import name ``harness_plugins``).

Rules:

- ``harness/api/`` is the public API: it imports nothing of harness except ``harness.errors``,
  ``harness.hookspecs`` and itself, so a plug-in importing it never drags in torch or the engine.
- A plug-in (``plugins/**``) imports only ``harness.api`` (and its submodules), ``harness.testing``
  and its own package (``harness_plugins.<same benchmark>``): it could be shipped on its own.
  That excludes ``import harness`` (use ``harness.api.hookimpl``), ``harness.errors`` (re-exported by
  ``harness.api``), ``harness_tasks`` (use ``harness.api.data.bundled``) and other built-in plug-ins.
- ``harness/models/`` never imports the layers above it: engine, evaluate, report, cli, finetune.
- Nothing imports ``harness.cli`` but ``harness.cli`` itself and ``harness/__main__.py``.

Imports inside functions count (they run too); imports under ``if TYPE_CHECKING:`` do not.
``importlib.import_module`` calls are not seen. ``test_cycles`` builds its graph from the same
scanner (``module_index``, ``scan_imports``).
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# import name -> source directory (setup.cfg's package_dir)
SOURCES = {"harness": ROOT / "harness", "harness_plugins": ROOT / "plugins"}
SKIP_DIRS = {"__pycache__", "assets", "build"}
# the project's own top-level packages; anything else is stdlib or third-party
FIRST_PARTY = ("harness", "harness_plugins", "harness_tasks", "harness_reports")


@dataclass(frozen=True)
class Module:
    name: str  # dotted import name
    path: Path
    is_package: bool  # an __init__.py

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Import:
    importer: Module
    line: int
    target: str  # the dotted module the statement binds (resolved, absolute)


def under(name: str, prefix: str) -> bool:
    """``name`` is ``prefix`` or one of its submodules."""
    return name == prefix or name.startswith(prefix + ".")


def module_index(sources: dict[str, Path] = SOURCES) -> dict[str, Module]:
    """Every module of the scanned packages by dotted name."""
    out: dict[str, Module] = {}
    for top, directory in sources.items():
        for path in sorted(directory.rglob("*.py")):
            rel = path.relative_to(directory)
            if SKIP_DIRS.intersection(rel.parts[:-1]):
                continue
            parts = [top, *rel.parts[:-1]]
            is_package = path.name == "__init__.py"
            if not is_package:
                parts.append(path.stem)
            name = ".".join(parts)
            out[name] = Module(name, path, is_package)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:`` (their ``else`` runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield stmt
                yield from _nodes(stmt)
        else:
            yield child
            yield from _nodes(child)


def resolve_imports(source: str, module: str, is_package: bool, known: set[str] | dict,
                    filename: str = "<source>") -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``source``, the module written as ``module``.

    ``import a.b`` -> ``a.b``. ``from M import n`` -> ``M.n`` when that is a known module (a
    submodule), else ``M`` (``n`` is a name in M's namespace, for a package its ``__init__``).
    Relative imports resolve against the module's package (the module itself for an ``__init__``).
    """
    tree = ast.parse(source, filename=filename)
    package = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[int, str]] = []
    for node in _nodes(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    raise ValueError(f"{filename}:{node.lineno}: relative import beyond the top-level package")
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets: list[str] = []
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                target = sub if alias.name != "*" and sub in known else mod
                if target not in targets:
                    targets.append(target)
            out.extend((node.lineno, t) for t in targets)
    return out


def scan_imports(modules: dict[str, Module] | None = None) -> list[Import]:
    modules = module_index() if modules is None else modules
    out: list[Import] = []
    for mod in modules.values():
        source = mod.path.read_text(encoding="utf-8")
        for line, target in resolve_imports(source, mod.name, mod.is_package, modules, mod.rel):
            out.append(Import(mod, line, target))
    return out


# --- the rules: each says why an import breaks it, or None --------------------------------------

def _first_party(name: str) -> bool:
    return any(under(name, top) for top in FIRST_PARTY)


def rule_api(imp: Import) -> str | None:
    if not under(imp.importer.name, "harness.api") or not _first_party(imp.target):
        return None
    if any(under(imp.target, ok) for ok in ("harness.api", "harness.errors", "harness.hookspecs")):
        return None
    return "harness.api imports only harness.errors, harness.hookspecs and harness.api.*"


def rule_plugins(imp: Import) -> str | None:
    parts = imp.importer.name.split(".")
    if parts[0] != "harness_plugins" or not _first_party(imp.target):
        return None
    own = ".".join(parts[:2])  # harness_plugins.<benchmark>; plugins/__init__.py: harness_plugins
    if under(imp.target, "harness.api") or under(imp.target, "harness.testing"):
        return None
    if imp.target == own or (own != "harness_plugins" and under(imp.target, own)):
        return None
    if under(imp.target, "harness_plugins"):
        return f"a plug-in imports no other built-in plug-in (own package: {own})"
    return f"a plug-in imports only harness.api, harness.testing and its own package {own}"


MODELS_FORBIDDEN = ("harness.engine", "harness.evaluate", "harness.report", "harness.cli", "harness.finetune")


def rule_models(imp: Import) -> str | None:
    if not under(imp.importer.name, "harness.models"):
        return None
    # harness.report_* are the pre-package report modules (harness/report_*.py)
    if any(under(imp.target, f) for f in MODELS_FORBIDDEN) or imp.target.startswith("harness.report_"):
        return "harness.models imports none of engine, evaluate, report, cli, finetune"
    return None


def rule_cli(imp: Import) -> str | None:
    if not under(imp.target, "harness.cli"):
        return None
    if under(imp.importer.name, "harness.cli") or imp.importer.name == "harness.__main__":
        return None
    return "nothing imports harness.cli but harness.cli itself and harness/__main__.py"


RULES: dict[str, Callable[[Import], str | None]] = {
    "api": rule_api, "plugins": rule_plugins, "models": rule_models, "cli": rule_cli,
}


def violations(imports: list[Import]) -> list[str]:
    out = []
    for imp in sorted(imports, key=lambda i: (i.importer.rel, i.line, i.target)):
        for key, rule in RULES.items():
            why = rule(imp)
            if why:
                out.append(f"{imp.importer.rel}:{imp.line} imports {imp.target} (rule {key}: {why})")
    return out


# --- the checks ------------------------------------------------------------------------------------

def test_import_layering():
    modules = module_index()
    tops = {name.split(".")[0] for name in modules}
    assert tops == set(SOURCES), f"scanned no module in {set(SOURCES) - tops}"
    found = violations(scan_imports(modules))
    assert not found, f"{len(found)} import(s) break the layering (docs/ARCHITECTURE.md):\n" + "\n".join(found)


# --- the checker itself, on made-up sources --------------------------------------------------------

KNOWN = {"harness", "harness.api", "harness.api.data", "harness.errors", "harness.models",
         "harness.models.gpt2", "harness_plugins", "harness_plugins.squad", "harness_plugins.squad.metric"}


def _resolve(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    return resolve_imports(source, module, is_package, KNOWN)


def test_relative_imports_resolve_against_the_package():
    src = "from . import metric\nfrom .metric import f\nfrom .. import squad\nfrom ..squad import x\n"
    # in a package __init__, "." is the package itself
    assert _resolve(src, "harness_plugins.squad", is_package=True) == [
        (1, "harness_plugins.squad.metric"), (2, "harness_plugins.squad.metric"),
        (3, "harness_plugins.squad"), (4, "harness_plugins.squad")]
    # in a plain module, "." is the module's package
    assert _resolve("from . import metric\nfrom ..errors import E\n", "harness_plugins.squad.x") == [
        (1, "harness_plugins.squad.metric"), (2, "harness_plugins.errors")]
    assert _resolve("from ..errors import HarnessError\nfrom . import data, thing\n", "harness.api.model") == [
        (1, "harness.errors"), (2, "harness.api.data"), (2, "harness.api")]


def test_from_import_of_a_submodule_vs_a_name():
    assert _resolve("from harness import errors, hookimpl\nimport harness.models.gpt2 as g\n", "x") == [
        (1, "harness.errors"), (1, "harness"), (2, "harness.models.gpt2")]
    assert _resolve("from harness.models.gpt2 import GPT2\n", "x") == [(1, "harness.models.gpt2")]


def test_function_imports_count_and_type_checking_ones_do_not():
    src = (
        "import typing\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from harness.engine import run\n"
        "if typing.TYPE_CHECKING:\n    import harness.report\nelse:\n    import harness.errors\n"
        "def f():\n    from harness.models import gpt2\n    class C:\n        import harness.cli\n"
    )
    assert [t for _, t in _resolve(src, "x")] == [
        "typing", "typing", "harness.errors", "harness.models.gpt2", "harness.cli"]


def _check(importer: str, target: str, is_package: bool = False) -> list[str]:
    mod = Module(importer, ROOT / "x.py", is_package)
    return [key for key, rule in RULES.items() if rule(Import(mod, 1, target))]


def test_rules_on_examples():
    assert _check("harness.api.data", "harness.errors") == []
    assert _check("harness.api.data", "harness.api.benchmark") == []
    assert _check("harness.api.data", "json") == []
    assert _check("harness.api", "harness", is_package=True) == ["api"]
    assert _check("harness.api.model", "harness.prompts") == ["api"]
    assert _check("harness_plugins.squad", "harness.api.data", is_package=True) == []
    assert _check("harness_plugins.squad.metric", "harness_plugins.squad") == []
    assert _check("harness_plugins.squad.metric", "harness.testing") == []
    assert _check("harness_plugins.squad", "numpy") == []
    assert _check("harness_plugins.squad", "harness_plugins.squad_metric") == ["plugins"]
    assert _check("harness_plugins.alpaca_eval", "harness_plugins.mmlu") == ["plugins"]
    assert _check("harness_plugins.mmlu", "harness") == ["plugins"]
    assert _check("harness_plugins.mmlu", "harness.errors") == ["plugins"]
    assert _check("harness_plugins.mmlu", "harness_tasks") == ["plugins"]
    assert _check("harness_plugins.mmlu", "harness.cli") == ["plugins", "cli"]
    assert _check("harness.models.hf", "harness.finetune.formats") == ["models"]
    assert _check("harness.models.hf", "harness.report_bench") == ["models"]
    assert _check("harness.models.hf", "harness.reporting") == []
    assert _check("harness.models.hf", "harness.prompts") == []
    assert _check("harness.engine", "harness.cli") == ["cli"]
    assert _check("harness.cli.run", "harness.cli") == []
    assert _check("harness.__main__", "harness.cli") == []
    assert _check("harness.finetune.cli", "harness.cli.main") == ["cli"]
