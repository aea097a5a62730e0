"""`harness serve` under hostile load, on 127.0.0.1 only: bounded in count and time.

A fake model streams one "x" token per step after a short sleep (or waits on a gate), so
the tests are fast and deterministic; every socket has a timeout and every server is shut
down, so a regression fails instead of hanging. No tight wall-clock asserts: outcomes,
ordering and generous bounds only.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from harness.api import GenerateRequest
from harness.serve import Limits, make_server
from harness.testing import FakeModel

WAIT = 30.0  # generous upper bound for anything that should take well under a second


class SlowLM(FakeModel):
    """Streams ``"x"`` tokens one at a time (a sleep each, or a gate to pass), up to ``natural``
    tokens, the request's budget or ``context`` (its ``max_new_tokens``)."""

    def __init__(self, delay: float = 0.002, gated: bool = False, natural: int = 10**9, context: int = 10**9) -> None:
        super().__init__("slow")
        self.delay, self.natural, self.context = delay, natural, context
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.started, self.closed = threading.Event(), threading.Event()
        self.streams = 0
        self.pieces = 0

    def count_tokens(self, text: str) -> int:
        return len(text)

    def max_new_tokens(self, request: GenerateRequest) -> int:
        return min(request.max_tokens, self.context)

    def stream(self, request: GenerateRequest):
        self.streams += 1
        self.started.set()
        try:
            for _ in range(min(self.max_new_tokens(request), self.natural)):
                if not self.gate.wait(WAIT):
                    raise RuntimeError("gate never opened")
                time.sleep(self.delay)
                self.pieces += 1
                yield "x"
        finally:
            self.closed.set()

    def generate(self, requests, progress=True):
        return ["".join(self.stream(r)) for r in requests]


@pytest.fixture
def start():
    servers = []

    def _start(model, **limits):
        server = make_server(model, "127.0.0.1", 0, model_name="slow", limits=Limits(**limits))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, server.server_address[1]

    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(port: int, body, path: str = "/v1/completions", headers: dict | None = None, method: str = "POST"):
    """``(status, headers, json)`` of one request on a fresh connection (no retries)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT * 2)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"null")
    finally:
        conn.close()


def in_thread(fn, *args):
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("out", fn(*args)), daemon=True)
    thread.start()
    return thread, box


def wait_until(cond) -> None:
    end = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def test_fifty_concurrent_requests_are_all_answered(start):
    server, port = start(SlowLM())
    assert server.request_queue_size >= 128  # the listen backlog (socketserver's default is 5)
    barrier = threading.Barrier(50)
    results: list = [None] * 50

    def one(i: int) -> None:
        barrier.wait(WAIT)
        try:
            results[i] = post(port, {"prompt": f"p{i}", "max_tokens": 3})
        except OSError as exc:  # a reset or a refusal: what the old server did
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 4)
    assert all(isinstance(r, tuple) for r in results), [r for r in results if not isinstance(r, tuple)][:3]
    assert [r[0] for r in results] == [200] * 50
    assert {r[2]["choices"][0]["text"] for r in results} == {"xxx"}


def test_a_long_request_does_not_block_a_short_one_beyond_the_cap(start):
    model = SlowLM(delay=0.01)
    _, port = start(model, request_timeout=1.0, max_tokens_cap=10**6)
    long_thread, long_box = in_thread(post, port, {"prompt": "long", "max_tokens": 10**5})  # uncapped: 1000 s
    assert model.started.wait(WAIT)
    t0 = time.monotonic()
    status, _, short = post(port, {"prompt": "short", "max_tokens": 2})
    waited = time.monotonic() - t0
    long_thread.join(WAIT)
    status_long, _, long = long_box["out"]
    assert status == status_long == 200
    assert short["choices"][0]["text"] == "xx"
    assert long["choices"][0]["finish_reason"] == "length"  # stopped by --request-timeout, and answered
    assert 0 < long["usage"]["completion_tokens"] < 10**5
    assert waited < WAIT  # the short one waited about a second (the cap), not the long one's 1000 s


def test_max_tokens_is_capped_and_the_context_budget_reported(start):
    _, port = start(SlowLM(natural=7), max_tokens_cap=5)
    capped = post(port, {"prompt": "a", "max_tokens": 10**30})[2]
    assert capped["choices"][0] == {"index": 0, "text": "xxxxx", "logprobs": None, "finish_reason": "length"}
    assert capped["usage"]["completion_tokens"] == 5
    _, port = start(SlowLM(natural=3), max_tokens_cap=5)
    natural = post(port, {"prompt": "a", "max_tokens": 400})[2]  # the model stops after 3 by itself
    assert natural["choices"][0]["text"] == "xxx" and natural["choices"][0]["finish_reason"] == "stop"
    _, port = start(SlowLM(context=2), max_tokens_cap=500)  # the context window leaves room for 2
    chat = post(port, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}, "/v1/chat/completions")[2]
    assert chat["choices"][0]["message"]["content"] == "xx" and chat["choices"][0]["finish_reason"] == "length"
    _, port = start(SlowLM(context=0))  # no room at all: nothing generated, and said so
    assert post(port, {"prompt": "a", "max_tokens": 10})[2]["choices"][0]["finish_reason"] == "length"


def test_generation_stops_when_the_client_hangs_up(start):
    model = SlowLM(delay=0.01)
    _, port = start(model, request_timeout=600, max_tokens_cap=10**6)
    body = json.dumps({"prompt": "forever", "max_tokens": 10**5}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        assert model.started.wait(WAIT)
    assert model.closed.wait(WAIT)  # the decode loop ended: 10**5 tokens would take 1000 s
    assert model.pieces < 10**5
    assert post(port, {"prompt": "next", "max_tokens": 1})[0] == 200  # and the model is free again


def test_a_request_whose_client_left_while_queued_never_runs(start):
    model = SlowLM(gated=True)
    server, port = start(model)
    first, box = in_thread(post, port, {"prompt": "first", "max_tokens": 1})
    assert model.started.wait(WAIT)
    body = json.dumps({"prompt": "gone", "max_tokens": 1}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        wait_until(lambda: server.app.active == 2)  # queued behind the first
    wait_until(lambda: server.app.active == 1)  # noticed the hang-up while waiting
    model.gate.set()
    first.join(WAIT)
    assert box["out"][0] == 200 and model.streams == 1


def test_waiting_for_the_model_is_bounded(start):
    model = SlowLM(gated=True)
    _, port = start(model, queue_timeout=0.3)
    first, box = in_thread(post, port, {"prompt": "first", "max_tokens": 1})
    assert model.started.wait(WAIT)
    status, headers, err = post(port, {"prompt": "second", "max_tokens": 1})  # waits 0.3 s, then: busy
    assert status == 503 and "busy" in err["error"]["message"] and int(headers["Retry-After"]) >= 1
    model.gate.set()
    first.join(WAIT)
    assert box["out"][0] == 200 and model.streams == 1


def test_a_full_queue_is_refused_at_once(start):
    model = SlowLM(gated=True)
    server, port = start(model, max_queue=1)
    first, box = in_thread(post, port, {"prompt": "first", "max_tokens": 1})
    assert model.started.wait(WAIT)
    status, headers, err = post(port, {"prompt": "second", "max_tokens": 1})
    assert status == 503 and err["error"]["type"] == "server_error" and "full" in err["error"]["message"]
    assert headers["Retry-After"] == "1"
    model.gate.set()
    first.join(WAIT)
    assert box["out"][0] == 200 and model.streams == 1


MALFORMED = [  # (what, method, path, content type, body, expected status)
    ("bad JSON", "POST", "/v1/completions", "application/json", b'{"prompt": ', 400),
    ("not an object", "POST", "/v1/completions", "application/json", b"[1, 2]", 400),
    ("invalid UTF-8", "POST", "/v1/completions", "application/json", b'{"prompt": "\xff\xfe"}', 400),
    ("deep nesting", "POST", "/v1/completions", "application/json", b"[" * 100000 + b"]" * 100000, 400),
    ("NaN", "POST", "/v1/completions", "application/json", b'{"prompt": "a", "temperature": NaN}', 400),
    ("no prompt", "POST", "/v1/completions", "application/json", {"max_tokens": 3}, 400),
    ("token-id prompt", "POST", "/v1/completions", "application/json", {"prompt": [1, 2]}, 400),
    ("empty prompt list", "POST", "/v1/completions", "application/json", {"prompt": []}, 400),
    ("max_tokens string", "POST", "/v1/completions", "application/json", {"prompt": "a", "max_tokens": "5"}, 400),
    ("max_tokens negative", "POST", "/v1/completions", "application/json", {"prompt": "a", "max_tokens": -1}, 400),
    ("max_tokens float", "POST", "/v1/completions", "application/json", {"prompt": "a", "max_tokens": 1e300}, 400),
    ("max_tokens bool", "POST", "/v1/completions", "application/json", {"prompt": "a", "max_tokens": True}, 400),
    ("huge temperature", "POST", "/v1/completions", "application/json", {"prompt": "a", "temperature": 1e308}, 400),
    ("huge seed", "POST", "/v1/completions", "application/json", {"prompt": "a", "seed": 2**70}, 400),
    ("negative seed", "POST", "/v1/completions", "application/json", {"prompt": "a", "seed": -1}, 400),
    ("huge logprobs", "POST", "/v1/completions", "application/json", {"prompt": "a", "logprobs": 10**6}, 400),
    ("stop number", "POST", "/v1/completions", "application/json", {"prompt": "a", "stop": 5}, 400),
    ("stop list of numbers", "POST", "/v1/completions", "application/json", {"prompt": "a", "stop": [1]}, 400),
    ("n list", "POST", "/v1/completions", "application/json", {"prompt": "a", "n": [1]}, 400),
    ("n two", "POST", "/v1/completions", "application/json", {"prompt": "a", "n": 2}, 400),
    ("echo string", "POST", "/v1/completions", "application/json", {"prompt": "a", "echo": "yes"}, 400),
    ("top_p string", "POST", "/v1/completions", "application/json", {"prompt": "a", "top_p": "high"}, 400),
    ("stream", "POST", "/v1/completions", "application/json", {"prompt": "a", "stream": True}, 400),
    ("no messages", "POST", "/v1/chat/completions", "application/json", {"prompt": "a"}, 400),
    ("messages object", "POST", "/v1/chat/completions", "application/json", {"messages": {"role": "user"}}, 400),
    ("message without role", "POST", "/v1/chat/completions", "application/json", {"messages": [{"content": "a"}]}, 400),
    ("non-text part", "POST", "/v1/chat/completions", "application/json",
     {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, 400),
    ("image part", "POST", "/v1/chat/completions", "application/json",
     {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, 400),
    ("top_logprobs string", "POST", "/v1/chat/completions", "application/json",
     {"messages": [{"role": "user", "content": "a"}], "logprobs": True, "top_logprobs": "3"}, 400),
    ("form body", "POST", "/v1/completions", "application/x-www-form-urlencoded", b"prompt=a", 415),
    ("no content type", "POST", "/v1/completions", None, b'{"prompt": "a"}', 415),
    ("oversized body", "POST", "/v1/completions", "application/json", b" " * 5_000_000, 413),
    ("unknown path", "POST", "/v1/engines", "application/json", {"prompt": "a"}, 404),
    ("GET a POST route", "GET", "/v1/completions", None, None, 405),
    ("POST a GET route", "POST", "/v1/models", "application/json", {}, 405),
    ("DELETE", "DELETE", "/v1/chat/completions", None, None, 405),
]


@pytest.fixture(scope="module")
def shared():
    model = SlowLM()
    server = make_server(model, "127.0.0.1", 0, limits=Limits())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield model, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("what,method,path,ctype,body,expect", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_every_malformed_request_is_a_4xx_json_error(shared, what, method, path, ctype, body, expect):
    model, port = shared
    before = model.streams
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.putrequest(method, path)
        if ctype:
            conn.putheader("Content-Type", ctype)
        if data is not None:
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        resp = conn.getresponse()
        err = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == expect, err
    assert set(err["error"]) >= {"message", "type"} and err["error"]["message"]
    assert model.streams == before  # rejected before any model work
    assert post(port, {"prompt": "ok", "max_tokens": 1})[0] == 200  # and the server still serves


def test_http_level_garbage_is_a_json_error_too(shared):
    _, port = shared
    head = b"POST /v1/completions HTTP/1.1\r\nContent-Type: application/json\r\n"
    cases = ((b"GARBAGE LINE\r\n\r\n", 400), (head + b"\r\n", 411), (head + b"Content-Length: -5\r\n\r\n", 400),
             (head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
             (b"FROB /v1/models HTTP/1.1\r\n\r\n", 405))
    for raw, expect in cases:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status, _, body = answer.partition(b"\r\n\r\n") if answer.startswith(b"HTTP/") else (b"", b"", answer)
        assert not status or status.split()[1] == str(expect).encode(), answer  # a bad request line: HTTP/0.9 style
        assert json.loads(body)["error"]["code"] == expect


def test_connections_are_bounded_and_idle_ones_dropped(start):
    server, port = start(SlowLM(), max_connections=2, idle_timeout=0.5)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(2)]
    try:
        wait_until(lambda: server._threads_left._value == 0)  # both idle connections hold a thread
        status, headers, err = post(port, {"prompt": "a", "max_tokens": 1})
        assert status == 503 and "connections" in err["error"]["message"]
        for sock in idle:  # a client that sends nothing is dropped after idle_timeout
            assert sock.recv(1) == b""
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: server._threads_left._value == 2)
    assert post(port, {"prompt": "a", "max_tokens": 1})[0] == 200
