"""``harness run``: parse the command line, then :func:`harness.evaluate` does the work."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import HarnessError
from ..files import check_out_dir
from .common import device_option, get_registry, parse_kv, positive


def _parse_limits(values: tuple[str, ...]) -> tuple[int | float | None, dict[str, int | float]]:
    """``--limit 50`` for all, ``--limit squad=20`` for one benchmark (the latter wins); ``--limit 0.1``
    is a tenth of each subset, as lm-eval's."""
    limit: int | float | None = None
    per_bench: dict[str, int | float] = {}
    for value in values:
        name, sep, raw = value.rpartition("=")
        try:
            n: int | float = int(raw)
        except ValueError:
            try:
                n = float(raw)
            except ValueError:
                raise HarnessError(f"--limit {value!r}: expected a number or BENCHMARK=N (a fraction such as 0.1 "
                                   "takes that share of each subset), e.g. --limit squad=20") from None
            if not 0 < n < 1:
                raise HarnessError(f"--limit {value!r}: a fraction must be between 0 and 1 "
                                   "(or give a whole number)") from None
        if isinstance(n, int):
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
@click.option("--suite", "--tasks", "suite", default="mmlu,squad", show_default=True,
              help="Comma-separated benchmarks, optionally with a subset: mmlu:marketing,squad,lm-eval:hellaswag.")
@click.option("--limit", "limits", multiple=True,
              help="At most N documents per subset (0.1: a tenth of each): N for every benchmark, or "
              "BENCHMARK=N (repeatable).")
@click.option("--num-fewshot", type=int, default=None, help="Few-shot examples (default: each benchmark's).")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--device", default="cpu", show_default=True, callback=device_option,
              help="cpu, cuda, cuda:N, mps or auto.")
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
@click.option("--out", "--output-path", "out", type=click.Path(path_type=Path), default=None,
              help="Output directory (default: runs/<model>-<time>); OUT/lm-eval/ holds lm-eval's layout.")
@click.option("--include-path", multiple=True, help="A directory of lm-eval YAML tasks for lm-eval:TASK (repeatable).")
@click.option("--apply-chat-template", is_flag=True, help="Every prompt through each model's chat template.")
@click.option("--system-instruction", default=None, help="System turn with --apply-chat-template (and lm-eval tasks).")
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path), default=None,
              help="Request cache file, shared across runs (default: OUT/cache.sqlite).")
@click.option("--no-cache", is_flag=True, help="Do not cache the models' answers.")
@click.option("--resume", is_flag=True, help="Continue the run in --out (same options); finished answers come "
              "from its cache.")
@click.option("--merge", is_flag=True, help="Add this suite's benchmarks to the run in --out (same models).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def run(ctx: click.Context, model, base, suite, limits, num_fewshot, batch_size, seed, device, data_dir, full,
        options, allow_code_execution, allow_weak_sandbox, model_args, base_args, dtype, judge, judge_model, judge_api,
        judge_api_key_env, out, include_path, apply_chat_template, system_instruction, no_report, cache_path, no_cache,
        resume, merge, quiet) -> None:
    """Evaluate a model (and its base) on a suite of benchmarks."""
    from ..evaluate import default_out, evaluate
    from ..suite import parse_data_dirs

    limit, per_bench = _parse_limits(limits)
    if no_cache and cache_path:
        raise HarnessError("--cache and --no-cache: choose one")
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
        cache=False if no_cache else cache_path, resume=resume, merge=merge,
        apply_chat_template=apply_chat_template, system_instruction=system_instruction,
        include_path=list(include_path) or None,
    )
    if int(os.environ.get("RANK", "0") or 0) != 0:  # torchrun: rank 0 reports
        sys.exit(1 if any(b.get("error") for b in results["benchmarks"].values()) else 0)
    _print_summary(results)
    click.echo(f"results: {out / 'results.json'}", err=True)
    click.echo(f"samples: {out / 'samples'}/", err=True)
    click.echo(f"lm-eval: {out / 'lm-eval' / 'results.json'}", err=True)
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
    from ..report.verdict import cli_lines  # the verdict over everything, judged win rates included

    for line in cli_lines(results):
        click.echo(line)
