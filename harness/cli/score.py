"""``harness score BENCH ...``: a benchmark's own metric over predictions produced elsewhere."""
from __future__ import annotations

import json
import os
from typing import Any

import click

from ..errors import HarnessError
from ..plugins import PLUGIN_ERRORS
from .common import get_registry, load


@click.command("score", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("benchmark")
@click.option("--judge", default=None, help="Judge for judged benchmarks (alpaca_eval): a model spec or openai:URL "
              "(default: the embedded model).")
@click.option("--judge-model", default=None, help="Model name to send to an openai: judge endpoint.")
@click.pass_context
def score(ctx: click.Context, benchmark: str, judge: str | None, judge_model: str | None) -> None:
    """Score predictions produced elsewhere with a benchmark's own metric; prints JSON.

    Options depend on the benchmark, e.g. `harness score squad --data dev-v2.0.json
    --predictions preds.json [--na-prob na.json]`; `harness tasks NAME` lists them.
    """
    from ..api import RunContext
    from ..errors import did_you_mean
    from ..sandbox import make_sandbox

    registry = get_registry(ctx)
    if benchmark not in registry.benchmarks:
        raise HarnessError(f"unknown benchmark {benchmark!r}{did_you_mean(benchmark, registry.benchmarks)}")
    bench = registry.benchmarks[benchmark]
    allowed = dict(getattr(bench, "score_options", {}) or {})
    kwargs: dict[str, Any] = {}
    args = list(ctx.args)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            raise HarnessError(f"harness score {benchmark}: unexpected argument {arg!r}; options: "
                               + ", ".join("--" + k.replace("_", "-") for k in allowed))
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if key not in allowed:
            raise HarnessError(f"harness score {benchmark}: unknown option --{key.replace('_', '-')}"
                               f"{did_you_mean(key, allowed)}; options: "
                               + ", ".join("--" + k.replace("_", "-") for k in allowed))
        if not eq:  # a bare flag (e.g. --allow-code-execution) means "1"
            value = args.pop(0) if args and not args[0].startswith("--") else "1"
        kwargs[key] = value
    try:
        judge_args = {"model": judge_model} if judge and judge.startswith("openai:") else {}
        context = RunContext(sandbox_factory=make_sandbox, progress=True,
                             judge_factory=lambda: load(ctx, judge, **judge_args))  # built only when asked for
        result = bench.score_files(context, **kwargs)
    except NotImplementedError as exc:
        raise HarnessError(str(exc)) from None
    except TypeError as exc:
        raise HarnessError(f"harness score {benchmark}: {exc}") from None
    except HarnessError:
        raise
    except PLUGIN_ERRORS as exc:  # the plug-in's bug, blamed by name (HARNESS_DEBUG=1: the traceback)
        if os.environ.get("HARNESS_DEBUG"):
            raise
        raise HarnessError(f"harness score {benchmark}: plug-in {registry.benchmark_plugin.get(benchmark, benchmark)!r} "
                           f"failed in score_files(): {type(exc).__name__}: {exc}") from None
    click.echo(json.dumps(result, indent=2))
