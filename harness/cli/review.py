"""``harness review RUN [RUN2]``: blind pairwise review in the browser, votes to RUN/reviews.jsonl."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import HarnessError


@click.command("review")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("other", required=False, type=click.Path(path_type=Path))
@click.option("--benchmark", "benchmarks", multiple=True,
              help="Review only these benchmarks (default: every one with free-text answers).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8790, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the left/right order.")
def review(run: Path, other: Path | None, benchmarks: tuple[str, ...], host: str, port: int, seed: int) -> None:
    """Compare answers blind, one prompt at a time: RUN's model vs its base, or RUN's model vs RUN2's.

    Keys: A / B (or arrows) for the better answer, T tie, S skip, U undo. Every vote is
    appended to RUN/reviews.jsonl at once; reopening resumes where you stopped.
    """
    from ..review import VoteLog, load_items
    from ..review.server import Session, make_server, review_path

    items = load_items(run, other, list(benchmarks) or None, seed=seed)
    try:
        log = VoteLog(review_path(run))
    except OSError as exc:
        raise HarnessError(f"{review_path(run)}: cannot read ({exc.strerror})") from None
    session = Session(items, log)
    server = make_server(session, host, port)
    state = session.state()
    url = f"http://{host}:{server.server_address[1]}/"
    click.echo(f"reviewing {state['total']} prompts ({state['done']} already done): open {url}", err=True)
    click.echo(f"votes: {review_path(run)}  (Ctrl-C to stop; nothing is lost)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    done = session.state()
    click.echo(f"{done['done']} / {done['total']} reviewed; votes in {review_path(run)}", err=True)
