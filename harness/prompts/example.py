"""One instruction example as every prompt format sees it (Alpaca fields and chat turns)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Example:
    """One validated training example.

    ``messages`` is the conversation *before* the final answer (system/user/assistant
    turns); ``output`` is the final assistant answer that training teaches. For Alpaca
    records ``messages`` is one user turn built from instruction and input, so chat
    formats (ChatML) can render them too.
    """

    instruction: str
    input: str
    output: str
    messages: list[dict[str, str]] = field(default_factory=list)
    index: int = 0  # position in the source, for error messages
    chat: bool = False  # came from a ``messages`` record

    @property
    def system(self) -> str | None:
        return self.messages[0]["content"] if self.messages and self.messages[0]["role"] == "system" else None

    def to_record(self) -> dict[str, Any]:
        """The record as test-responses.json shows it (Alpaca keys; chat turns kept)."""
        rec: dict[str, Any] = {"instruction": self.instruction, "input": self.input, "output": self.output}
        if self.chat:
            rec["messages"] = self.messages
        return rec


def user_content(instruction: str, input: str = "") -> str:
    """How an Alpaca record becomes one chat user turn (input on its own paragraph)."""
    return f"{instruction}\n\n{input}" if input else instruction


def example_from_alpaca(instruction: str, input: str = "", output: str = "", index: int = 0) -> Example:
    return Example(instruction=instruction, input=input or "", output=output,
                   messages=[{"role": "user", "content": user_content(instruction, input or "")}], index=index)
