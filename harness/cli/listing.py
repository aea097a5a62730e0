"""``harness plugins`` and ``harness tasks``: what is installed, what it offers, what failed."""
from __future__ import annotations

import json

import click

from ..errors import HarnessError
from .common import get_registry


@click.command("plugins")
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


@click.command("tasks")
@click.argument("name", required=False)
@click.pass_context
def tasks(ctx: click.Context, name: str | None) -> None:
    """List benchmarks, their subsets and options (all subsets with NAME)."""
    from ..errors import did_you_mean

    registry = get_registry(ctx)
    benches = registry.benchmarks
    if name and name not in benches:
        raise HarnessError(f"unknown benchmark {name!r}{did_you_mean(name, benches)}")
    for bname in ([name] if name else sorted(benches)):
        try:
            _describe(bname, benches[bname], registry.benchmark_plugin[bname], bool(name))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plug-in is named, the rest listed
            click.echo(f"(benchmark {bname!r} of plug-in {registry.benchmark_plugin[bname]!r} cannot be "
                       f"described: {type(exc).__name__}: {exc})", err=True)
    for p in registry.failures:
        click.echo(f"(plug-in {p.name!r} failed to load: {p.error})", err=True)


def _describe(bname: str, b, plugin: str, name: bool) -> None:
    """One benchmark's entry of `harness tasks` (all subsets and groups when ``name``)."""
    click.echo(f"{bname}  (plug-in {plugin}, version {b.version})")
    if b.description:
        click.echo(f"  {b.description}")
    fewshot = "each subset's own" if b.default_num_fewshot < 0 else b.default_num_fewshot
    click.echo(f"  metrics: {', '.join(m.name for m in b.metrics) or 'per subset'}; default few-shot: {fewshot}")
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


@click.group("ls")
def ls() -> None:
    """lm-eval's spelling: `harness ls tasks [NAME]` is `harness tasks [NAME]`."""


ls.add_command(tasks)
