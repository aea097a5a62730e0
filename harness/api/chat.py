"""ChatML, the chat layout harness falls back to, as text <-> messages, and stop-string cutting.

Kept in the API (plain string code, no model) because plug-ins (the judges), the
OpenAI-compatible client and server all speak it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

_CHATML_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", re.S)


def messages_to_chatml(messages: Sequence[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """``[{"role", "content"}]`` -> ChatML text, ending with an open assistant turn by default."""
    text = "\n".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>" for m in messages)
    return text + ("\n<|im_start|>assistant\n" if add_generation_prompt else "")


def chatml_to_messages(text: str) -> list[dict[str, str]]:
    """ChatML text -> ``[{"role", "content"}]`` (a trailing open assistant turn is dropped);
    text without ChatML turns -> one user message."""
    turns = [{"role": r, "content": c} for r, c in _CHATML_TURN.findall(text)]
    return turns or [{"role": "user", "content": text}]


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string (the whole text if none occurs)."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut]
