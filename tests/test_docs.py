"""The plug-in documentation (docs/plugins.md) keeps up with the plug-in contract, checked statically
(``ast`` over harness/hookspecs.py and harness/api/, no import of harness), as datasette's
tests/test_docs.py does for its plugin hooks:

- every hookspec (a function decorated ``@hookspec``) has a heading or code span with its name
  and each of its parameter names, e.g. ``register_models(register)``;
- every name in ``harness.api.__all__`` is mentioned in code (a code span or block);
- every public attribute and method of the classes ``harness.api`` exports is mentioned too,
  so a new ``Benchmark`` option or ``Model`` method does not go undocumented;
- the Python blocks in the document at least parse.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
HOOKSPECS = ROOT / "harness" / "hookspecs.py"
API = ROOT / "harness" / "api"


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def hookspecs() -> dict[str, list[str]]:
    """``{hook name: [parameter names]}`` for every ``@hookspec`` function in harness/hookspecs.py."""
    out = {}
    for node in _parse(HOOKSPECS).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                _decorator_name(d) == "hookspec" for d in node.decorator_list):
            a = node.args
            params = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
            params += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
            out[node.name] = params
    return out


def _api_init() -> ast.Module:
    return _parse(API / "__init__.py")


def api_all() -> list[str]:
    """``harness.api.__all__`` (assignments and ``+=`` of literal lists/tuples)."""
    names: list[str] = []
    for node in _api_init().body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            names += list(ast.literal_eval(node.value))
    return names


def api_classes() -> dict[str, ast.ClassDef]:
    """The classes named in ``__all__`` that harness/api/*.py defines, by name."""
    exported = set(api_all())
    where = {}
    for node in _api_init().body:  # from .benchmark import Benchmark, ...
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            for alias in node.names:
                where[alias.asname or alias.name] = API / f"{node.module}.py"
    out = {}
    for name, path in sorted(where.items()):
        if name in exported and path.exists():
            for node in _parse(path).body:
                if isinstance(node, ast.ClassDef) and node.name == name:
                    out[name] = node
    return out


def public_members(cls: ast.ClassDef) -> list[str]:
    """Class attributes (annotated or assigned), dataclass fields, methods and properties."""
    names = []
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.append(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return [n for n in dict.fromkeys(names) if not n.startswith("_")]


# --- what the document says -----------------------------------------------------------------------

def _doc() -> str:
    return DOC.read_text(encoding="utf-8") if DOC.exists() else ""


def _fences(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced code block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)


def _prose(text: str) -> str:
    return re.sub(r"^```\w*\n.*?^```", "", text, flags=re.S | re.M)


def headings(text: str) -> list[str]:
    return [line.lstrip("#").strip() for line in _prose(text).splitlines() if line.startswith("#")]


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", _prose(text))


def code_text(text: str) -> str:
    """All code in the document: inline spans and fenced blocks."""
    return "\n".join([*code_spans(text), *(body for _, body in _fences(text))])


HOOKS = hookspecs()
ALL = api_all()
MEMBERS = [(cls, member) for cls, node in api_classes().items() for member in public_members(node)]


def test_the_contract_was_found():
    """Guards the parametrised checks below against silently checking nothing."""
    assert DOC.exists(), f"{DOC.relative_to(ROOT)} is missing"
    assert {"register_benchmarks", "register_models"} <= set(HOOKS), HOOKS
    assert {"Benchmark", "Model", "hookimpl"} <= set(ALL), ALL
    assert ("Benchmark", "process") in MEMBERS


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_hookspecs_are_documented(hook):
    """A heading or code span like ``name(param, ...)`` (annotations and defaults allowed)."""
    text = _doc()
    params = HOOKS[hook]
    candidates = [h for h in [*headings(text), *code_spans(text)] if re.search(rf"\b{hook}\(", h)]
    assert candidates, f"docs/plugins.md: no heading or code span names the hook {hook}({', '.join(params)})"
    for c in candidates:
        inside = c.split(f"{hook}(", 1)[1].split(")", 1)[0]
        if set(params) <= set(re.findall(r"\w+", inside)):
            return
    pytest.fail(f"docs/plugins.md: {hook} is named ({candidates}) but never with all its parameters "
                f"{params}; e.g. a heading `{hook}({', '.join(params)})`")


@pytest.mark.parametrize("name", ALL)
def test_api_names_are_documented(name):
    assert re.search(rf"\b{re.escape(name)}\b", code_text(_doc())), (
        f"docs/plugins.md does not mention harness.api.{name} in code (`{name}`)")


@pytest.mark.parametrize("cls,member", MEMBERS, ids=[f"{c}.{m}" for c, m in MEMBERS])
def test_api_class_members_are_documented(cls, member):
    assert re.search(rf"\b{re.escape(member)}\b", code_text(_doc())), (
        f"docs/plugins.md does not mention {cls}.{member} in code (`{member}`)")


def test_python_examples_parse():
    for i, (lang, body) in enumerate(_fences(_doc())):
        if lang == "python":
            ast.parse(body, filename=f"docs/plugins.md python block {i + 1}")
