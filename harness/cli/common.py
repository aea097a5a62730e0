"""What every command shares: the error-to-one-line group, the registry, option parsing."""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import click

from ..errors import HarnessError


class HarnessGroup(click.Group):
    """Turns HarnessError and click's usage errors (a bad option value, an unknown option) into
    ``error: ...`` on one line and exit code 2, no traceback and no usage block."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            if os.environ.get("HARNESS_DEBUG"):
                raise
            click.echo(f"error: {_one_line(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            _usage_error(exc)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The root's own options (``harness --bogus``) get the same one line."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `harness`: the help is the answer
                raise
            _usage_error(exc)


def _usage_error(exc: click.UsageError) -> None:
    where = f"`{exc.ctx.command_path} --help`" if exc.ctx else "`harness --help`"
    click.echo(f"error: {_one_line(exc.format_message()).rstrip('.')}; see {where}", err=True)
    sys.exit(exc.exit_code)


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


_DEVICE = re.compile(r"(cpu|cuda|cuda:\d+|mps|auto)")


def device_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for every ``--device``: cpu, cuda, cuda:N, mps or auto, checked (and the
    accelerator's presence too) while parsing, before any model loads."""
    if value is None:
        return None
    device = value.strip().lower()
    if not _DEVICE.fullmatch(device):
        raise HarnessError(f"--device {value!r}: expected cpu, cuda, cuda:N, mps or auto")
    if device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.partition(":")[2] or 0)
        if index >= count:
            raise HarnessError(f"--device {value}: {'no CUDA device' if not count else f'only {count} CUDA device(s)'}"
                               " is visible; use --device cpu (or auto)")
    elif device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise HarnessError(f"--device {value}: MPS is not available here; use --device cpu (or auto)")
    return device


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
    from ..plugins import PLUGIN_ERRORS

    try:
        return load_model(spec, registry=get_registry(ctx), **options)
    except HarnessError:
        raise
    except PLUGIN_ERRORS as exc:  # a backend's bug or an unreadable file: one line (HARNESS_DEBUG=1: where)
        if os.environ.get("HARNESS_DEBUG"):
            raise
        raise HarnessError(f"--model {spec or 'the default model'}: loading failed ({type(exc).__name__}: {exc}); "
                           "HARNESS_DEBUG=1 shows where") from None


def positive(name: str, value: int | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise HarnessError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer (got {value})")


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
