"""Prompt formats in one place: the built-in and Jinja2 instruction formats (:mod:`.formats`,
``templates/*.jinja``), the example they render (:mod:`.example`) and how each model is prompted
(:mod:`.chat`: fine-tuned format, its chat template, or ChatML). No torch here; Jinja2 is imported
on first use (``harness --help`` only needs the format names)."""
from importlib import import_module
from typing import Any

from .names import BUILTIN_FORMATS, DEFAULT_FORMAT

_LAZY = {
    "apply_chat_template": "chat", "build_prompt": "chat", "format_for_model": "chat",
    "render_chat_template": "chat", "Example": "example", "example_from_alpaca": "example",
    "user_content": "example", "PromptFormat": "formats", "format_from_config": "formats",
    "format_prompt": "formats", "get_format": "formats", "resolve_format": "formats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BUILTIN_FORMATS", "DEFAULT_FORMAT", *_LAZY]
