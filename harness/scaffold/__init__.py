"""``harness plugin new``: a pip-installable benchmark plug-in package, from Jinja2 templates.

The templates (``templates/*.j2``, shipped as package data) render a ``pyproject.toml`` with the
``harness`` entry point, a package whose module registers one small, real benchmark, a test that
runs it through :func:`harness.testing.check_benchmark`, and a README. ``pip install -e DIR`` makes
``harness plugins`` list it and ``harness run --suite NAME`` run it, with no other edit.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import HarnessError

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# template -> output path; {module} is the import name
FILES = {
    "pyproject.toml.j2": "pyproject.toml",
    "README.md.j2": "README.md",
    "plugin.py.j2": "{module}/__init__.py",
    "test_plugin.py.j2": "tests/test_{module}.py",
}


def new_plugin(name: str, parent: str | Path = ".") -> Path:
    """Render the package for benchmark ``name`` into ``parent/harness-<name>``; return that dir."""
    import jinja2

    if not NAME_RE.match(name):
        raise HarnessError(f"plug-in name {name!r}: use lower-case letters, digits and underscores, starting "
                           "with a letter (it becomes the --suite name and part of the import name)")
    module = f"harness_{name}"
    out = Path(parent) / f"harness-{name.replace('_', '-')}"
    if out.exists():
        raise HarnessError(f"{out}: already exists; choose another name or --dir")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    values = {"name": name, "module": module, "dist": f"harness-{name.replace('_', '-')}",
              "title": name.replace("_", " ").capitalize()}
    for template, target in FILES.items():
        path = out / target.format(module=module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(env.get_template(template).render(**values), encoding="utf-8")
    return out
