"""How a model is prompted: its fine-tuned format, else its own chat template, else ChatML.

The one chat-template renderer lives here (with transformers' Jinja settings, so a GGUF
or Hugging Face chat template renders as ``tokenizer.apply_chat_template`` would); the
engine, ``harness generate``, ``harness serve``, fine-tuning and the judges all use it.
"""
from __future__ import annotations

from typing import Any

from ..api.chat import messages_to_chatml
from ..errors import HarnessError
from .example import Example, example_from_alpaca, user_content
from .formats import PromptFormat, format_from_config, get_format, resolve_format


def render_chat_template(template: str, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """A Hugging Face chat template (as GGUF files and tokenizer_config.json carry), rendered in
    Jinja's sandbox with the settings transformers uses."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def fail(msg: str) -> None:
        raise HarnessError(f"the model's chat template refused the messages: {msg}")

    try:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=["jinja2.ext.loopcontrols"])
        return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                bos_token="", eos_token="", raise_exception=fail)
    except TemplateError as e:
        raise HarnessError(f"the model's chat template cannot render ({e}); use --format NAME or --raw") from None


def format_for_model(model: Any) -> PromptFormat | None:
    """The prompt format a checkpoint was fine-tuned in (from its ModelInfo), or None."""
    info = getattr(model, "info", model)
    if info is None or not hasattr(info, "prompt_format"):
        return None
    return format_from_config({"prompt_format": info.prompt_format, **(getattr(info, "extra", None) or {})})


def apply_chat_template(model: Any, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """A chat as the prompt text ``model`` expects (``Model.apply_chat_template`` of local backends)."""
    fmt = format_for_model(model)
    if fmt is not None:
        users = [m["content"] for m in messages if m["role"] == "user"]
        ex = Example(instruction=users[-1] if users else "", input="", output="", messages=list(messages),
                     chat=[m["role"] for m in messages] != ["user"])
        return fmt.prompt(ex)
    template = getattr(model, "chat_template", None)
    if isinstance(template, str) and template:
        return render_chat_template(template, messages, add_generation_prompt)
    return messages_to_chatml(messages, add_generation_prompt)


def build_prompt(model: Any, instruction: str, input: str = "", fmt_name: str | None = None,
                 template_file: str | None = None, raw: bool = False) -> tuple[str, tuple[str, ...], str]:
    """``(prompt text, stop strings, how it was formatted)`` for one instruction.

    Order: --raw; --format/--template; the checkpoint's recorded format; the model's
    own chat template; else the text as is.
    """
    if raw:
        if fmt_name or template_file:
            raise HarnessError("--raw and --format/--template exclude each other; pick one")
        return user_content(instruction, input), (), "raw"
    fmt = get_format(fmt_name, template_file) if (fmt_name or template_file) else format_for_model(model)
    if fmt is not None:
        return fmt.prompt(example_from_alpaca(instruction, input, "")), fmt.stop, fmt.name
    template = getattr(model, "chat_template", None)
    content = user_content(instruction, input)
    if template:
        return (render_chat_template(template, [{"role": "user", "content": content}]), (),
                "the model's chat template")
    return content, (), "raw (the model records no prompt format)"


__all__ = ["apply_chat_template", "build_prompt", "format_for_model", "render_chat_template", "resolve_format"]
