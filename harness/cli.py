"""The ``harness`` command line. Heavy imports (torch, datasets) happen inside commands."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import HarnessError


class HarnessGroup(click.Group):
    """Turns HarnessError into ``error: ...`` on one line and exit code 2, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            if os.environ.get("HARNESS_DEBUG"):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=HarnessGroup)
@click.version_option(__version__, prog_name="harness")
@click.option("--plugins-dir", type=click.Path(), envvar="HARNESS_PLUGINS_DIR",
              help="Also load plug-in modules (*.py) from this directory.")
@click.pass_context
def cli(ctx: click.Context, plugins_dir: str | None) -> None:
    """Fine-tune GPT-style models on instructions and evaluate them against their base."""
    ctx.obj = {"plugins_dir": plugins_dir}


def get_registry(ctx: click.Context):
    obj = ctx.find_root().obj or {}
    if "registry" not in obj:
        from .plugins import load_registry

        obj["registry"] = load_registry(obj.get("plugins_dir"))
    return obj["registry"]


def model_loader(registry, device: str, batch_size: int):
    def load(spec: str | None):
        from .models import load_model

        backends = {b.name: (b.loader, b.detect) for b in registry.backends.values()}
        return load_model(spec, device=device, batch_size=batch_size, backends=backends)
    return load


def _positive(name: str, value: int | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise HarnessError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer (got {value})")


def _parse_limits(values: tuple[str, ...]) -> tuple[int | None, dict[str, int]]:
    """``--limit 50`` for all, ``--limit squad=20`` for one benchmark (the latter wins)."""
    limit, per_bench = None, {}
    for value in values:
        name, sep, raw = value.rpartition("=")
        try:
            n = int(raw)
        except ValueError:
            raise HarnessError(f"--limit {value!r}: expected a number or BENCHMARK=N, e.g. --limit squad=20")
        _positive(f"--limit {name}".rstrip() if sep else "--limit", n)
        if sep:
            per_bench[name] = n
        else:
            limit = n
    return limit, per_bench


def _check_out_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".harness-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"--out {out}: cannot write there ({exc.strerror}); choose a writable directory")


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


@cli.command()
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
        options, allow_code_execution, allow_weak_sandbox, judge, judge_model, judge_api, judge_api_key_env, out,
        no_report, quiet) -> None:
    """Evaluate a model (and its base) on a suite of benchmarks."""
    from .engine import Engine, RunConfig, log
    from .suite import parse_data_dirs, parse_suite

    limit, per_bench = _parse_limits(limits)
    _positive("--num-fewshot", num_fewshot, allow_zero=True)
    _positive("--batch-size", batch_size)
    registry = get_registry(ctx)
    selections = parse_suite(suite, registry.benchmarks)
    for name in set(per_bench) - {s.benchmark for s in selections}:
        raise HarnessError(f"--limit {name}=…: {name!r} is not in --suite {suite}")
    if out is None:
        stem = Path(model.split(":", 1)[-1]).name if model else "smollm2-135m-instruct"
        out = Path("runs") / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    _check_out_dir(out)
    config = RunConfig(
        suite=selections, out=out, model=model, base=base, limit=limit, limits=per_bench, num_fewshot=num_fewshot,
        seed=seed,
        batch_size=batch_size, device=device, data_dirs=parse_data_dirs(data_dir, registry.benchmarks),
        full=full, options=_parse_options(options), allow_code_execution=bool(allow_code_execution),
        allow_weak_sandbox=allow_weak_sandbox, progress=not quiet, report=not no_report, command=sys.argv,
    )
    load = model_loader(registry, device, batch_size)
    judge_factory = (lambda: _load_judge(load, judge, judge_model, judge_api, judge_api_key_env))
    plugin_errors = [{"plugin": p.name, "module": p.module, "error": p.error} for p in registry.failures]
    for p in registry.failures:
        log(f"warning: plug-in {p.name!r} failed to load: {p.error}")
    engine = Engine(config, registry.benchmarks, load, plugin_errors, judge_factory)
    results = engine.run()
    index = None
    if config.report:
        from .report import render_report

        index = render_report(out)
    _print_summary(results)
    click.echo(f"results: {out / 'results.json'}", err=True)
    click.echo(f"samples: {out / 'samples'}/", err=True)
    if index:
        click.echo(f"report:  {index}", err=True)
    if engine.errors:
        sys.exit(1)


def _load_judge(load, spec: str | None, judge_model: str | None, api: str, api_key_env: str):
    if spec and spec.startswith("openai:"):
        from .models.openai_client import OpenAIModel

        return OpenAIModel(spec[len("openai:"):], model=judge_model, api=api, api_key_env=api_key_env)
    return load(spec)


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


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("benchmark")
@click.pass_context
def score(ctx: click.Context, benchmark: str) -> None:
    """Score predictions produced elsewhere with a benchmark's own metric; prints JSON.

    Options depend on the benchmark, e.g. `harness score squad --data dev-v2.0.json
    --predictions preds.json [--na-prob na.json]`; `harness tasks NAME` lists them.
    """
    from .errors import did_you_mean

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
        result = bench.score_files(**kwargs)
    except NotImplementedError as exc:
        raise HarnessError(str(exc))
    except TypeError as exc:
        raise HarnessError(f"harness score {benchmark}: {exc}")
    click.echo(json.dumps(result, indent=2))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List plug-ins, what each registers, versions, and any that failed to load."""
    from dataclasses import asdict

    registry = get_registry(ctx)
    infos = list(registry.plugins.values())
    if as_json:
        click.echo(json.dumps([asdict(p) for p in infos], indent=2))
        return
    for p in infos:
        origin = f"{p.distribution} {p.version}".strip() or p.source
        click.echo(f"{p.name:16s} {origin:24s} {p.module}")
        if p.benchmarks:
            click.echo(f"{'':16s} benchmarks: {', '.join(p.benchmarks)}")
        if p.backends:
            click.echo(f"{'':16s} model backends: {', '.join(p.backends)}")
        if p.error:
            click.echo(f"{'':16s} FAILED: {p.error}")
    if registry.failures:
        click.echo(f"{len(registry.failures)} plug-in(s) failed to load", err=True)


@cli.command()
@click.argument("name", required=False)
@click.pass_context
def tasks(ctx: click.Context, name: str | None) -> None:
    """List benchmarks, their subsets and options (all subsets with NAME)."""
    from .errors import did_you_mean

    registry = get_registry(ctx)
    benches = registry.benchmarks
    if name and name not in benches:
        raise HarnessError(f"unknown benchmark {name!r}{did_you_mean(name, benches)}")
    for bname in ([name] if name else sorted(benches)):
        b = benches[bname]
        click.echo(f"{bname}  (plug-in {registry.benchmark_plugin[bname]}, version {b.version})")
        if b.description:
            click.echo(f"  {b.description}")
        click.echo(f"  metrics: {', '.join(m.name for m in b.metrics)}; default few-shot: {b.default_num_fewshot}")
        subsets = list(b.subsets)
        if subsets and subsets != [bname]:
            shown = subsets if name else subsets[:6]
            more = f" … (+{len(subsets) - len(shown)}, `harness tasks {bname}`)" if len(shown) < len(subsets) else ""
            click.echo(f"  subsets ({len(subsets)}): {', '.join(shown)}{more}")
        for group, members in (getattr(b, "groups", {}) or {}).items():
            if name:
                click.echo(f"  group {group}: {', '.join(members)}")
        for opt, help_ in (b.options or {}).items():
            click.echo(f"  --option {bname}.{opt}=…  {help_}")
        for opt, help_ in (getattr(b, "score_options", {}) or {}).items():
            click.echo(f"  harness score {bname} --{opt.replace('_', '-')} …  {help_}")
    for p in registry.failures:
        click.echo(f"(plug-in {p.name!r} failed to load: {p.error})", err=True)




@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: the run itself; required for several runs).")
@click.option("--page-size", type=int, default=100, show_default=True, help="Samples per browser page.")
def report(runs: tuple[Path, ...], out: Path | None, page_size: int) -> None:
    """Re-render a run's report, or compare several runs side by side."""
    from .report import compare_runs, render_report

    _positive("--page-size", page_size)
    if len(runs) == 1:
        index = render_report(runs[0], out, page_size=page_size)
    elif out is None:
        raise HarnessError("--out: comparing several runs needs an output directory, e.g. --out runs/compare")
    else:
        index = compare_runs(list(runs), out)
    click.echo(f"report: {index}")


def _attach_commands() -> None:
    """Commands that live next to what they drive; their modules import lazily too."""
    from .finetune.cli import finetune, generate, merge
    from .serve import serve_command

    for command in (finetune, generate, merge, serve_command):
        cli.add_command(command)


_attach_commands()


def main() -> None:  # pragma: no cover
    cli()
