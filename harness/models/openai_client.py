"""A :class:`Model` over an OpenAI-compatible HTTP endpoint (``--model/--judge openai:URL``).

Why: the judge (or the evaluated model) may be a bigger model served elsewhere, e.g. by
``harness serve``, vLLM or llama.cpp's server. Only the stdlib is used (urllib), so
the backend adds no dependency.

* ``generate``: ``/v1/completions`` (``api="completions"``) or ``/v1/chat/completions``
  (``api="chat"``; a ChatML prompt becomes chat messages). Stop strings are also cut here,
  since servers honour at most four.
* ``loglikelihood``: completions with ``echo=True, logprobs=1, max_tokens=1`` as lm-eval's
  ``local-completions`` does; the continuation's tokens are found by ``text_offset`` and the
  context's trailing whitespace counts to the continuation, as TokenLM/lm-eval tokenise it.
  With ``api="chat"`` (chat-only services), each continuation must be one token (judge
  labels): its log-probability is read from ``top_logprobs`` of the first generated
  token, and a label outside the top list gets −inf (probability 0, as alpaca_eval does).

Transient failures (refused or reset connections, a server that hung up, HTTP 429/5xx)
are retried ``max_retries`` times with exponential backoff and jitter (a ``Retry-After``
header wins); a timeout or a non-HTTP answer is not retried.

The API key comes from the environment variable ``api_key_env`` (default OPENAI_API_KEY)
at request time; it is never stored on the object, in ``info`` or in error messages.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import math
import os
import random
import re
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..api import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, Model, ModelInfo
from ..api.chat import chatml_to_messages, cut_at_stop, messages_to_chatml  # noqa: F401
from ..errors import HarnessError

_RETRY_CODES = (429, 500, 502, 503, 504)


def _display_url(url: str) -> str:
    """The URL without user:password (never echo credentials)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIModel(Model):
    """Client of an OpenAI-compatible server; ``base_url`` like ``http://127.0.0.1:8000`` (``/v1`` optional)."""

    def __init__(self, base_url: str, model: str | None = None, *, api: str = "completions",
                 api_key_env: str = "OPENAI_API_KEY", timeout: float = 300.0, batch_size: int = 8,
                 top_logprobs: int = 20, max_retries: int = 4, backoff: float = 0.5,
                 seed: int = 1234) -> None:
        if api not in ("completions", "chat"):
            raise HarnessError(f"openai:{base_url}: api must be 'completions' or 'chat', not {api!r}")
        url = base_url.strip().rstrip("/")
        if not re.match(r"^https?://", url):
            url = "http://" + url
        self.base_url = url if url.endswith("/v1") else url + "/v1"
        self.url = _display_url(self.base_url)
        self.api, self.api_key_env, self.timeout = api, api_key_env, timeout
        self.batch_size, self.top_logprobs = max(1, batch_size), top_logprobs
        self.max_retries, self.backoff, self.seed = max(0, max_retries), backoff, seed
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        handlers = [urllib.request.ProxyHandler({})] if _is_loopback(host) else []
        self._opener = urllib.request.build_opener(*handlers)
        self.model_name = model or self._first_model()
        self.info = ModelInfo(spec=f"openai:{_display_url(url)}", backend="openai", arch="remote",
                              path=self.url, extra={"model": self.model_name, "api": api})

    # -- HTTP ------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        where = self.url + path
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            last = attempt >= self.max_retries
            req = urllib.request.Request(self.base_url + path, data=data, headers=self._headers(),
                                         method="GET" if payload is None else "POST")
            try:
                with self._opener.open(req, timeout=self.timeout) as resp:
                    body = resp.read()
                break
            except urllib.error.HTTPError as exc:
                if exc.code in _RETRY_CODES and not last:
                    self._backoff(attempt, exc.headers.get("Retry-After"))
                    continue
                raise HarnessError(f"{where}: HTTP {exc.code} {_error_text(exc)}") from None
            except (urllib.error.URLError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, TimeoutError):
                    raise HarnessError(f"{where}: no answer within {self.timeout:g}s") from None
                if not last and not isinstance(reason, (socket.gaierror, ssl.SSLError)):  # refused, reset, hung up
                    self._backoff(attempt)
                    continue
                tries = f" after {attempt + 1} tries" if attempt else ""
                raise HarnessError(f"{where}: cannot connect ({_one_line(str(reason))}){tries}; "
                                   "is the server running?") from None
            except TimeoutError:
                raise HarnessError(f"{where}: no answer within {self.timeout:g}s") from None
            except http.client.IncompleteRead:  # the server hung up mid-answer
                if last:
                    raise HarnessError(f"{where}: the answer was cut off {attempt + 1} times") from None
                self._backoff(attempt)
            except http.client.HTTPException as exc:  # not HTTP at all (wrong port?)
                raise HarnessError(f"{where}: garbled answer ({type(exc).__name__}); is this an HTTP server?") from None
        try:
            out = json.loads(body)
        except ValueError:
            raise HarnessError(f"{where}: the answer is not JSON ({_one_line(body[:60].decode('utf-8', 'replace'))!r}); "
                               "is this an OpenAI-compatible server?") from None
        if not isinstance(out, dict):
            raise HarnessError(f"{where}: unexpected answer (a JSON {type(out).__name__}, not an object)")
        return out

    def _backoff(self, attempt: int, retry_after: str | None = None) -> None:
        """Exponential backoff with jitter (so many clients do not retry in step); a server's
        ``Retry-After`` (seconds) wins, up to a minute."""
        delay = self.backoff * 2 ** attempt * (1 + random.random() / 4)
        try:
            delay = max(delay, min(float(retry_after or 0), 60.0))
        except ValueError:  # an HTTP date: keep the backoff
            pass
        time.sleep(delay)

    def _first_model(self) -> str:
        data = self._request("/models").get("data")
        try:
            return str(data[0]["id"])
        except (TypeError, IndexError, KeyError):
            raise HarnessError(f"{self.url}/models lists no model; pass --judge-model NAME") from None

    def _choices(self, out: dict[str, Any], path: str, n: int) -> list[dict[str, Any]]:
        choices = out.get("choices")
        if not isinstance(choices, list) or len(choices) != n or not all(isinstance(c, dict) for c in choices):
            raise HarnessError(f"{self.url}{path}: unexpected answer (expected {n} choice(s)); "
                               "is this an OpenAI-compatible server?")
        return sorted(choices, key=lambda c: c.get("index", 0))

    # -- Model API -------------------------------------------------------------------
    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        out = []
        for r in requests:
            body: dict[str, Any] = {"model": self.model_name, "max_tokens": r.max_tokens, "temperature": r.temperature,
                                    "seed": self.seed if r.seed is None else r.seed}
            if r.stop:
                body["stop"] = list(r.stop[:4])
            if self.api == "chat":
                body["messages"] = chatml_to_messages(r.prompt)
                choice = self._choices(self._request("/chat/completions", body), "/chat/completions", 1)[0]
                text = (choice.get("message") or {}).get("content")
            else:
                body["prompt"] = r.prompt
                text = self._choices(self._request("/completions", body), "/completions", 1)[0].get("text")
            if not isinstance(text, str):
                raise HarnessError(f"{self.url}: unexpected answer (no generated text)")
            out.append(cut_at_stop(text, r.stop))
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest], progress: bool = True) -> list[LoglikelihoodResult]:
        if self.api == "chat":
            return self._loglikelihood_chat(requests)
        results: list[LoglikelihoodResult] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            body = {"model": self.model_name, "prompt": [r.context + r.continuation for r in batch],
                    "max_tokens": 1, "temperature": 0, "logprobs": 1, "echo": True, "seed": self.seed}
            choices = self._choices(self._request("/completions", body), "/completions", len(batch))
            results += [self._parse_echo(r, c.get("logprobs")) for r, c in zip(batch, choices)]
        return results

    def _parse_echo(self, req: LoglikelihoodRequest, lp: Any) -> LoglikelihoodResult:
        """Sum the logprobs of the echoed tokens that overlap the continuation."""
        if not req.continuation:
            return LoglikelihoodResult(0.0, True)
        try:
            tokens, values = lp["tokens"], lp["token_logprobs"]
            offsets = lp.get("text_offset") or _cumulative(tokens)
            tops = lp.get("top_logprobs") or [None] * len(tokens)
        except (TypeError, KeyError):
            raise HarnessError(f"{self.url}/completions: no echoed logprobs in the answer; the server must "
                               "support echo=True with logprobs (or use api=chat)") from None
        lo = len(req.context.rstrip())  # trailing context whitespace belongs to the continuation
        hi = len(req.context) + len(req.continuation)
        total, greedy, seen = 0.0, True, False
        for tok, value, off, top in zip(tokens, values, offsets, tops):
            if off >= hi or (off < lo and off + len(tok) <= lo):  # outside; a straddling token counts
                continue
            if value is None:
                raise HarnessError(f"{self.url}/completions: no logprob for the first token; "
                                   "a loglikelihood request needs a non-empty context")
            seen = True
            total += float(value)
            if not top or float(value) < max(float(v) for v in top.values()) - 1e-6:
                greedy = False
        if not seen:
            raise HarnessError(f"{self.url}/completions: the echoed tokens do not cover the continuation")
        return LoglikelihoodResult(total, greedy)

    def _loglikelihood_chat(self, requests: list[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        tops: dict[str, dict[str, float]] = {}
        for ctx in dict.fromkeys(r.context for r in requests):
            body = {"model": self.model_name, "messages": chatml_to_messages(ctx), "max_tokens": 1,
                    "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs, "seed": self.seed}
            choice = self._choices(self._request("/chat/completions", body), "/chat/completions", 1)[0]
            try:
                first = choice["logprobs"]["content"][0]["top_logprobs"]
                tops[ctx] = {t["token"]: float(t["logprob"]) for t in first}
            except (TypeError, KeyError, IndexError, ValueError):
                raise HarnessError(f"{self.url}/chat/completions: no top_logprobs in the answer; "
                                   "the server must support logprobs=true with top_logprobs") from None
        out = []
        for r in requests:
            top = tops[r.context]
            value = top.get(r.continuation, -math.inf)
            best = max(top.items(), key=lambda kv: kv[1])[0] if top else None
            out.append(LoglikelihoodResult(value, best == r.continuation))
        return out


def _cumulative(tokens: Sequence[str]) -> list[int]:
    offsets, pos = [], 0
    for tok in tokens:
        offsets.append(pos)
        pos += len(tok)
    return offsets


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The server's error message (OpenAI shape ``{"error": {"message"}}``) on one line."""
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        return _one_line(exc.reason)
    try:
        msg = json.loads(body).get("error", {})
        msg = msg.get("message", "") if isinstance(msg, dict) else str(msg)
    except (ValueError, AttributeError):
        msg = body
    return _one_line(msg or exc.reason)
