"""``harness finetune`` end to end: data -> split -> model (+LoRA) -> train -> outputs.

The order is chosen so every user mistake fails before any compute: options, data
records, the template (rendered over every record), the split, then the model.
The finished ``--out`` is itself a harness checkpoint (``harness run --model OUT``
works), with LoRA adapters merged; the adapters also stay in ``OUT/adapter/``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..api import GenerateRequest, Model
from ..errors import HarnessError
from ..files import atomic_write_json, atomic_write_text, check_out_dir
from ..prompts import PromptFormat, format_for_model, get_format
from . import distributed, outputs, resources, state
from .collate import encode_examples
from .data import Example, load_examples
from .lora import LoRAConfig, apply_lora, load_lora_state_dict, merge_lora, save_adapter
from .split import Split, load_split, save_split, split_indices
from .train import TrainConfig, Trainer

OUTPUT_FILES = ("config.json", "model.safetensors", "metrics.jsonl", "loss-curve.svg", "test-responses.json",
                "train_config.json", "split.json", "train.log", "adapter")
RESUME_MAY_CHANGE = {"device", "test_max_tokens"}


def default_loader(spec: str | None, device: str) -> Model:
    from ..models import load_model

    return load_model(spec, device=device)


def model_format(model: Any) -> PromptFormat | None:
    """The format a model was fine-tuned in (its config), or None."""
    return format_for_model(model) if getattr(model, "info", None) is not None else None


def choose_format(cfg: TrainConfig, model: Any) -> PromptFormat:
    """--template / --format, else the model's own: its recorded format, ChatML for a
    ChatML chat template (SmolLM2-Instruct), Alpaca otherwise."""
    if cfg.template or cfg.format:
        return get_format(cfg.format, cfg.template)
    fmt = model_format(model)
    if fmt is not None:
        return fmt
    return get_format("chatml" if "<|im_start|>" in (getattr(model, "chat_template", None) or "") else "alpaca")


def resume_config(out: Path, given: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The interrupted run's config; options typed again must agree with it."""
    path = out / "train_config.json"
    if state.state_dir(out) is None or not path.is_file():
        raise HarnessError(f"--resume: no interrupted fine-tuning run in {out} (no {state.STATE_DIR}/); "
                           "run without --resume")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        saved = {k: v for k, v in raw.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    except (OSError, ValueError, AttributeError) as e:
        raise HarnessError(f"--resume: {path} is unreadable ({str(e).splitlines()[0][:120]}); "
                           "the interrupted run cannot be continued: start again without --resume") from None
    for key in sorted(explicit - RESUME_MAY_CHANGE):
        if key in saved and saved[key] != getattr(given, key):
            raise HarnessError(f"--resume: --{key.replace('_', '-')} {getattr(given, key)!r} differs from the "
                               f"interrupted run's {saved[key]!r}; resume with the original options")
    saved.setdefault("group_by_length", False)  # runs started before length grouping batched plainly
    merged = {**saved, **{k: getattr(given, k) for k in explicit & RESUME_MAY_CHANGE}}
    try:
        return TrainConfig(**merged)
    except TypeError as e:
        raise HarnessError(f"--resume: {path} does not hold a training config ({e}); "
                           "start again without --resume") from None


def _split(cfg: TrainConfig, n: int, out: Path, resume: bool) -> Split:
    split = split_indices(n, cfg.val_frac, cfg.test_frac, cfg.seed)
    if resume and (out / "split.json").is_file():
        old = load_split(out / "split.json")
        if (old.train, old.val, old.test) != (split.train, split.val, split.test):
            raise HarnessError(f"--resume: the data changed since the interrupted run ({out / 'split.json'} "
                               "differs); resume with the same --data and --limit")
    return split


def _render_all(fmt: PromptFormat, examples: list[Example]) -> None:
    """Render every record in file order, so a template error names the first bad record."""
    for ex in examples:
        fmt.texts(ex)


def trainable_parts(model: Any, spec: str | None) -> tuple[torch.nn.Module, Any, int]:
    """``(module, tokenizer, context length)``: what the backend offers for training."""
    parts = model.trainable() if hasattr(model, "trainable") else None  # a Model without torch has none
    if parts is not None:
        return parts
    raise HarnessError(f"--model {spec}: fine-tuning needs a native model (harness checkpoint, GPT-2, .pth, "
                       ".gguf) or an hf: model; this backend exposes no torch module")


def save_model(model: Any, module: torch.nn.Module, out: Path, extra: dict[str, Any]) -> None:
    """Write the (merged) model into ``out`` next to the run's other files.

    Native: A1's ``save_checkpoint`` (a harness dir). transformers: ``save_pretrained``
    with our keys added to its config.json. Both are written to ``out/.checkpoint``
    first and moved in file by file, config.json last (it makes OUT a checkpoint).
    """
    tmp = out / ".checkpoint"
    shutil.rmtree(tmp, ignore_errors=True)
    resources.check_disk(out / "model.safetensors", resources.tensor_bytes(dict(module.state_dict())))
    try:
        model.save(module, tmp, extra)
    except Exception as e:  # OSError, or safetensors' error around one
        shutil.rmtree(tmp, ignore_errors=True)
        raise resources.write_error(out / "model.safetensors", e) from e
    names = sorted(os.listdir(tmp), key=lambda n: n == "config.json")
    for name in names:
        if (tmp / name).is_file():
            os.chmod(tmp / name, 0o644)  # safetensors writes 0600; checkpoints are meant to be shared
        os.replace(tmp / name, out / name)
    tmp.rmdir()


def test_responses(model: Any, fmt: PromptFormat, examples: list[Example], max_tokens: int,
                   progress: bool, base_answers: list[str] | None = None) -> list[dict[str, Any]]:
    """Greedy answers to the held-out test records (ch07's instruction-data-with-response);
    ``base_answers`` (the untrained model's, generated before training) go beside them as
    ``base_response`` so the report can show base and fine-tuned side by side."""
    if not examples:
        return []
    reqs = [GenerateRequest(prompt=fmt.prompt(ex), stop=fmt.stop, max_tokens=max_tokens) for ex in examples]
    answers = model.generate(reqs, progress=progress)
    out = [{**ex.to_record(), "model_response": outputs.clean_response(a, fmt.stop)} for ex, a in zip(examples, answers)]
    if base_answers is not None and len(base_answers) == len(out):
        for rec, b in zip(out, base_answers):
            rec["base_response"] = b
    return out


def base_answers(model: Any, fmt: PromptFormat, examples: list[Example], max_tokens: int,
                 progress: bool) -> list[str] | None:
    """The base model's answers to the held-out records, taken before any weight changes."""
    if not (max_tokens and examples):
        return None
    return [r["model_response"] for r in test_responses(model, fmt, examples, max_tokens, progress)]


def finetune(cfg: TrainConfig, out: Path, *, resume: bool = False,
             load: Callable[[str | None], Model] | None = None, progress: bool = True) -> dict[str, Any]:
    """Run a fine-tuning job into ``out``; returns a summary (also stored in config.json).

    Under torchrun every rank calls this; rank 0 alone writes files and returns the summary.
    """
    cfg.validate()
    ranks, device = distributed.from_env(cfg.device)
    try:
        return _finetune(dataclasses.replace(cfg, device=device), Path(out), resume, load, progress, ranks)
    finally:
        distributed.close(ranks)


def _finetune(cfg: TrainConfig, out: Path, resume: bool, load: Callable[[str | None], Model] | None,
              progress: bool, ranks: distributed.Ranks) -> dict[str, Any]:
    if resume and state.state_dir(out) is None:
        raise HarnessError(f"--resume: no interrupted fine-tuning run in {out} (no {state.STATE_DIR}/); "
                           "run without --resume")
    if not resume and state.state_dir(out) is not None:
        raise HarnessError(f"--out {out} holds an interrupted fine-tuning run; add --resume to continue it "
                           "or choose another --out")
    check_out_dir(out)
    if not resume and ranks.main:
        for name in ("train.log", "metrics.jsonl"):
            (out / name).unlink(missing_ok=True)
    log: Callable[[str], None] = outputs.TrainLog(out / "train.log", echo=progress) if ranks.main else _quiet
    examples, data_name = load_examples(cfg.data, cfg.limit)
    split = _split(cfg, len(examples), out, resume)
    if cfg.format or cfg.template:  # check the template on every record before loading the model
        _render_all(get_format(cfg.format, cfg.template), examples)
    model = (load or (lambda spec: default_loader(spec, cfg.device)))(cfg.model)
    module, tokenizer, ctx = trainable_parts(model, cfg.model)
    fmt = choose_format(cfg, model)
    if not (cfg.format or cfg.template):
        _render_all(fmt, examples)
    part = {name: [examples[i] for i in getattr(split, name)] for name in ("train", "val", "test")}
    enc = {name: encode_examples(tokenizer, fmt, part[name]) for name in ("train", "val")}
    max_length = resources.resolve_max_length(cfg, out / "train_config.json" if resume else None, module, ctx,
                                              enc["train"] + enc["val"])
    if ranks.main:
        atomic_write_json(out / "train_config.json", {
            **dataclasses.asdict(cfg), "learning_rate": cfg.learning_rate, "resolved_max_length": max_length,
            "format_name": fmt.name, "data_name": data_name})
        save_split(split, out / "split.json")

    module.float().to(cfg.device)
    before = base_answers(model, fmt, part["test"], cfg.test_max_tokens, progress) if ranks.main else None
    n_base = sum(p.numel() for p in module.parameters())
    torch.manual_seed(cfg.seed)  # LoRA's A init
    lora = apply_lora(module, LoRAConfig(cfg.lora_rank, cfg.alpha, cfg.lora_targets)) if cfg.lora_rank else None
    if lora is None:
        module.requires_grad_(True)

    def on_eval(t: Trainer) -> None:
        try:
            outputs.write_metrics(out / "metrics.jsonl", t.p.history)
        except OSError as e:
            raise resources.write_error(out / "metrics.jsonl", e) from e
        log(outputs.format_eval(t.p.history[-1], t.total_steps, t.best_changed))
        state.save_state(t, out)

    forward = model.forward if hasattr(model, "new_cache") else module
    trainer = Trainer(cfg, forward, module, tokenizer.eot_id, enc["train"], enc["val"], max_length,
                      on_eval=on_eval, log=log, progress_bar=progress, ranks=ranks)
    if resume:
        p = state.load_state(trainer, out)
        if ranks.main:
            outputs.write_metrics(out / "metrics.jsonl", p.history)
        log(f"resuming at epoch {p.epoch + 1}, step {p.step}/{trainer.total_steps}")
    else:
        n_train = sum(p.numel() for p in trainer.params)
        how = f", LoRA r={lora.rank} alpha={lora.alpha:g} on {len(lora.layers)} layers" if lora else ""
        n_long = sum(len(e.ids) > max_length for e in enc["train"] + enc["val"])
        log(f"model {model.info.spec} ({model.info.arch}, {n_base / 1e6:.1f}M parameters, "
            f"{n_train / 1e6:.2f}M trainable{how})")
        log(f"data {data_name}: {len(split.train)} train / {len(split.val)} val / {len(split.test)} test records; "
            f"format {fmt.name}; max length {max_length} tokens ({n_long} train/val records longer, "
            "truncated)")
        ddp = f" x {ranks.world} ranks (DistributedDataParallel)" if ranks.world > 1 else ""
        log(f"{cfg.epochs} epoch(s) x {trainer.steps_per_epoch} steps, batch {cfg.batch_size} x {cfg.grad_accum}"
            f"{ddp}, lr {cfg.learning_rate:g}, seed {cfg.seed}")
    if not trainer.p.finished:
        try:
            trainer.run()
        except HarnessError as e:
            log(f"error: {e}")
            raise
        if ranks.main:
            state.save_state(trainer, out)  # a crash while writing outputs resumes here, not from scratch
    if not ranks.main:
        return {"rank": ranks.rank, "steps": trainer.p.step}
    try:
        summary = _finish(cfg, out, model, module, fmt, trainer, lora, part["test"], data_name, log, progress,
                          before)
    except OSError as e:
        raise resources.write_error(Path(e.filename or out), e) from e
    state.clear_state(out)
    log(f"done: {trainer.p.step} steps in {trainer.p.elapsed:.0f} s; checkpoint {out}")
    return summary


def _quiet(msg: str) -> None:
    """The log of ranks other than 0."""


def _finish(cfg: TrainConfig, out: Path, model: Any, module: torch.nn.Module, fmt: PromptFormat, trainer: Trainer,
            lora: LoRAConfig | None, test: list[Example], data_name: str, log: Callable[[str], None],
            progress: bool, before: list[str] | None = None) -> dict[str, Any]:
    """Best weights back in, adapters saved and merged, checkpoint, test responses, plot."""
    p = trainer.p
    if p.stopped_early:
        log(f"early stopping: validation loss did not improve for {cfg.patience} evaluations")
    if trainer.best_state is not None:
        with torch.no_grad():
            for name, t in trainer.trainable_state().items():
                t.copy_(trainer.best_state[name])
        log(f"keeping the best evaluation: step {p.best_step}, val loss {p.best_val:.4f}")
    spec = model.info.spec
    if spec and Path(spec.split(":", 1)[-1]).exists():  # so `harness merge` works from any directory
        spec = str(Path(spec.split(":", 1)[-1]).resolve())
    base = {"spec": spec, "fingerprint": model.info.fingerprint, "arch": model.info.arch}
    if lora is not None:
        tmp = out / ".adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        save_adapter(module, lora, tmp, {"base_model": base, **fmt.config()})
        shutil.rmtree(out / "adapter", ignore_errors=True)
        tmp.rename(out / "adapter")
        merge_lora(module)
    summary = {"dir": str(out.resolve()), "steps": p.step, "epochs": cfg.epochs, "tokens": p.tokens,
               "best_step": p.best_step, "best_val_loss": p.best_val, "stopped_early": p.stopped_early,
               "final": p.history[-1], "train_seconds": round(p.elapsed, 1), "data": data_name,
               "n_train": len(trainer.train_data),
               "lora": {"rank": lora.rank, "alpha": lora.alpha, "targets": lora.targets,
                        "n_layers": len(lora.layers)} if lora else None}
    extra = {**fmt.config(), "base_model": base, "finetune": summary}
    if getattr(model, "chat_template", None):
        extra["chat_template"] = model.chat_template
    module.eval()
    save_model(model, module, out, extra)
    if cfg.test_max_tokens and test:
        atomic_write_json(out / "test-responses.json",
                           test_responses(model, fmt, test, cfg.test_max_tokens, progress, before))
    title = f"{Path(str(cfg.model or 'smollm2-135m-instruct')).name} fine-tuned on {Path(data_name).name}"
    atomic_write_text(out / "loss-curve.svg", outputs.loss_curve_svg(p.history, p.best_step, title))
    return summary


def load_adapter_into(module: torch.nn.Module, adapter_dir: Path) -> dict[str, Any]:
    """Apply a saved adapter to ``module`` (unmerged); returns the adapter's metadata."""
    from .lora import read_adapter

    lcfg, meta, tensors = read_adapter(adapter_dir)
    apply_lora(module, lcfg)
    load_lora_state_dict(module, tensors)
    return meta
