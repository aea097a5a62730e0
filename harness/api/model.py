"""The model API: the one interface every backend implements and every benchmark consumes.

In the spirit of lm-eval's ``LM``: two batched calls and a chat template. A backend
sees whole lists of requests so it can sort, batch and cache as it likes; the
results must come back in the order of the requests, and must not depend on the
batch size (scores are batch-size-invariant up to float rounding).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from .chat import messages_to_chatml
from .requests import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult


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

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text this model expects for a chat (``[{"role", "content"}]``), as lm-eval's
        ``LM.apply_chat_template``. Default: ChatML; token-level backends use the checkpoint's
        recorded prompt format or its own chat template (see :mod:`harness.prompts`)."""
        return messages_to_chatml(messages, add_generation_prompt)

    def close(self) -> None:  # pragma: no cover - backends with resources override
        """Release memory; the engine calls it between model and base."""
