"""``harness serve``: any harness model as an OpenAI-compatible endpoint on 127.0.0.1."""
from __future__ import annotations

import os

import click

from ..errors import HarnessError
from .common import device_option, load, positive


@click.command("serve")
@click.option("--model", "model_spec", default=None, help="Model to serve (same forms as `harness run --model`).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--model-name", default=None, help="Name in /v1/models and answers (default: the model spec).")
@click.option("--device", default="cpu", show_default=True, callback=device_option,
              help="cpu, cuda, cuda:N, mps or auto.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--api-key-env", default=None, help="Require the value of this environment variable as Bearer key.")
@click.option("--max-tokens-cap", type=int, default=512, show_default=True,
              help="Tokens generated per request at most; a larger max_tokens is capped (finish_reason length).")
@click.option("--request-timeout", type=float, default=60.0, show_default=True,
              help="Seconds of generation per request; then it stops and answers (finish_reason length).")
@click.option("--queue-timeout", type=float, default=120.0, show_default=True,
              help="Seconds a request may wait for the model before a 503 (retry later).")
@click.option("--max-queue", type=int, default=64, show_default=True,
              help="Requests waiting for or using the model; more get a 503 at once.")
@click.pass_context
def serve_command(ctx: click.Context, model_spec: str | None, host: str, port: int, model_name: str | None,
                  device: str, batch_size: int, api_key_env: str | None, max_tokens_cap: int,
                  request_timeout: float, queue_timeout: float, max_queue: int) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions)."""
    from ..serve import Limits, check_port, serve

    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise HarnessError(f"--api-key-env {api_key_env}: that environment variable is empty or unset")
    positive("--max-tokens-cap", max_tokens_cap)
    positive("--max-queue", max_queue)
    for flag, seconds in (("--request-timeout", request_timeout), ("--queue-timeout", queue_timeout)):
        if not 0 < seconds < float("inf"):
            raise HarnessError(f"{flag} must be a positive number of seconds (got {seconds:g})")
    check_port(host, port)  # before the (slow) model load
    limits = Limits(max_tokens_cap=max_tokens_cap, request_timeout=request_timeout,
                    queue_timeout=queue_timeout, max_queue=max_queue)
    model = load(ctx, model_spec, device=device, batch_size=batch_size)
    try:
        serve(model, host, port, model_name=model_name, api_key=key, limits=limits)
    finally:
        model.close()
