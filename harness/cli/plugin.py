"""``harness plugin new NAME``: scaffold a pip-installable benchmark plug-in package."""
from __future__ import annotations

from pathlib import Path

import click


@click.group("plugin")
def plugin() -> None:
    """Tools for plug-in authors."""


@plugin.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the package directory harness-NAME.")
def new(name: str, parent: Path) -> None:
    """Create harness-NAME/: pyproject.toml (entry point), a benchmark, its test, a README."""
    from ..scaffold import new_plugin

    out = new_plugin(name, parent)
    click.echo(f"created {out}\nnext: pip install -e {out} && harness plugins && harness run --suite {name}")
