"""``harness finetune`` and ``harness merge``. Heavy imports (torch) happen inside the commands."""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import HarnessError
from ..prompts.names import BUILTIN_FORMATS
from .common import device_option, load

FORMAT_HELP = ("Prompt format: " + ", ".join(BUILTIN_FORMATS) + ", or a .jinja file "
               "(default: the model's recorded format; ChatML for SmolLM2-Instruct; else alpaca).")


@click.command("finetune")
@click.option("--model", default=None, help="Base model: checkpoint dir, .pth, .gguf, HF GPT-2 dir "
              "(default: the embedded smollm2-135m-instruct).")
@click.option("--data", default=None, help="Records: .json/.jsonl file, dataset dir or hub id "
              "(default: the bundled LLMs-from-scratch ch07 instructions, 1,100 records).")
@click.option("--format", "fmt", default=None, help=FORMAT_HELP)
@click.option("--template", type=click.Path(dir_okay=False), default=None, help="A Jinja2 prompt template file.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output dir, a loadable checkpoint when done (default: runs/finetune-<time>).")
@click.option("--epochs", type=int, default=1, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 5e-5; 2e-4 with LoRA].")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--grad-accum", type=int, default=1, show_default=True, help="Micro-batches per optimizer step.")
@click.option("--max-length", type=int, default=None, help="Truncate texts to this many tokens [default: the "
              "longest that fits in the available RAM, at most the context length].")
@click.option("--group-by-length/--no-group-by-length", default=True, show_default=True,
              help="Batch texts of similar length together (less padding to compute); off: plain shuffled batches.")
@click.option("--mask-instruction", is_flag=True, help="No loss on the prompt, only on the response.")
@click.option("--eval-every", type=int, default=10, show_default=True, help="Evaluate every N optimizer steps.")
@click.option("--patience", type=int, default=3, show_default=True,
              help="Stop after N evaluations without a better val loss (0: never).")
@click.option("--seed", type=int, default=123, show_default=True)
@click.option("--lora-rank", type=int, default=0, show_default=True, help="LoRA rank (0: full fine-tuning).")
@click.option("--lora-alpha", type=float, default=None, help="LoRA alpha [default: 2 x rank].")
@click.option("--lora-targets", default="all", show_default=True,
              help="Linear layers to adapt: all, attn, mlp, or names/globs (q_proj,v_proj / c_attn).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out.")
@click.option("--val-frac", type=float, default=0.05, show_default=True)
@click.option("--test-frac", type=float, default=0.10, show_default=True)
@click.option("--limit", type=int, default=None, help="Use only the first N records.")
@click.option("--weight-decay", type=float, default=0.1, show_default=True)
@click.option("--warmup-frac", type=float, default=0.1, show_default=True, help="Warm-up share of all steps.")
@click.option("--grad-clip", type=float, default=1.0, show_default=True, help="Max gradient norm (0: off).")
@click.option("--test-max-tokens", type=int, default=256, show_default=True,
              help="Max tokens of each test response (0: skip test responses).")
@click.option("--device", default="cpu", show_default=True, callback=device_option,
              help="cpu, cuda, cuda:N, mps or auto.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast (faster on CPUs with AVX512-BF16 and on GPUs).")
@click.option("--quiet", is_flag=True, help="No progress bars or log echo.")
@click.pass_context
def finetune(ctx: click.Context, model, data, fmt, template, out, epochs, lr, batch_size, grad_accum, max_length,
             group_by_length, mask_instruction, eval_every, patience, seed, lora_rank, lora_alpha, lora_targets, resume, val_frac,
             test_frac, limit, weight_decay, warmup_frac, grad_clip, test_max_tokens, device, bf16, quiet) -> None:
    """Instruction-fine-tune a model (full or LoRA) and write a checkpoint plus training outputs.

    Data-parallel on several processes: torchrun --nproc_per_node N -m harness finetune ...
    (each optimizer step then takes --grad-accum micro-batches per process).
    """
    from ..finetune.outputs import print_outputs
    from ..finetune.runner import OUTPUT_FILES, resume_config
    from ..finetune.runner import finetune as run_finetune
    from ..finetune.train import TrainConfig

    cfg = TrainConfig(model=model, data=data, format=fmt, template=template, limit=limit, val_frac=val_frac,
                      test_frac=test_frac, epochs=epochs, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
                      max_length=max_length, group_by_length=group_by_length, mask_instruction=mask_instruction, eval_every=eval_every,
                      patience=patience, seed=seed, weight_decay=weight_decay, warmup_frac=warmup_frac,
                      grad_clip=grad_clip, lora_rank=lora_rank, lora_alpha=lora_alpha, lora_targets=lora_targets,
                      device=device, bf16=bf16, test_max_tokens=test_max_tokens)
    if resume:
        if out is None:
            raise HarnessError("--resume needs --out DIR, the directory of the interrupted run")
        explicit = {p.name for p in ctx.command.params if p.name not in ("out", "resume", "quiet")
                    and ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
        names = {"fmt": "format"}
        cfg = resume_config(out, cfg, {names.get(n, n) for n in explicit})
    cfg.validate()
    if out is None:
        out = Path("runs") / f"finetune-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        run_finetune(cfg, out, resume=resume, load=lambda spec: load(ctx, spec, device=cfg.device),
                     progress=not quiet)
    except KeyboardInterrupt:
        click.echo(f"interrupted; continue with: harness finetune --out {out} --resume", err=True)
        raise
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return
    print_outputs(out, OUTPUT_FILES)
    click.echo(f"fine-tuned checkpoint: {out}  (try: harness generate --model {out} \"...\")", err=True)


@click.command("merge")
@click.option("--model", "model", required=True, help="A LoRA fine-tuning output dir (or its adapter/ dir).")
@click.option("--base", default=None, help="Base model to merge into [default: the one recorded in adapter.json].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where to write the merged plain checkpoint.")
@click.option("--device", default="cpu", show_default=True, callback=device_option,
              help="cpu, cuda, cuda:N, mps or auto.")
@click.pass_context
def merge(ctx: click.Context, model: str, base: str | None, out: Path, device: str) -> None:
    """Merge LoRA adapters into their base model and write a plain harness checkpoint."""
    from ..finetune.lora import find_adapter, merge_lora, read_adapter
    from ..finetune.runner import load_adapter_into, save_model, trainable_parts

    adapter = find_adapter(model)
    if adapter is None:
        raise HarnessError(f"--model {model}: no LoRA adapter (adapter.json + adapter.safetensors) there or in "
                           "its adapter/ dir; pass the --out of a `harness finetune --lora-rank N` run")
    _, meta, _ = read_adapter(adapter)
    recorded: dict[str, Any] = meta.get("base_model") or {}
    spec = base or recorded.get("spec")
    lm = load(ctx, spec, device=device)
    module = trainable_parts(lm, spec)[0]
    fp = recorded.get("fingerprint")
    if fp and lm.info.fingerprint and fp != lm.info.fingerprint:
        click.echo(f"warning: base {spec} has fingerprint {lm.info.fingerprint}, the adapter was trained on "
                   f"{fp}; merging anyway", err=True)
    module.float()
    load_adapter_into(module, adapter)
    merge_lora(module)
    extra = {k: meta[k] for k in ("prompt_format", "prompt_template") if meta.get(k)}
    extra["base_model"] = recorded or {"spec": spec}
    if getattr(lm, "chat_template", None):
        extra["chat_template"] = lm.chat_template
    out.mkdir(parents=True, exist_ok=True)
    save_model(lm, module, out, extra)
    click.echo(f"merged checkpoint: {out}", err=True)
