"""Checking an OpenAI request body before any model work.

Why: a malformed request must be a 4xx answer in the OpenAI error shape, never a 500 from
deep inside the model (``stop: 5``, a 2**70 seed, a 10**6 ``logprobs``) and never a long
hold of the model. Every known field is type- and range-checked here; unknown fields are
ignored, as vLLM does, so clients that send extra options keep working.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_TOP_LOGPROBS = 100
MAX_PROMPTS = 128  # prompts in one /v1/completions request
MAX_STOPS = 16
MAX_SEED = 2**63 - 1
# accepted for compatibility, range-checked, not used (sampling is temperature-only)
IGNORED_NUMBERS = {"top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0), "frequency_penalty": (-2.0, 2.0)}


class ApiError(Exception):
    """A request the server answers with ``status`` and ``{"error": {"message", "type", "code"}}``."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers or {}


class BadRequest(ApiError):
    """A client error: HTTP 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


@dataclass
class Sampling:
    stop: tuple[str, ...]
    max_tokens: int  # as asked; the server caps it
    temperature: float
    seed: int | None


@dataclass
class CompletionCall:
    prompts: list[str]
    sampling: Sampling
    logprobs: int | None  # top-k alternatives per token, None: no logprobs
    echo: bool


@dataclass
class ChatCall:
    messages: list[dict[str, str]]
    sampling: Sampling
    logprobs: bool
    top_logprobs: int


def _kind(value: Any) -> str:
    return "null" if value is None else {bool: "boolean", int: "integer", float: "number", str: "string",
                                         list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _int(body: dict[str, Any], key: str, lo: int, hi: int | None, default: int | None) -> int | None:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer, not {_kind(value)}")
    if value < lo or (hi is not None and value > hi):
        raise BadRequest(f"{key} must be {lo} to {hi if hi is not None else 'any size'} (got {value})")
    return value


def _number(body: dict[str, Any], key: str, lo: float, hi: float, default: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{key} must be a number, not {_kind(value)}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise BadRequest(f"{key} must be {lo:g} to {hi:g} (got {value})")
    return float(value)


def _bool(body: dict[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false, not {_kind(value)}")
    return bool(value)


def _sampling(body: dict[str, Any], default_max: int) -> Sampling:
    if _bool(body, "stream"):
        raise BadRequest("stream=true is not supported by harness serve; ask without stream")
    if _int(body, "n", 1, None, 1) != 1:
        raise BadRequest("n must be 1 (one answer per request)")
    for key in ("model", "user"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise BadRequest(f"{key} must be a string, not {_kind(body[key])}")
    for key, (lo, hi) in IGNORED_NUMBERS.items():
        _number(body, key, lo, hi, 0.0)
    if body.get("logit_bias") is not None and not isinstance(body["logit_bias"], dict):
        raise BadRequest(f"logit_bias must be an object, not {_kind(body['logit_bias'])}")
    stop = body.get("stop")
    stop = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > MAX_STOPS or not all(isinstance(s, str) for s in stop):
        raise BadRequest(f"stop must be a string or a list of at most {MAX_STOPS} strings")
    key = "max_tokens" if body.get("max_tokens") is not None else "max_completion_tokens"
    return Sampling(tuple(stop), _int(body, key, 0, None, default_max) or 0,
                    _number(body, "temperature", 0.0, 2.0, 1.0),  # OpenAI's default temperature is 1
                    _int(body, "seed", 0, MAX_SEED, None))


def parse_completion(body: dict[str, Any]) -> CompletionCall:
    """``POST /v1/completions``: ``prompt`` (a string or a list of strings) is required."""
    if "prompt" not in body:
        raise BadRequest("prompt is required (a string or a list of strings)")
    prompts = body["prompt"]
    prompts = [prompts] if isinstance(prompts, str) else prompts
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("prompt must be a string or a list of strings (token ids are not supported)")
    if len(prompts) > MAX_PROMPTS:
        raise BadRequest(f"at most {MAX_PROMPTS} prompts per request (got {len(prompts)})")
    sampling = _sampling(body, 16)
    return CompletionCall(prompts, sampling, _int(body, "logprobs", 0, MAX_TOP_LOGPROBS, None), _bool(body, "echo"))


def parse_chat(body: dict[str, Any]) -> ChatCall:
    """``POST /v1/chat/completions``: ``messages`` with text content (a string or text parts)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content}")
    clean = []
    for i, m in enumerate(messages):
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):  # [{"type": "text", "text": ...}]
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise BadRequest(f"messages[{i}].content: only text parts ({{type: text, text: string}}) are supported")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str) or not isinstance(m.get("role"), str) or not m["role"]:
            raise BadRequest(f"messages[{i}] needs a role (string) and text content")
        clean.append({"role": m["role"], "content": content})
    sampling = _sampling(body, 256)
    return ChatCall(clean, sampling, _bool(body, "logprobs"), _int(body, "top_logprobs", 0, MAX_TOP_LOGPROBS, 0) or 0)
