"""``harness export CKPT --format hf OUT``: a checkpoint as a dir transformers loads as is."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("ckpt")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["hf"]), default="hf", show_default=True,
              help="hf: config.json + model.safetensors + tokenizer.json for transformers' Auto* classes.")
def export(ckpt: str, out: Path, fmt: str) -> None:
    """Write checkpoint CKPT (a harness dir, .pth, .gguf or the default model's name) to OUT."""
    from ..export import export_hf

    export_hf(ckpt, out)
    click.echo(f"exported: {out} (AutoModelForCausalLM.from_pretrained / AutoTokenizer.from_pretrained)", err=True)
