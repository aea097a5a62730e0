"""``harness run``: parse the command line, then :func:`harness.evaluate` does the work."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import HarnessError
from .common import check_out_dir, get_registry, parse_kv, positive


def _parse_limits(values: tuple[str, ...]) -> tuple[int | None, dict[str, int]]:
    """``--limit 50`` for all, ``--limit squad=20`` for one benchmark (the latter wins)."""
    limit, per_bench = None, {}
    for value in values:
        name, sep, raw = value.rpartition("=")
        try:
            n = int(raw)
        except ValueError:
            raise HarnessError(f"--limit {value!r}: expected a number or BENCHMARK=N, e.g. --limit squad=20") from None
        positive(f"--limit {name}".rstrip() if sep else "--limit", n)
        if sep:
            per_bench[name] = n
        else:
            limit = n
    return limit, per_bench


def _parse_options(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        bench, dot, opt = key.partition(".")
        if not sep or not dot:
            raise HarnessError(f"--option {value!r}: expected BENCHMARK.NAME=VALUE, e.g. humaneval.samples=10")
        try:
            parsed: Any = json.loads(raw)
        except json.JSONDecodeError:
            parsed = raw
        out.setdefault(bench, {})[opt.replace("-", "_")] = parsed
    return out


@click.command("run")
@click.option("--model", "model", default=None, help="Checkpoint dir, .pth, .gguf, HF dir, native:/hf: prefix; "
              "default: the embedded smollm2-135m-instruct.")
@click.option("--base", default=None, help="The base model to compare with (same forms as --model).")
@click.option("--suite", default="mmlu,squad", show_default=True,
              help="Comma-separated benchmarks, optionally with a subset: mmlu:marketing,squad.")
@click.option("--limit", "limits", multiple=True,
              help="At most N documents per subset: N for every benchmark, or BENCHMARK=N (repeatable).")
@click.option("--num-fewshot", type=int, default=None, help="Few-shot examples (default: each benchmark's).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--data-dir", multiple=True, help="BENCHMARK=DIR: a local copy of the full data set (repeatable).")
@click.option("--full", is_flag=True, help="Use the full data sets (hub or --data-dir), not the bundled subsets.")
@click.option("--option", "options", multiple=True, help="BENCHMARK.NAME=VALUE benchmark option (repeatable).")
@click.option("--allow-code-execution", is_flag=True, envvar="HARNESS_ALLOW_CODE_EXECUTION",
              help="Allow running generated code (HumanEval) in the sandbox.")
@click.option("--allow-weak-sandbox", is_flag=True, help="Accept rlimit-only isolation where bubblewrap is missing.")
@click.option("--model-args", default=None, help="Backend options for --model: KEY=VALUE[,KEY=VALUE...].")
@click.option("--base-args", default=None, help="Backend options for --base: KEY=VALUE[,KEY=VALUE...].")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16", "auto"]), default=None,
              help="Weights' dtype for hf: models (and PEFT adapters on them): --model-args/--base-args dtype=...")
@click.option("--judge", default=None, help="Judge model for alpaca_eval: a model spec or openai:URL.")
@click.option("--judge-model", default=None, help="Model name to send to an openai: judge endpoint.")
@click.option("--judge-api", type=click.Choice(["completions", "chat"]), default="completions", show_default=True,
              help="Which OpenAI endpoint an openai: judge uses.")
@click.option("--judge-api-key-env", default="OPENAI_API_KEY", show_default=True,
              help="Environment variable holding the judge endpoint's API key (never logged).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: runs/<model>-<time>).")
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def run(ctx: click.Context, model, base, suite, limits, num_fewshot, batch_size, seed, device, data_dir, full,
        options, allow_code_execution, allow_weak_sandbox, model_args, base_args, dtype, judge, judge_model, judge_api,
        judge_api_key_env, out, no_report, quiet) -> None:
    """Evaluate a model (and its base) on a suite of benchmarks."""
    from ..evaluate import default_out, evaluate
    from ..suite import parse_data_dirs

    limit, per_bench = _parse_limits(limits)
    positive("--num-fewshot", num_fewshot, allow_zero=True)
    positive("--batch-size", batch_size)
    registry = get_registry(ctx)
    judge_args: dict[str, Any] = {}
    if judge and judge.startswith("openai:"):  # one spelling: the openai backend's own options
        judge_args = {"model": judge_model, "api": judge_api, "api_key_env": judge_api_key_env}
    out = out if out is not None else default_out(model)
    check_out_dir(out)
    results = evaluate(
        model, base, suite, out=out, limit=limit, limits=per_bench, num_fewshot=num_fewshot, batch_size=batch_size,
        seed=seed, device=device, data_dirs=parse_data_dirs(data_dir, registry.benchmarks), full=full,
        options=_parse_options(options), model_args=_with_dtype(parse_kv(model_args, "--model-args"), dtype),
        base_args=_with_dtype(parse_kv(base_args, "--base-args"), dtype), judge=judge, judge_args=judge_args,
        allow_code_execution=bool(allow_code_execution), allow_weak_sandbox=allow_weak_sandbox,
        progress=not quiet, report=not no_report, registry=registry, command=sys.argv,
    )
    _print_summary(results)
    click.echo(f"results: {out / 'results.json'}", err=True)
    click.echo(f"samples: {out / 'samples'}/", err=True)
    if not no_report:
        click.echo(f"report:  {out / 'index.html'}", err=True)
    if any(b.get("error") for b in results["benchmarks"].values()):
        sys.exit(1)


def _with_dtype(args: dict[str, Any], dtype: str | None) -> dict[str, Any]:
    """``--dtype`` is a shorthand for ``dtype=`` in both models' options (an explicit one wins)."""
    return {"dtype": dtype, **args} if dtype else args


def _print_summary(results: dict) -> None:
    for name, bench in results["benchmarks"].items():
        if bench.get("error"):
            click.echo(f"{name:12s} ERROR {bench['error']}")
            continue
        for metric, entry in bench.get("metrics", {}).items():
            parts = [f"{name:12s} {metric:24s}"]
            for role in ("base", "model"):
                if entry.get(role) and entry[role].get("value") is not None:
                    se = entry[role].get("stderr")
                    parts.append(f"{role} {entry[role]['value']:.4f}" + (f" ±{se:.4f}" if se else ""))
            if "delta" in entry:
                d = entry["delta"]
                parts.append(f"delta {d['value']:+.4f} (p={d['p_value']:.3g}, {d['test']})")
            click.echo("  ".join(parts))
