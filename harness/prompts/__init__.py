"""Prompt formats in one place: the built-in and Jinja2 instruction formats (:mod:`.formats`,
``templates/*.jinja``), the example they render (:mod:`.example`) and how each model is prompted
(:mod:`.chat`: fine-tuned format, its chat template, or ChatML). No torch here."""
from .chat import apply_chat_template, build_prompt, format_for_model, render_chat_template
from .example import Example, example_from_alpaca, user_content
from .formats import (
                      BUILTIN_FORMATS,
                      DEFAULT_FORMAT,
                      PromptFormat,
                      format_from_config,
                      format_prompt,
                      get_format,
                      resolve_format,
)

__all__ = [
    "BUILTIN_FORMATS", "DEFAULT_FORMAT", "Example", "PromptFormat", "apply_chat_template", "build_prompt",
    "example_from_alpaca", "format_for_model", "format_from_config", "format_prompt", "get_format",
    "render_chat_template", "resolve_format", "user_content",
]
