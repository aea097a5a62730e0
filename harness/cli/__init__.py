"""The ``harness`` command line: a thin shell, one module per command group.

Each module holds standalone click commands; this group attaches them and turns a
``HarnessError`` into one line (:class:`.common.HarnessGroup`). Heavy imports (torch,
datasets) happen inside commands, so ``harness --help`` stays fast.
"""
from __future__ import annotations

import click

from .. import __version__
from .common import HarnessGroup
from .export import export
from .finetune import finetune, merge
from .generate import generate
from .judge import judge
from .listing import ls, plugins, tasks
from .plugin import plugin
from .report import report
from .review import review
from .run import run
from .score import score
from .serve import serve_command


@click.group(cls=HarnessGroup)
@click.version_option(__version__, prog_name="harness")
@click.option("--plugins-dir", type=click.Path(), envvar="HARNESS_PLUGINS_DIR",
              help="Also load plug-in modules (*.py) from this directory.")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None) -> None:
    """Fine-tune GPT-style models on instructions and evaluate them against their base."""
    ctx.obj = {"plugins_dir": plugins_dir}


for _command in (run, score, plugins, tasks, ls, report, finetune, generate, merge, serve_command, export, plugin, review, judge):
    cli.add_command(_command)


def main() -> None:  # pragma: no cover
    cli()
