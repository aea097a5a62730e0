"""What every command shares: the error-to-one-line group, the registry, option parsing."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import HarnessError


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


def get_registry(ctx: click.Context):
    """The plug-in registry of this invocation, with ``--plugins-dir`` from the root command."""
    from ..plugins import load_registry

    obj = ctx.find_root().obj
    if obj is None:
        obj = ctx.find_root().obj = {}
    if "registry" not in obj:
        obj["registry"] = load_registry(obj.get("plugins_dir"))
    return obj["registry"]


def load(ctx: click.Context, spec: str | None, **options: Any):
    """Load a model through :func:`harness.models.load_model` with the CLI's registry."""
    from ..models import load_model

    return load_model(spec, registry=get_registry(ctx), **options)


def positive(name: str, value: int | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise HarnessError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer (got {value})")


def check_out_dir(out: Path, flag: str = "--out") -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".harness-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HarnessError(f"{flag} {out}: cannot write there ({exc.strerror}); choose a writable directory") from None


def parse_kv(value: str | None, flag: str) -> dict[str, Any]:
    """``k=v,k2=v2`` (values as JSON where they parse, else strings), as lm-eval's --model_args."""
    out: dict[str, Any] = {}
    for part in filter(None, (value or "").split(",")):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"{flag} {value!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. {flag} dtype=float32")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
