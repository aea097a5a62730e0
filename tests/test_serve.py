"""`harness serve` + the openai: client, for real over HTTP on 127.0.0.1.

The judge must give the same preferences through the server as in process: with a tiny
native GPT-2 (TokenLM path, completions echo) and with a character-level fake that
exposes full next-token distributions (chat ``top_logprobs`` path).
"""
from __future__ import annotations

import hashlib
import http.server
import json
import math
import random
import socket
import struct
import threading
import urllib.request

import pytest

from harness.api import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, Model, ModelInfo
from harness.api.chat import chatml_to_messages, messages_to_chatml
from harness.errors import HarnessError
from harness.models.openai_client import OpenAIModel
from harness.serve import make_server, text_logprobs
from harness_plugins.alpaca_eval.pairwise import PairwiseJudge

VOCAB = [chr(c) for c in range(32, 127)] + ["\n"]
ITEMS = [("Name a fruit.", "An apple.", "Apples and pears are fruits."),
         ("Translate cat.\n\nto French", "chat", "le chat"),
         ("Say hi.", "hello there, friend", "hi")]


class HashLM(Model):
    """Character-level LM whose next-character distribution is a hash of the whole prefix.

    Follows TokenLM's convention (trailing context whitespace scores with the continuation)
    and offers the optional serve protocol (``token_logprobs``, ``next_token_logprobs``).
    """

    def __init__(self) -> None:
        self.info = ModelInfo(spec="hashlm", backend="fake", fingerprint="hashlm-1")

    def dist(self, prefix: str) -> dict[str, float]:
        rng = random.Random(hashlib.sha256(prefix.encode()).digest())
        logits = [rng.gauss(0.0, 2.0) for _ in VOCAB]
        top = max(logits)
        lse = top + math.log(sum(math.exp(x - top) for x in logits))
        return {ch: x - lse for ch, x in zip(VOCAB, logits)}

    def lp(self, prefix: str, ch: str) -> float:
        return self.dist(prefix).get(ch, -30.0)

    def loglikelihood(self, requests, progress=True):
        out = []
        for r in requests:
            ctx = r.context.rstrip()
            cont = r.context[len(ctx):] + r.continuation
            lps = [self.lp(ctx + cont[:i], cont[i]) for i in range(len(cont))]
            greedy = all(max(self.dist(ctx + cont[:i]).items(), key=lambda kv: kv[1])[0] == cont[i]
                         for i in range(len(cont)))
            out.append(LoglikelihoodResult(sum(lps), greedy))
        return out

    def generate(self, requests: list[GenerateRequest], progress=True):
        out = []
        for r in requests:
            text = ""
            while len(text) < r.max_tokens and not any(s in text for s in r.stop):
                text += max(self.dist(r.prompt + text).items(), key=lambda kv: kv[1])[0]
            cuts = [text.find(s) for s in r.stop if s in text]
            out.append(text[:min(cuts)] if cuts else text)
        return out

    def token_logprobs(self, text: str, top_k: int, start: int = 0):
        return [(text[i], i, None if i == 0 else self.lp(text[:i], text[i]),
                 sorted(self.dist(text[:i]).items(), key=lambda kv: -kv[1])[:top_k]) for i in range(start, len(text))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    from harness.models import load_model
    from harness.testing import make_tiny_gpt2

    return load_model(str(make_tiny_gpt2(tmp_path_factory.mktemp("tiny") / "m", context_length=1024)))


def _start(model: Model, **kwargs):
    server = make_server(model, "127.0.0.1", 0, **kwargs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def tiny_url(tiny):
    server, url = _start(tiny, model_name="tiny")
    yield url
    server.shutdown()
    server.server_close()


def test_http_loglikelihood_and_generate_equal_in_process(tiny, tiny_url):
    client = OpenAIModel(tiny_url)
    assert client.model_name == "tiny"
    reqs = [LoglikelihoodRequest("The cat sat on the", " mat"), LoglikelihoodRequest("ab  ", " c"),
            LoglikelihoodRequest("Question: 2+2?\nAnswer:", " 4\n"), LoglikelihoodRequest("x", "")]
    local, remote = tiny.loglikelihood(reqs, progress=False), client.loglikelihood(reqs)
    for a, b in zip(local, remote):
        assert b.logprob == pytest.approx(a.logprob, abs=1e-4) and b.is_greedy == a.is_greedy
    gen = [GenerateRequest("Once upon a time", max_tokens=6), GenerateRequest("Hello", stop=(" ",), max_tokens=8)]
    assert client.generate(gen) == [tiny.generate([g], progress=False)[0] for g in gen]  # server: one at a time


def test_judge_over_http_gives_in_process_preferences(tiny, tiny_url):
    _, local = PairwiseJudge(tiny).judge_pairs(ITEMS)
    _, remote = PairwiseJudge(OpenAIModel(tiny_url)).judge_pairs(ITEMS)
    assert [v["order"] for v in remote] == [v["order"] for v in local]
    assert [v["preference"] for v in remote] == pytest.approx([v["preference"] for v in local], abs=1e-5)
    assert len({round(v["preference"], 6) for v in local}) > 1  # a judge that always says the same proves little


def test_chat_top_logprobs_judge_equals_in_process():
    model = HashLM()
    server, url = _start(model)
    try:
        _, local = PairwiseJudge(model).judge_pairs(ITEMS)
        _, remote = PairwiseJudge(OpenAIModel(url, api="chat", top_logprobs=len(VOCAB))).judge_pairs(ITEMS)
        assert [v["preference"] for v in remote] == pytest.approx([v["preference"] for v in local], abs=1e-12)
        _, echo = PairwiseJudge(OpenAIModel(url)).judge_pairs(ITEMS[:1])  # completions echo, exact sums
        assert echo[0]["preference"] == pytest.approx(local[0]["preference"], abs=1e-12)
        chat = OpenAIModel(url, api="chat")
        prompt = messages_to_chatml([{"role": "user", "content": "hi"}])
        assert chat.generate([GenerateRequest(prompt, max_tokens=5)]) == model.generate([GenerateRequest(prompt, max_tokens=5)])
    finally:
        server.shutdown()
        server.server_close()


def _post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_completion_and_chat_answer_shapes(tiny_url):
    out = _post(tiny_url, "/v1/completions", {"prompt": "Hello world", "max_tokens": 0, "echo": True, "logprobs": 2})
    lp = out["choices"][0]["logprobs"]
    assert out["choices"][0]["text"] == "Hello world" and "".join(lp["tokens"]) == "Hello world"
    assert lp["token_logprobs"][0] is None and lp["text_offset"] == [0, 5] and len(lp["top_logprobs"][1]) >= 2
    chat = _post(tiny_url, "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3,
                                                    "temperature": 0, "logprobs": True, "top_logprobs": 3})
    content = chat["choices"][0]["logprobs"]["content"]
    assert isinstance(chat["choices"][0]["message"]["content"], str) and len(content[0]["top_logprobs"]) == 3
    models = json.loads(urllib.request.urlopen(tiny_url + "/v1/models", timeout=10).read())
    assert models["data"][0]["id"] == "tiny"


def test_fallback_pieces_use_loglikelihood(fake_models):
    model = fake_models["m"]  # conftest's hash model: no tokenizer, no token protocol
    text = "Hello, world!\nIt's 2024."
    toks = text_logprobs(model, text)
    assert "".join(t[0] for t in toks) == text and toks[0][2] is None
    expect = model.loglikelihood([LoglikelihoodRequest(text[:off], piece) for piece, off, _, _ in toks[1:]])
    assert [t[2] for t in toks[1:]] == [r.logprob for r in expect]


def test_bad_requests_get_openai_errors(tiny_url):
    with pytest.raises(HarnessError, match=r"/v1/completions: HTTP 400 prompt must be"):
        OpenAIModel(tiny_url)._request("/completions", {"prompt": [1, 2, 3]})
    with pytest.raises(HarnessError, match="HTTP 404"):
        OpenAIModel(tiny_url)._request("/nothing", {})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refused_connection_is_one_line_naming_the_url():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(HarnessError) as err:
        OpenAIModel(url, model="x", backoff=0.01).generate([GenerateRequest("hi")])
    assert url in str(err.value) and "cannot connect" in str(err.value) and "\n" not in str(err.value)
    assert "after 5 tries" in str(err.value)  # retried (bounded), then one line


def _scripted_server(script: list[str]):
    """A raw server answering connection i by ``script[i]``: "reset" (RST), "hangup" (read, close),
    "cutoff" (half an answer), "503" (busy, Retry-After: 0) or "ok" (a completion "ok"). Returns (url, actions seen, listener)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    seen: list[str] = []

    def read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        while len(body) < length:
            body += conn.recv(65536)

    def run():
        for action in script:
            conn, _ = listener.accept()
            conn.settimeout(10)
            seen.append(action)
            if action == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            read_request(conn)
            if action in ("hangup", "cutoff"):  # cutoff: half an answer
                if action == "cutoff":
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                conn.close()
                continue
            code, body = (503, {"error": {"message": "busy", "type": "server_error"}}) if action == "503" else (
                200, {"choices": [{"index": 0, "text": "ok"}]})
            data = json.dumps(body).encode()
            conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nRetry-After: 0\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (code, len(data), data))
            conn.close()

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}", seen, listener


def test_client_retries_resets_hangups_and_busy_answers():
    script = ["reset", "hangup", "cutoff", "503", "ok"]
    url, seen, listener = _scripted_server(script)
    try:
        assert OpenAIModel(url, model="x", backoff=0.01).generate([GenerateRequest("hi", max_tokens=2)]) == ["ok"]
        assert seen == script
    finally:
        listener.close()
    url, seen, listener = _scripted_server(["reset", "reset", "ok"])
    try:  # bounded: one retry is not enough for two resets
        with pytest.raises(HarnessError, match="cannot connect .*after 2 tries") as err:
            OpenAIModel(url, model="x", backoff=0.01, max_retries=1).generate([GenerateRequest("hi")])
        assert "\n" not in str(err.value) and seen == ["reset", "reset"]
    finally:
        listener.close()


def test_token_backend_streams_within_the_caps(tiny):
    from harness.serve import Limits

    server, url = _start(tiny, limits=Limits(max_tokens_cap=3))
    try:
        out = _post(url, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 50, "temperature": 0})
        assert out["choices"][0]["finish_reason"] == "length"
        assert out["choices"][0]["text"] == tiny.generate([GenerateRequest("Once upon a time", max_tokens=3)],
                                                           progress=False)[0]
    finally:
        server.shutdown()
        server.server_close()
    server, url = _start(tiny, limits=Limits(max_tokens_cap=10**6, request_timeout=0.05))
    try:  # 1000 tokens of a (tiny) model take longer than 0.05 s: stopped, answered, "length"
        out = _post(url, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 1000, "temperature": 0})
        assert out["choices"][0]["finish_reason"] == "length" and out["usage"]["completion_tokens"] < 1000
    finally:
        server.shutdown()
        server.server_close()


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>not an API</html>")

    def log_message(self, *args):
        pass


def test_garbage_answer_is_an_error():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(HarnessError, match="not JSON"):
            OpenAIModel(f"http://127.0.0.1:{server.server_address[1]}", model="x").loglikelihood(
                [LoglikelihoodRequest("a", "b")])
    finally:
        server.shutdown()
        server.server_close()


def test_api_key_is_required_and_never_leaks(monkeypatch):
    secret = "sk-test-" + "9" * 20
    server, url = _start(HashLM(), api_key=secret)
    try:
        monkeypatch.setenv("MY_JUDGE_KEY", "wrong-key")
        with pytest.raises(HarnessError) as err:
            OpenAIModel(url, model="hashlm", api_key_env="MY_JUDGE_KEY").generate([GenerateRequest("a", max_tokens=1)])
        assert "HTTP 401" in str(err.value) and "wrong-key" not in str(err.value)
        monkeypatch.setenv("MY_JUDGE_KEY", secret)
        client = OpenAIModel(url, api_key_env="MY_JUDGE_KEY")
        assert client.generate([GenerateRequest("a", max_tokens=2)]) == HashLM().generate([GenerateRequest("a", max_tokens=2)])
        assert secret not in repr(vars(client)) and secret not in json.dumps(client.info.__dict__)
    finally:
        server.shutdown()
        server.server_close()


def test_chatml_round_trip():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\nthere"}]
    assert chatml_to_messages(messages_to_chatml(msgs)) == msgs
    assert chatml_to_messages("plain text") == [{"role": "user", "content": "plain text"}]


def test_openai_backend_through_load_model(tiny_url):
    from harness.models import load_model

    model = load_model(f"openai:{tiny_url}", model="tiny")  # the built-in backend, through the hook
    assert isinstance(model, OpenAIModel) and model.model_name == "tiny" and model.info.backend == "openai"


def test_serve_command_checks_the_key_variable(monkeypatch):
    from click.testing import CliRunner

    from harness.cli.serve import serve_command

    monkeypatch.delenv("HARNESS_TEST_UNSET_KEY", raising=False)
    assert "--port" in CliRunner().invoke(serve_command, ["--help"]).output
    result = CliRunner().invoke(serve_command, ["--api-key-env", "HARNESS_TEST_UNSET_KEY"])
    assert isinstance(result.exception, HarnessError) and "HARNESS_TEST_UNSET_KEY" in str(result.exception)


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_port_out_of_range_is_one_line(port):
    from click.testing import CliRunner

    from harness.cli import cli

    result = CliRunner().invoke(cli, ["serve", "--port", port, "--model", "no-such-model-is-loaded"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: --port {port}: must be 0 to 65535 (0 picks a free port)"]


def test_serve_address_in_use_is_one_line_naming_it():
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.serve import check_port

    check_port("127.0.0.1", 0)  # 0 is fine: a free port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port), "--model", "no-such-model-is-loaded"])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
        assert f"127.0.0.1:{port}" in result.output and "in use" in result.output  # before any model load
        with pytest.raises(HarnessError, match=f"cannot listen on 127.0.0.1:{port}"):
            make_server(HashLM(), "127.0.0.1", port)


def test_chat_prompt_uses_the_models_format_or_template():
    from harness.prompts import apply_chat_template, format_prompt
    from harness.serve import render_chat

    user = [{"role": "user", "content": "Say hi."}]
    tuned = HashLM()
    tuned.info = ModelInfo(spec="ft", backend="fake", prompt_format="alpaca")
    assert apply_chat_template(tuned, user) == format_prompt("alpaca", "Say hi.")
    templated = HashLM()
    templated.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}[assistant] {% endif %}")
    assert apply_chat_template(templated, user) == "[user] Say hi.\n[assistant] "
    assert render_chat(HashLM(), user) == messages_to_chatml(user)  # Model.apply_chat_template's default

    class Own(HashLM):
        def apply_chat_template(self, messages, add_generation_prompt=True):
            return "own:" + messages[-1]["content"]

    assert render_chat(Own(), user) == "own:Say hi."  # serve asks the backend


def test_local_backends_prompt_chats_in_their_recorded_format(tmp_path):
    from harness.models import load_model
    from harness.prompts import format_prompt
    from harness.testing import make_tiny_gpt2

    lm = load_model(str(make_tiny_gpt2(tmp_path / "m")))
    lm.info.prompt_format = "alpaca"
    assert lm.apply_chat_template([{"role": "user", "content": "Say hi."}]) == format_prompt("alpaca", "Say hi.")


def test_a_non_http_peer_is_an_error():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def babble():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-OpenSSH_9\r\n\r\n")
        conn.close()

    threading.Thread(target=babble, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        with pytest.raises(HarnessError) as err:
            OpenAIModel(url, model="x").generate([GenerateRequest("hi")])
        assert url in str(err.value) and "\n" not in str(err.value)
    finally:
        listener.close()
