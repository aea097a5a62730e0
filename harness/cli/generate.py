"""``harness generate``: prompt a model in its trained format and stream the answer."""
from __future__ import annotations

import sys

import click

from ..errors import HarnessError
from ..prompts.names import BUILTIN_FORMATS
from .common import device_option, load


@click.command("generate")
@click.argument("prompt", required=False)
@click.option("--model", default=None, help="Any model spec (default: the embedded smollm2-135m-instruct).")
@click.option("--input", "input_", default="", help="Optional input for the instruction (Alpaca's ### Input).")
@click.option("--format", "fmt", default=None, help="Override the prompt format: " + ", ".join(BUILTIN_FORMATS)
              + " or a .jinja file.")
@click.option("--template", type=click.Path(dir_okay=False), default=None, help="A Jinja2 prompt template file.")
@click.option("--raw", is_flag=True, help="Send the prompt as is, no format.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0: greedy.")
@click.option("--seed", type=int, default=1234, show_default=True, help="Sampling seed.")
@click.option("--max-tokens", type=int, default=256, show_default=True)
@click.option("--device", default="cpu", show_default=True, callback=device_option,
              help="cpu, cuda, cuda:N, mps or auto.")
@click.option("--show-prompt", is_flag=True, help="Print the formatted prompt to stderr first.")
@click.pass_context
def generate(ctx: click.Context, prompt, model, input_, fmt, template, raw, temperature, seed, max_tokens,
             device, show_prompt) -> None:
    """Prompt a model (in its fine-tuned format) and stream the answer to stdout. PROMPT '-' reads stdin."""
    from ..api import GenerateRequest
    from ..prompts import build_prompt, get_format

    if prompt is None or prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise HarnessError("generate: empty prompt; pass the instruction as an argument or on stdin")
    if temperature < 0:
        raise HarnessError(f"--temperature must be 0 (greedy) or more (got {temperature})")
    if max_tokens < 1:
        raise HarnessError(f"--max-tokens must be a positive integer (got {max_tokens})")
    if raw and (fmt or template):
        raise HarnessError("--raw and --format/--template exclude each other; pick one")
    if fmt or template:
        get_format(fmt, template)  # a bad --format fails before the model loads
    lm = load(ctx, model, device=device, batch_size=1)
    text, stops, how = build_prompt(lm, prompt, input_, fmt, template, raw)
    if show_prompt:
        click.echo(f"--- prompt ({how}) ---\n{text}\n--- answer ---", err=True)

    for piece in lm.stream(GenerateRequest(text, stops, max_tokens, temperature, seed)):
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
