"""``harness serve``: any harness model as an OpenAI-compatible endpoint on 127.0.0.1."""
from __future__ import annotations

import os

import click

from ..errors import HarnessError
from .common import load


@click.command("serve")
@click.option("--model", "model_spec", default=None, help="Model to serve (same forms as `harness run --model`).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--model-name", default=None, help="Name in /v1/models and answers (default: the model spec).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--api-key-env", default=None, help="Require the value of this environment variable as Bearer key.")
@click.pass_context
def serve_command(ctx: click.Context, model_spec: str | None, host: str, port: int, model_name: str | None,
                  device: str, batch_size: int, api_key_env: str | None) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions)."""
    from ..serve import serve

    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise HarnessError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    model = load(ctx, model_spec, device=device, batch_size=batch_size)
    try:
        serve(model, host, port, model_name=model_name, api_key=key)
    finally:
        model.close()
