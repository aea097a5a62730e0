"""Instruction fine-tuning: data, prompt formats, collate, the training loop, LoRA.

Import-light: only the prompt-format helpers are re-exported here (no torch), because
the engine uses them to prompt a fine-tuned model in its trained format::

    from harness.finetune import format_for_model, format_prompt
    fmt = format_for_model(model)          # None when the model records no format
    prompt = format_prompt(fmt or "alpaca", instruction, input)
"""
from .formats import BUILTIN_FORMATS, PromptFormat, format_from_config, format_prompt, get_format


def format_for_model(model) -> PromptFormat | None:
    """The prompt format a checkpoint was fine-tuned in (from its ModelInfo), or None."""
    info = getattr(model, "info", model)
    if info is None or not hasattr(info, "prompt_format"):
        return None
    return format_from_config({"prompt_format": info.prompt_format, **(getattr(info, "extra", None) or {})})


__all__ = ["BUILTIN_FORMATS", "PromptFormat", "format_for_model", "format_from_config", "format_prompt", "get_format"]
