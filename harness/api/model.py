"""The model API: the one interface every backend implements and every benchmark consumes.

In the spirit of lm-eval's ``LM``: two batched calls and a chat template. A backend
sees whole lists of requests so it can sort, batch and cache as it likes; the
results must come back in the order of the requests, and must not depend on the
batch size (scores are batch-size-invariant up to float rounding).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .chat import messages_to_chatml
from .requests import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult

_PIECES = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")


@dataclass
class ModelInfo:
    """What results.json records about a model."""

    spec: str  # what the user typed, e.g. "smollm2-135m-instruct" or "hf:./dir"
    backend: str  # "native" | "hf" | a plug-in's backend name
    arch: str = ""  # "gpt2" | "llama" | ...
    path: str = ""
    fingerprint: str = ""  # sha256 over the weights, see harness.models.fingerprint
    n_params: int = 0
    context_length: int = 0
    prompt_format: str | None = None  # set for fine-tuned checkpoints
    extra: dict[str, Any] = field(default_factory=dict)


class Model(ABC):
    """A language model that can score and generate text."""

    info: ModelInfo

    @abstractmethod
    def loglikelihood(
        self, requests: list[LoglikelihoodRequest], progress: bool = True
    ) -> list[LoglikelihoodResult]:
        """Score each continuation given its context."""

    @abstractmethod
    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        """Generate a continuation for each prompt (prompt not included, stop strings cut)."""

    def max_new_tokens(self, request: GenerateRequest) -> int:
        """How many tokens this model will generate at most for ``request``: its ``max_tokens``,
        less whatever the context window cannot hold after the prompt (the prompt is never cut
        to make room). Callers record it when it is smaller than asked (``finish_reason``)."""
        return request.max_tokens

    def stream(self, request: GenerateRequest) -> Iterator[str]:
        """The answer to one request in pieces (``harness generate``; ``harness serve`` generates through it to stop on hang-ups and caps).
        Default: the whole answer at once; token-level backends stream token by token."""
        yield self.generate([request], progress=False)[0]

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text this model expects for a chat (``[{"role", "content"}]``), as lm-eval's
        ``LM.apply_chat_template``. Default: ChatML; token-level backends use the checkpoint's
        recorded prompt format or its own chat template (see :mod:`harness.prompts`)."""
        return messages_to_chatml(messages, add_generation_prompt)

    def token_logprobs(self, text: str, top_k: int = 0, start: int = 0) -> list[tuple[str, int, float | None, list]]:
        """``[(token, char offset, logprob | None, [(alternative, logprob)] top-k)]`` for the tokens
        of ``text`` from character ``start`` on (``harness serve``'s ``logprobs``/``echo``).
        Default: GPT-2-style pieces each scored with :meth:`loglikelihood` (approximate, no top-k);
        token-level backends override it with one exact forward pass."""
        pieces = [(m.group(0), m.start()) for m in _PIECES.finditer(text) if m.start() >= start]
        scored = [(p, off) for p, off in pieces if off > 0]
        res = self.loglikelihood([LoglikelihoodRequest(text[:off], p) for p, off in scored], progress=False)
        lps = {off: r.logprob for (_, off), r in zip(scored, res)}
        return [(p, off, lps.get(off), [(p, lps[off])] if off in lps else []) for p, off in pieces]

    def next_token_logprobs(self, prompt: str, k: int) -> list[tuple[str, float]]:
        """The top-``k`` next tokens after ``prompt`` with their logprobs (default: unknown, [])."""
        return []

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` is (usage counts, ``finish_reason``); default: GPT-2-style pieces."""
        return len(_PIECES.findall(text))

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract  # pragma: no cover
        """Release memory; the engine calls it between model and base."""
