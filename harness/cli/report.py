"""``harness report``: re-render one run, or compare several side by side."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import HarnessError
from ..files import check_out_dir
from .common import positive


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: the run itself; required for several runs).")
@click.option("--page-size", type=int, default=100, show_default=True, help="Samples per browser page.")
def report(runs: tuple[Path, ...], out: Path | None, page_size: int) -> None:
    """Re-render a run's report, or compare several runs side by side."""
    from ..report import compare_runs, render_report

    positive("--page-size", page_size)
    for run in runs:
        if not (run / "results.json").is_file():
            raise HarnessError(f"{run}: no results.json there; pass a run directory written by `harness run`")
    if out is not None or len(runs) == 1:
        check_out_dir(out if out is not None else runs[0], "--out" if out is not None else "the run directory")
    if len(runs) == 1:
        index = render_report(runs[0], out, page_size=page_size)
    elif out is None:
        raise HarnessError("--out: comparing several runs needs an output directory, e.g. --out runs/compare")
    else:
        index = compare_runs(list(runs), out)
    click.echo(f"report: {index}")
