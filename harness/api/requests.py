"""The two request kinds every benchmark emits and every model backend answers.

Requests are frozen dataclasses so they hash: the engine deduplicates them and,
later, a request cache keys on ``(model fingerprint, request)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context), summed over the continuation's tokens."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    is_greedy: bool  # every continuation token is the argmax at its position


@dataclass(frozen=True)
class GenerateRequest:
    """Continue ``prompt`` until a ``stop`` string or ``max_tokens`` new tokens.

    ``temperature == 0`` is greedy. With sampling, ``seed`` makes the draw
    reproducible per request (independent of batch composition).
    The returned text excludes the prompt and is cut before the first stop string.
    """

    prompt: str
    stop: tuple[str, ...] = ()
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = None


Request = LoglikelihoodRequest | GenerateRequest


@dataclass
class Instance:
    """One evaluation document and the requests it needs.

    ``prompt`` and ``target`` are what a person reads in the report; ``doc`` is the
    benchmark's own record, handed back to :meth:`Benchmark.process`.
    """

    doc_id: str
    subset: str
    doc: dict
    prompt: str
    target: str | list[str]
    requests: list[Request] = field(default_factory=list)
