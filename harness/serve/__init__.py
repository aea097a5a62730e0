"""``harness serve``: an OpenAI-compatible HTTP server over any harness :class:`Model`.

Why: one served model can be the judge of many runs (``--judge openai:URL``), and tools
that speak the OpenAI API (lm-eval's ``local-completions``, alpaca_eval) can evaluate
harness checkpoints. Stdlib only (``ThreadingHTTPServer``).

Endpoints: ``GET /v1/models``; ``POST /v1/completions`` (prompt, max_tokens, temperature,
stop, seed, logprobs, echo: with ``echo`` + ``logprobs`` the prompt's token logprobs come
back, ``max_tokens=0`` generates nothing); ``POST /v1/chat/completions`` (messages via the
model's prompt format or chat template, else ChatML; ``logprobs`` + ``top_logprobs``).

* :mod:`.request`: every field checked before model work (4xx JSON errors);
* :mod:`.app`: one model call at a time under a lock, inside bounds (queue, wait, tokens,
  time; generation stops when the client hangs up);
* :mod:`.server`: HTTP (routes, body limits, backlog, connection threads).

Token log-probabilities come from the backend (``Model.token_logprobs``,
``next_token_logprobs``, ``count_tokens``): exact for token-level backends, approximate
pieces scored with ``loglikelihood`` for others.
"""
from __future__ import annotations

from .app import App, Call, ClientGone, Limits, count_tokens, render_chat, text_logprobs
from .request import ApiError, BadRequest
from .server import Handler, Server, check_port, make_server, serve

__all__ = ["ApiError", "App", "BadRequest", "Call", "ClientGone", "Handler", "Limits", "Server", "check_port",
           "count_tokens", "make_server", "render_chat", "serve", "text_logprobs"]
