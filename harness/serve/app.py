"""The served model behind its bounds: who waits, for how long, and for how many tokens.

Why: a model is not thread-safe, so one lock serialises model calls; without bounds one
request with a huge ``max_tokens`` held that lock for minutes while every other request
timed out, and generation went on after its client hung up. Here every request is bounded:
a slot in a queue of ``max_queue`` (else 503 at once), at most ``queue_timeout`` seconds of
waiting for the model (else 503), at most ``max_tokens_cap`` tokens and ``request_timeout``
seconds of generation (then ``finish_reason: "length"``), and generation goes token by token
(:meth:`Model.stream`) so it stops as soon as the client is gone.
"""
from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api import GenerateRequest, Model
from ..api.chat import cut_at_stop
from ..errors import HarnessError
from .request import ApiError, BadRequest, ChatCall, CompletionCall, Sampling, parse_chat, parse_completion

Token = tuple[str, int, "float | None", list]  # text, char offset, logprob (None: first), top [(tok, lp)]


@dataclass
class Limits:
    """The server's bounds (``harness serve --max-tokens-cap/--request-timeout/...``)."""

    max_tokens_cap: int = 512  # a larger max_tokens is capped (finish_reason "length")
    request_timeout: float = 60.0  # seconds of generation per request; logprob scoring gets as long again
    queue_timeout: float = 120.0  # seconds a request may wait for the model before a 503
    max_queue: int = 64  # requests waiting for or using the model; more get a 503 at once
    max_connections: int = 256  # open connections (threads); more get a 503 and are closed
    max_body: int = 4 * 1024 * 1024  # bytes of JSON per request (413 beyond)
    idle_timeout: float = 30.0  # seconds a connection may take to send a request


class ClientGone(Exception):
    """The client hung up: stop working on its request, answer nothing."""


class Call:
    """One request's clock and its client: a generation deadline and a hang-up check."""

    def __init__(self, gone: Callable[[], bool] | None = None) -> None:
        self.gone = gone or (lambda: False)
        self.deadline = math.inf

    def check(self) -> None:
        if self.gone():
            raise ClientGone

    def expired(self, grace: float = 0.0) -> bool:
        return time.monotonic() >= self.deadline + grace


def text_logprobs(model: Model, text: str, top_k: int = 0, start: int = 0) -> list[Token]:
    """The tokens of ``text`` from character ``start`` on, with logprobs (``Model.token_logprobs``)."""
    return list(model.token_logprobs(text, top_k, start))


def count_tokens(model: Model, text: str) -> int:
    return model.count_tokens(text)


def render_chat(model: Model, messages: list[dict[str, str]]) -> str:
    """The model's own prompt for a chat (:meth:`Model.apply_chat_template`); template errors are 400s."""
    try:
        return model.apply_chat_template(messages)
    except HarnessError as exc:
        raise BadRequest(str(exc)) from None


class App:
    """The model, its public name, the lock that serialises model calls and the bounds around it."""

    def __init__(self, model: Model, name: str | None = None, api_key: str | None = None,
                 limits: Limits | None = None) -> None:
        self.model, self.name = model, name or getattr(getattr(model, "info", None), "spec", None) or "harness"
        self.api_key, self.limits = api_key, limits or Limits()
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(self.limits.max_queue)
        self._counter = threading.Lock()
        self.active = 0  # requests admitted: waiting for or using the model (GET /health shows it)

    def handle(self, route: str, body: dict[str, Any], call: Call | None = None) -> dict[str, Any]:
        """Answer ``body`` on ``route`` ("completions" or "chat"): checked, queued, bounded."""
        call = call or Call()
        parsed = parse_completion(body) if route == "completions" else parse_chat(body)
        if not self.slots.acquire(blocking=False):
            raise ApiError(503, f"the server is full ({self.limits.max_queue} requests queued); retry later",
                           "server_error", {"Retry-After": "1"})
        with self._counter:
            self.active += 1
        try:
            self._wait_for_model(call)
            try:
                call.deadline = time.monotonic() + self.limits.request_timeout
                if isinstance(parsed, CompletionCall):
                    return self._completions(parsed, call)
                return self._chat(parsed, call)
            finally:
                self.lock.release()
        finally:
            with self._counter:
                self.active -= 1
            self.slots.release()

    def _wait_for_model(self, call: Call) -> None:
        end = time.monotonic() + self.limits.queue_timeout
        while not self.lock.acquire(timeout=max(0.0, min(0.2, end - time.monotonic()))):
            call.check()
            if time.monotonic() >= end:
                raise ApiError(503, f"the model stayed busy for {self.limits.queue_timeout:g}s; retry later",
                               "server_error", {"Retry-After": str(max(1, math.ceil(self.limits.request_timeout)))})

    def _generate(self, prompt: str, s: Sampling, call: Call) -> tuple[str, str]:
        """``(text, finish_reason)``: token by token, until done, the budget, the deadline or a hang-up."""
        if s.max_tokens == 0:
            return "", "stop"
        req = GenerateRequest(prompt, s.stop, min(s.max_tokens, self.limits.max_tokens_cap), s.temperature, s.seed)
        budget = min(req.max_tokens, self.model.max_new_tokens(req))  # the context may cap it further
        call.check()
        if budget <= 0 or call.expired():
            return "", "length"
        pieces: list[str] = []
        stream = self.model.stream(req)
        try:
            for piece in stream:
                pieces.append(piece)
                call.check()
                if call.expired():
                    return cut_at_stop("".join(pieces), s.stop), "length"
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # ends the backend's decode loop (GeneratorExit) on a hang-up or the deadline
        text = cut_at_stop("".join(pieces), s.stop)
        return text, "length" if self.model.count_tokens(text) >= budget else "stop"

    def _scoring(self, call: Call) -> None:
        """Logprob scoring is one forward pass per prompt; past twice the timeout the request fails."""
        call.check()
        if call.expired(grace=self.limits.request_timeout):
            raise ApiError(504, f"the request took longer than 2 x --request-timeout "
                           f"({self.limits.request_timeout:g}s); send fewer prompts", "server_error")

    def _envelope(self, prefix: str, kind: str, choices: list, prompts: list[str], gens: list[str]) -> dict[str, Any]:
        n_in = sum(count_tokens(self.model, p) for p in prompts)
        n_out = sum(count_tokens(self.model, g) for g in gens)
        return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
                "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}

    def _completions(self, c: CompletionCall, call: Call) -> dict[str, Any]:
        choices, gens = [], []
        for i, p in enumerate(c.prompts):
            g, finish = self._generate(p, c.sampling, call)
            gens.append(g)
            lp = None
            if c.logprobs is not None:
                self._scoring(call)
                k = c.logprobs
                toks = text_logprobs(self.model, p + g, k, start=0 if c.echo else len(p))
                lp = {"tokens": [t[0] for t in toks], "token_logprobs": [t[2] for t in toks],
                      "top_logprobs": [None if t[2] is None else {**dict(t[3][:k]), t[0]: t[2]} for t in toks],
                      "text_offset": [t[1] for t in toks]}
            choices.append({"index": i, "text": (p + g) if c.echo else g, "logprobs": lp, "finish_reason": finish})
        return self._envelope("cmpl", "text_completion", choices, c.prompts, gens)

    def _chat(self, c: ChatCall, call: Call) -> dict[str, Any]:
        prompt = render_chat(self.model, c.messages)
        gen, finish = self._generate(prompt, c.sampling, call)
        logprobs = None
        if c.logprobs:
            self._scoring(call)
            k = c.top_logprobs
            toks = text_logprobs(self.model, prompt + gen, k, start=len(prompt))
            if not toks:  # nothing generated: still show the first token's distribution
                toks = [("", len(prompt), 0.0, list(self.model.next_token_logprobs(prompt, k)))]
            logprobs = {"content": [{"token": t[0], "logprob": t[2], "bytes": list(t[0].encode()),
                                     "top_logprobs": [{"token": s, "logprob": v, "bytes": list(s.encode())}
                                                      for s, v in t[3][:k]]} for t in toks]}
        choice = {"index": 0, "message": {"role": "assistant", "content": gen}, "logprobs": logprobs,
                  "finish_reason": finish}
        return self._envelope("chatcmpl", "chat.completion", [choice], [prompt], [gen])
