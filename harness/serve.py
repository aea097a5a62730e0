"""``harness serve``: an OpenAI-compatible HTTP server over any harness :class:`Model`.

Why: one served model can be the judge of many runs (``--judge openai:URL``), and tools
that speak the OpenAI API (lm-eval's ``local-completions``, alpaca_eval) can evaluate
harness checkpoints. Stdlib only (``ThreadingHTTPServer``); requests are answered one
at a time under a lock, because a model is not thread-safe.

Endpoints: ``GET /v1/models``; ``POST /v1/completions`` (prompt, max_tokens, temperature,
stop, seed, logprobs, echo: with ``echo`` + ``logprobs`` the prompt's token logprobs come
back, ``max_tokens=0`` generates nothing); ``POST /v1/chat/completions`` (messages via the
model's prompt format or chat template, else ChatML; ``logprobs`` + ``top_logprobs``).

Token log-probabilities come from the backend (``Model.token_logprobs``,
``next_token_logprobs``, ``count_tokens``): exact for token-level backends, approximate
pieces scored with ``loglikelihood`` for others.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .api import GenerateRequest, Model
from .errors import HarnessError

Token = tuple[str, int, "float | None", list]  # text, char offset, logprob (None: first), top [(tok, lp)]
MAX_BODY = 32 * 1024 * 1024


class BadRequest(Exception):
    """A client error: answered with HTTP 400 and an OpenAI-style error object."""


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
    """The model, its public name and the lock that serialises model calls."""

    def __init__(self, model: Model, name: str | None = None, api_key: str | None = None) -> None:
        self.model, self.name = model, name or getattr(getattr(model, "info", None), "spec", None) or "harness"
        self.api_key, self.lock = api_key, threading.Lock()

    def _gen_args(self, body: dict[str, Any], default_max: int) -> tuple[tuple[str, ...], int, float, int | None]:
        stop = body.get("stop") or ()
        stop = (stop,) if isinstance(stop, str) else tuple(stop)
        try:
            max_tokens = int(body.get("max_tokens", body.get("max_completion_tokens", default_max)) or 0)
            temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])  # OpenAI's default
            seed = None if body.get("seed") is None else int(body["seed"])
        except (TypeError, ValueError):
            raise BadRequest("max_tokens, temperature and seed must be numbers") from None
        if max_tokens < 0 or not all(isinstance(s, str) for s in stop) or int(body.get("n", 1) or 1) != 1:
            raise BadRequest("need max_tokens >= 0, stop strings and n = 1")
        return stop, max_tokens, temperature, seed

    def _finish(self, gen: str, max_tokens: int) -> str:
        return "length" if max_tokens and count_tokens(self.model, gen) >= max_tokens else "stop"

    def _envelope(self, prefix: str, kind: str, choices: list, prompts: list[str], gens: list[str]) -> dict[str, Any]:
        n_in = sum(count_tokens(self.model, p) for p in prompts)
        n_out = sum(count_tokens(self.model, g) for g in gens)
        return {"id": f"{prefix}-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
                "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}}

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body.get("prompt", "")
        prompts = [prompts] if isinstance(prompts, str) else prompts
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise BadRequest("prompt must be a string or a list of strings (token ids are not supported)")
        stop, max_tokens, temperature, seed = self._gen_args(body, 16)
        want = body.get("logprobs")
        echo = bool(body.get("echo", False))
        reqs = [GenerateRequest(p, stop, max_tokens, temperature, seed) for p in prompts]
        gens = self.model.generate(reqs, progress=False) if max_tokens > 0 else [""] * len(prompts)
        choices = []
        for i, (p, g) in enumerate(zip(prompts, gens)):
            lp = None
            if want is not None:
                k = max(int(want), 0)
                toks = text_logprobs(self.model, p + g, k, start=0 if echo else len(p))
                lp = {"tokens": [t[0] for t in toks], "token_logprobs": [t[2] for t in toks],
                      "top_logprobs": [None if t[2] is None else {**dict(t[3][:k]), t[0]: t[2]} for t in toks],
                      "text_offset": [t[1] for t in toks]}
            choices.append({"index": i, "text": (p + g) if echo else g, "logprobs": lp,
                            "finish_reason": self._finish(g, max_tokens)})
        return self._envelope("cmpl", "text_completion", choices, prompts, gens)

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list")
        clean = []
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, list):  # [{"type": "text", "text": ...}]
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            if not isinstance(content, str) or not isinstance(m.get("role"), str):
                raise BadRequest("every message needs a role and text content")
            clean.append({"role": m["role"], "content": content})
        stop, max_tokens, temperature, seed = self._gen_args(body, 256)
        prompt = render_chat(self.model, clean)
        gen = self.model.generate([GenerateRequest(prompt, stop, max_tokens, temperature, seed)],
                                  progress=False)[0] if max_tokens > 0 else ""
        logprobs = None
        if body.get("logprobs"):
            k = int(body.get("top_logprobs") or 0)
            toks = text_logprobs(self.model, prompt + gen, k, start=len(prompt))
            if not toks:  # nothing generated: still show the first token's distribution
                toks = [("", len(prompt), 0.0, list(self.model.next_token_logprobs(prompt, k)))]
            logprobs = {"content": [{"token": t[0], "logprob": t[2], "bytes": list(t[0].encode()),
                                     "top_logprobs": [{"token": s, "logprob": v, "bytes": list(s.encode())}
                                                      for s, v in t[3][:k]]} for t in toks]}
        choice = {"index": 0, "message": {"role": "assistant", "content": gen}, "logprobs": logprobs,
                  "finish_reason": self._finish(gen, max_tokens)}
        return self._envelope("chatcmpl", "chat.completion", [choice], [prompt], [gen])


class Handler(BaseHTTPRequestHandler):
    server_version = "harness-serve"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)

    def _send(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send(code, {"error": {"message": message, "type": kind, "code": code}})

    def _dispatch(self, method: str) -> None:
        app: App = self.server.app  # type: ignore[attr-defined]
        if app.api_key and self.headers.get("Authorization", "") != f"Bearer {app.api_key}":
            return self._error(401, "missing or wrong API key", "authentication_error")
        path = self.path.rstrip("/")
        if method == "GET" and path in ("/v1/models", "/models"):
            return self._send(200, {"object": "list", "data": [{"id": app.name, "object": "model", "owned_by": "harness"}]})
        if method == "GET" and path in ("/health", "/v1/health"):
            return self._send(200, {"status": "ok"})
        route = {"/v1/completions": app.completions, "/v1/chat/completions": app.chat}.get(path)
        if method != "POST" or route is None:
            return self._error(404, f"no route {method} {self.path}")
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise BadRequest(f"body must be 1 byte to {MAX_BODY} bytes of JSON")
            body = json.loads(self.rfile.read(length))
            if not isinstance(body, dict):
                raise BadRequest("body must be a JSON object")
            with app.lock:
                answer = route(body)
        except (BadRequest, HarnessError, ValueError) as exc:
            return self._error(400, str(exc) or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            return self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")


def make_server(model: Model, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
                api_key: str | None = None, verbose: bool = False) -> ThreadingHTTPServer:
    """A ready server (``port=0`` picks a free one: see ``server.server_address``); call ``serve_forever``."""
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise HarnessError(f"harness serve: cannot listen on {host}:{port} ({exc.strerror}); try another --port") from None
    server.daemon_threads = True
    server.app = App(model, model_name, api_key)  # type: ignore[attr-defined]
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


def serve(model: Model, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
          api_key: str | None = None) -> None:
    """Serve until Ctrl-C."""
    server = make_server(model, host, port, model_name, api_key, verbose=True)
    name = server.app.name  # type: ignore[attr-defined]
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: serving on {host} without --api-key-env: anyone who can reach it can use the model",
              file=sys.stderr)
    print(f"serving {name!r} at http://{host}:{server.server_address[1]}/v1 (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
