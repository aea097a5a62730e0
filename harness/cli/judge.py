"""``harness judge check``: measure a judge before believing it.

The work is the alpaca_eval plug-in's (``AlpacaEval.check_judge``: agreement with
GPT-4-turbo's shipped annotations, position and length bias); this command loads the
judge like ``harness run --judge`` does, prints the figures and writes them as JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import HarnessError
from .common import get_registry, load, parse_kv, positive


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


@click.group("judge")
def judge() -> None:
    """Judges for alpaca_eval: measure one against reference annotations."""


@judge.command("check")
@click.option("--judge", "spec", default=None, help="Judge model spec or openai:URL (default: the embedded model).")
@click.option("--judge-model", default=None, help="Model name to send to an openai: judge endpoint.")
@click.option("--judge-api", type=click.Choice(["completions", "chat"]), default="completions", show_default=True)
@click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True)
@click.option("--judge-args", default=None, help="Backend options for the judge: KEY=VALUE[,...] (e.g. timeout=600).")
@click.option("--n", "n", type=int, default=20, show_default=True, help="Reference pairs, balanced between sides.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-chars", type=int, default=3000, show_default=True,
              help="Leave out pairs longer than this (instruction + both outputs); 0: none.")
@click.option("--method", type=click.Choice(["auto", "logprobs", "generate"]), default="auto", show_default=True)
@click.option("--judge-cache", default=None, help="sqlite file for judge calls, or off (default: the judge cache).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("judge-check.json"), show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def check(ctx: click.Context, spec, judge_model, judge_api, judge_api_key_env, judge_args, n, seed, max_chars, method,
          judge_cache, out, quiet) -> None:
    """Agreement with GPT-4-turbo on alpaca-7b vs gpt4_1106_preview, position and length bias."""
    from ..files import atomic_write_json

    positive("--n", n)
    positive("--max-chars", max_chars, allow_zero=True)
    bench = get_registry(ctx).benchmarks.get("alpaca_eval")
    if bench is None or not hasattr(bench, "check_judge"):
        raise HarnessError("harness judge check needs the alpaca_eval plug-in; see `harness plugins`")
    args: dict[str, Any] = {}
    if spec and spec.startswith("openai:"):
        args = {"model": judge_model, "api": judge_api, "api_key_env": judge_api_key_env}
    args.update(parse_kv(judge_args, "--judge-args"))
    model = load(ctx, spec, **args)
    try:
        res = bench.check_judge(model, n=n, seed=seed, max_chars=max_chars, method=method, judge_cache=judge_cache,
                                progress=not quiet)
    finally:
        close = getattr(model, "close", None)
        if callable(close):
            close()
    ci = res.get("agreement_ci95") or [None, None]
    click.echo(f"judge {model.info.spec or '(default model)'} ({res['fingerprint']}), method {res['method_used']}, "
               f"{res['n_pairs']} pairs in both orders{' (from the judge cache)' if res.get('cached') else ''}")
    click.echo(f"  agreement with GPT-4-turbo  {_pct(res['agreement'])}  95% CI [{_pct(ci[0])}, {_pct(ci[1])}]  "
               f"chance {_pct(res['chance'])}")
    click.echo(f"  position flips              {_pct(res['position_flip_rate'])} of {res['n_decided_both_orders']} "
               f"pairs  (first-shown answer wins {_pct(res['first_position_rate'])})")
    click.echo(f"  prefers the longer answer   {_pct(res['longer_rate'])}  (GPT-4-turbo on these pairs: "
               f"{_pct(res['reference_longer_rate'])})")
    click.echo(f"  judge failed                {res['judge_failed']} judgements")
    click.echo(("" if res["reliable"] else "WARNING: ") + res["verdict"])
    atomic_write_json(out, res)
    click.echo(f"written: {out}", err=True)
