"""The review page's server: stdlib HTTP on 127.0.0.1, a JSON API the page calls, the vote log."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from .items import Item
from .votes import CHOICES, VoteLog

MAX_BODY = 64 * 1024


class Session:
    """The items, the vote log and what to show next (the first item without a standing vote)."""

    def __init__(self, items: list[Item], log: VoteLog) -> None:
        self.items, self.log = items, log
        self.by_key = {i.key: i for i in items}

    def state(self) -> dict[str, Any]:
        done = sum(1 for i in self.items if i.key in self.log.votes)
        nxt = next((i for i in self.items if i.key not in self.log.votes), None)
        out: dict[str, Any] = {"done": done, "total": len(self.items), "can_undo": bool(self.log.order), "item": None}
        if nxt is not None:
            left, right = (nxt.answer_a, nxt.answer_b) if nxt.first == "a" else (nxt.answer_b, nxt.answer_a)
            out["item"] = {"key": nxt.key, "benchmark": nxt.benchmark, "prompt": nxt.prompt,
                           "left": left, "right": right}
        return out

    def vote(self, key: str, side: str) -> None:
        """``side`` is what the person pressed: "left", "right", "tie" or "skip"."""
        item = self.by_key.get(key)
        if item is None:
            raise ValueError(f"unknown item {key!r}")
        if side in ("left", "right"):
            shown_first = side == "left"
            choice = item.first if shown_first else ("b" if item.first == "a" else "a")
        elif side in CHOICES:
            choice = side
        else:
            raise ValueError("vote must be left, right, tie or skip")
        self.log.vote(key, choice, shown_left=item.first, label_a=item.label_a, label_b=item.label_b)


def _page() -> bytes:
    return resources.files("harness_reports").joinpath("templates", "review.html").read_bytes()


def make_handler(session: Session) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "harness-review"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the terminal shows progress
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; script-src 'unsafe-inline'; "
                             "style-src 'unsafe-inline'; connect-src 'self'")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj: dict[str, Any]) -> None:
            self._send(code, json.dumps(obj).encode("utf-8"), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            if self.path in ("/", "/index.html"):
                self._send(200, _page(), "text/html; charset=utf-8")
            elif self.path == "/api/state":
                self._json(200, session.state())
            else:
                self._json(404, {"error": f"no such page: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            try:
                n = int(self.headers.get("Content-Length") or 0)
                if n > MAX_BODY:
                    raise ValueError("request too large")
                body = json.loads(self.rfile.read(n) or b"{}")
                if self.path == "/api/vote":
                    session.vote(str(body.get("key")), str(body.get("side")))
                elif self.path == "/api/undo":
                    session.log.undo()
                else:
                    self._json(404, {"error": f"no such endpoint: {self.path}"})
                    return
            except (ValueError, AttributeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, session.state())

    return Handler


def make_server(session: Session, host: str = "127.0.0.1", port: int = 8790) -> ThreadingHTTPServer:
    try:
        server = ThreadingHTTPServer((host, port), make_handler(session))
    except OSError as exc:
        raise HarnessError(f"harness review: cannot listen on {host}:{port} ({exc.strerror}); "
                           "try another --port") from None
    server.daemon_threads = True
    return server


def review_path(run: Path) -> Path:
    return run / "reviews.jsonl"
