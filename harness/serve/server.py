"""HTTP for ``harness serve``: routes, body checks, OpenAI-shaped errors, a bounded thread pool.

Why the stdlib (``ThreadingHTTPServer``) suffices: the model answers one request at a time
anyway (see :mod:`.app`); what a hostile client needs is bounds, set here: a listen backlog
of 128 (socketserver's default of 5 reset connections under load), at most
``max_connections`` connection threads (more get a 503), a socket timeout for slow senders,
a body size limit, and a 4xx JSON answer for every malformed request (http.server's own
HTML errors included).
"""
from __future__ import annotations

import hmac
import json
import select
import socket
import sys
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from ..api import Model
from ..errors import HarnessError
from .app import App, Call, ClientGone, Limits
from .request import ApiError

ROUTES = {"/v1/models": "GET", "/models": "GET", "/health": "GET", "/v1/health": "GET",
          "/v1/completions": "POST", "/completions": "POST",
          "/v1/chat/completions": "POST", "/chat/completions": "POST"}
LINGER_BYTES, LINGER_SECONDS = 16 * 1024 * 1024, 2.0  # what an error answer may drain of an unread body


def _error_body(code: int, message: str, kind: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode("utf-8")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Handler(BaseHTTPRequestHandler):
    server_version = "harness-serve"
    protocol_version = "HTTP/1.1"
    server: Server
    _body_unread = False

    def setup(self) -> None:
        self.timeout = self.server.app.limits.idle_timeout  # slow senders do not hold a thread for ever
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet unless asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    def _send(self, code: int, obj: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode("utf-8")
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if code >= 400:  # the body may be unread: start the next request on a fresh connection
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client is gone
            self.close_connection = True
            return
        if code >= 400 and self._body_unread:
            self._linger()

    def _linger(self) -> None:
        """Read and drop an unread body (bounded) before closing: closing on unread data sends a
        reset, and the client, still sending, would never see the error answer."""
        self._body_unread = False
        try:
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            left, end = LINGER_BYTES, time.monotonic() + LINGER_SECONDS
            while left > 0 and time.monotonic() < end:
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass

    def _error(self, code: int, message: str, kind: str = "invalid_request_error",
               headers: dict[str, str] | None = None) -> None:
        self._send(code, {"error": {"message": message, "type": kind, "code": code}}, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method, huge headers) as JSON too."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # http.server's answer to an unknown method
            code, message = 405, f"method {self.command} is not supported"
        self._error(code, message or HTTPStatus(code).phrase, "invalid_request_error" if code < 500 else "server_error")

    def _peer_gone(self) -> bool:
        """Has the client closed its connection? (Readable with nothing to read = EOF.)"""
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.connection, select.POLLIN)
                ready = bool(poller.poll(0))
            else:  # pragma: no cover - Windows
                ready = bool(select.select([self.connection], [], [], 0)[0])
            return ready and not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True

    def _read_json(self) -> dict[str, Any]:
        limits: Limits = self.server.app.limits
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise ApiError(411, "chunked bodies are not supported; send Content-Length")
        if self.headers.get_content_type() != "application/json":
            raise ApiError(415, f"Content-Type must be application/json (got {self.headers.get('Content-Type')!r})")
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise ApiError(411, "Content-Length is required")
        try:
            length = int(raw)
        except ValueError:
            raise ApiError(400, f"Content-Length must be a number (got {raw!r})") from None
        if length <= 0:
            raise ApiError(400, "the body is empty; send a JSON object")
        if length > limits.max_body:
            raise ApiError(413, f"the body is {length} bytes; at most {limits.max_body} are accepted")
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            raise ApiError(408, f"the body did not arrive within {limits.idle_timeout:g}s") from None
        self._body_unread = False
        if len(data) < length:
            raise ClientGone
        try:
            body = json.loads(data, parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise ApiError(400, f"the body is not valid JSON ({str(exc)[:120]})") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object")
        return body

    def _dispatch(self) -> None:
        app: App = self.server.app
        method = self.command
        self._body_unread = method in ("POST", "PUT", "PATCH") and (
            self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers)
        if app.api_key and not hmac.compare_digest(self.headers.get("Authorization", "").encode("utf-8", "replace"),
                                                   f"Bearer {app.api_key}".encode()):
            return self._error(401, "missing or wrong API key", "authentication_error")
        path = urlsplit(self.path).path.rstrip("/") or "/"
        allowed = ROUTES.get(path)
        if allowed is None:
            return self._error(404, f"no route {path}; see /v1/models, /v1/completions, /v1/chat/completions",
                               "not_found_error")
        if method != allowed and not (method == "HEAD" and allowed == "GET"):
            return self._error(405, f"{path} takes {allowed}, not {method}", headers={"Allow": allowed})
        if allowed == "GET":
            if path.endswith("models"):
                return self._send(200, {"object": "list", "data": [{"id": app.name, "object": "model",
                                                                     "owned_by": "harness"}]})
            return self._send(200, {"status": "ok", "active_requests": app.active, "max_queue": app.limits.max_queue})
        try:
            body = self._read_json()
            answer = app.handle("chat" if path.endswith("chat/completions") else "completions", body,
                                Call(self._peer_gone))
        except ApiError as exc:
            return self._error(exc.status, exc.message, exc.kind, exc.headers)
        except ClientGone:
            self.close_connection = True
            self.log_message("client hung up: %s stopped", path)
            return None
        except HarnessError as exc:
            return self._error(400, str(exc) or type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the server keeps serving
            return self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
        self._send(200, answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a real listen backlog and a bounded number of connection threads."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's default (5) resets connections under load

    def __init__(self, address: tuple[str, int], app: App, verbose: bool = False) -> None:
        self.app, self.verbose = app, verbose
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._threads_left = threading.BoundedSemaphore(app.limits.max_connections)
        self._refused: deque[tuple[float, socket.socket]] = deque()  # (close after, socket)
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._threads_left.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._threads_left.release()
            raise

    def _refuse(self, request: socket.socket) -> None:
        """503 on a connection beyond ``max_connections``, from the accept loop, never blocking it:
        a few hundred bytes on a fresh socket; closed a second later by :meth:`service_actions`
        (closing at once, before the request arrives, would reset the connection instead)."""
        body = _error_body(503, "too many open connections; retry later", "server_error")
        try:
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            request.shutdown(socket.SHUT_WR)
            request.setblocking(False)
        except OSError:
            self.shutdown_request(request)
            return
        self._refused.append((time.monotonic() + 1.0, request))
        while len(self._refused) > 1024:
            self._drop(self._refused.popleft()[1])

    def _drop(self, sock: socket.socket) -> None:
        try:
            for _ in range(64):  # drain what the client sent (bounded), so closing sends no reset
                if not sock.recv(65536):
                    break
        except OSError:  # nothing more to read (non-blocking)
            pass
        sock.close()

    def service_actions(self) -> None:
        super().service_actions()
        now = time.monotonic()
        while self._refused and self._refused[0][0] <= now:
            self._drop(self._refused.popleft()[1])

    def server_close(self) -> None:
        super().server_close()
        while self._refused:
            self._drop(self._refused.popleft()[1])

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._threads_left.release()


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, on a port out of range or an address in use (before loading a model)."""
    if not 0 <= port <= 65535:
        raise HarnessError(f"--port {port}: must be 0 to 65535 (0 picks a free port)")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server binds
            probe.bind((host, port))
    except OSError as exc:
        raise HarnessError(f"harness serve: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                           "try another --port") from None


def make_server(model: Model, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
                api_key: str | None = None, verbose: bool = False, limits: Limits | None = None) -> Server:
    """A ready server (``port=0`` picks a free one: see ``server.server_address``); call ``serve_forever``."""
    if not 0 <= port <= 65535:
        raise HarnessError(f"--port {port}: must be 0 to 65535 (0 picks a free port)")
    try:
        return Server((host, port), App(model, model_name, api_key, limits), verbose)
    except OSError as exc:
        raise HarnessError(f"harness serve: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                           "try another --port") from None


def serve(model: Model, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
          api_key: str | None = None, limits: Limits | None = None) -> None:
    """Serve until Ctrl-C."""
    server = make_server(model, host, port, model_name, api_key, verbose=True, limits=limits)
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        print(f"warning: serving on {host} without --api-key-env: anyone who can reach it can use the model",
              file=sys.stderr)
    lim = server.app.limits
    print(f"serving {server.app.name!r} at http://{host}:{server.server_address[1]}/v1 (at most "
          f"{lim.max_tokens_cap} tokens and {lim.request_timeout:g}s per request, {lim.max_queue} queued; "
          "Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
