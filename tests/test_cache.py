"""The request cache: keys, exact round trips, chunked commits, and the engine using it."""
from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import FakeModel
from test_engine import BENCHES

from harness.api import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, ModelInfo
from harness.cache import RequestCache, decode_answer, encode_answer, model_key, request_key
from harness.engine import Engine, RunConfig, run_requests
from harness.suite import parse_suite


def test_request_key_is_canonical_and_covers_every_field():
    assert request_key(GenerateRequest("p", temperature=0)) == request_key(GenerateRequest("p", temperature=0.0))
    assert request_key(GenerateRequest("p", ("\n",))) == request_key(GenerateRequest("p", ("\n",)))
    base = GenerateRequest("p", ("\n",), 16, 0.7, 3)
    variants = [GenerateRequest("q", ("\n",), 16, 0.7, 3), GenerateRequest("p", ("\n\n",), 16, 0.7, 3),
                GenerateRequest("p", ("\n",), 17, 0.7, 3), GenerateRequest("p", ("\n",), 16, 0.8, 3),
                GenerateRequest("p", ("\n",), 16, 0.7, 4), GenerateRequest("p", ("\n",), 16, 0.7, None)]
    assert len({request_key(r) for r in [base, *variants]}) == 7
    # same strings, other kind or split: other keys
    keys = {request_key(LoglikelihoodRequest("ab", "c")), request_key(LoglikelihoodRequest("a", "bc")),
            request_key(GenerateRequest("abc"))}
    assert len(keys) == 3


def test_answers_round_trip_exactly():
    for answer in (LoglikelihoodResult(-1.2345678901234567, True), LoglikelihoodResult(float("-inf"), False),
                   LoglikelihoodResult(-1e-300, False), "héllo\n\"x\"", ""):
        back = decode_answer(encode_answer(answer))
        assert back == answer and type(back) is type(answer)


def test_model_key_needs_a_fingerprint_and_covers_what_changes_answers():
    info = ModelInfo(spec="m", backend="native", arch="gpt2", fingerprint="abc")
    key = model_key(info)
    assert key and model_key(ModelInfo(spec="m", backend="native")) is None
    assert model_key(ModelInfo(spec="other name", backend="native", arch="gpt2", fingerprint="abc")) == key
    assert model_key(info, device="cuda:0") == model_key(info, device="cuda:1") != key
    others = [model_key(ModelInfo(spec="m", backend="native", arch="gpt2", fingerprint="abd")),
              model_key(ModelInfo(spec="m", backend="hf", arch="gpt2", fingerprint="abc")),
              model_key(info, args={"dtype": "bfloat16"}), model_key(info, version="9.9")]
    assert key not in others and len(set(others)) == 4


def test_cache_persists_in_wal_mode(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = RequestCache(path)
    req = [request_key(LoglikelihoodRequest("a", "b")), request_key(GenerateRequest("p"))]
    cache.put_many("m", [(req[0], LoglikelihoodResult(-0.5, True)), (req[1], "out")])
    cache.close()
    again = RequestCache(path)
    assert again.get_many("m", req + ["missing"]) == {req[0]: LoglikelihoodResult(-0.5, True), req[1]: "out"}
    assert again.get_many("other model", req) == {}
    again.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_corrupt_cache_file_is_a_one_line_error(tmp_path):
    from harness.errors import HarnessError

    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(HarnessError, match="not a usable SQLite cache"):
        RequestCache(bad)


def _requests(n):
    return [LoglikelihoodRequest(f"context {i}", " x") for i in range(n)] + [GenerateRequest(f"p{i}") for i in range(n)]


def test_run_requests_serves_the_cache_and_asks_only_for_misses(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    reqs = _requests(10)
    first, stats = FakeModel("m", "s"), {}
    out1 = run_requests(first, reqs + reqs[:3], progress=False, cache=cache, cache_model="k", chunk_size=4,
                        stats=stats)
    assert stats == {"hits": 0, "misses": 20} and sum(first.calls) == 20
    second, stats2 = FakeModel("m", "s"), {}
    out2 = run_requests(second, reqs + [GenerateRequest("new")], progress=False, cache=cache, cache_model="k",
                        chunk_size=4, stats=stats2)
    assert stats2 == {"hits": 20, "misses": 1} and second.calls == [1]
    assert out2[:20] == out1[:20]
    assert out1[20:] == out1[:3]


class Dies(FakeModel):
    """Answers ``survive`` model calls, then fails like a killed process would stop."""

    def __init__(self, survive):
        super().__init__("m", "s")
        self.survive = survive

    def loglikelihood(self, requests, progress=True):
        if len(self.calls) >= self.survive:
            raise KeyboardInterrupt
        return super().loglikelihood(requests, progress)


def test_answers_are_committed_chunk_by_chunk(tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    reqs = [LoglikelihoodRequest(f"context {i:02d}", " x") for i in range(20)]
    size = 8
    with pytest.raises(KeyboardInterrupt):
        run_requests(Dies(2), reqs, progress=False, cache=cache, cache_model="k", ll_chunk_size=size)
    assert cache.count("k") == 2 * size  # two chunks committed, the third lost
    model, stats = FakeModel("m", "s"), {}
    out = run_requests(model, reqs, progress=False, cache=cache, cache_model="k", ll_chunk_size=size, stats=stats)
    assert stats == {"hits": 2 * size, "misses": 20 - 2 * size} and sum(model.calls) == 20 - 2 * size
    assert out == run_requests(FakeModel("m", "s"), reqs, progress=False)


def _engine(tmp_path, models, cache, batch_size=8, suite="toy,toygen"):
    config = RunConfig(suite=parse_suite(suite, BENCHES), out=tmp_path / "out", model="m", base="b",
                       progress=False, limit=5, batch_size=batch_size, cache=cache)
    return Engine(config, BENCHES, lambda spec, role="model": models[spec])


def test_engine_records_cache_counts_and_a_rerun_costs_nothing(tmp_path):
    cache = tmp_path / "shared.sqlite"
    models = {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}
    first = _engine(tmp_path, models, cache, batch_size=2).run()
    assert first["benchmarks"]["toy"]["cache"] == {"model": {"hits": 0, "misses": 30},
                                                   "base": {"hits": 0, "misses": 30}}
    assert first["config"]["cache"] == str(cache)
    again = {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}
    second = _engine(tmp_path, again, cache, batch_size=8).run()  # another batch size: same keys
    assert again["m"].calls == [] and again["b"].calls == []
    assert second["benchmarks"]["toygen"]["cache"]["base"] == {"hits": 5, "misses": 0}
    for name in ("toy", "toygen"):
        assert second["benchmarks"][name]["metrics"] == first["benchmarks"][name]["metrics"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["benchmarks"]["toy"]["cache"]["model"] == {"hits": 30, "misses": 0}


def test_other_weights_do_not_share_answers(tmp_path, capsys):
    cache = tmp_path / "shared.sqlite"
    _engine(tmp_path, {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}, cache).run()
    swapped = {"m": FakeModel("m", "base-salt"), "b": FakeModel("b", "other")}
    res = _engine(tmp_path, swapped, cache).run()
    assert res["benchmarks"]["toy"]["cache"]["model"] == {"hits": 30, "misses": 0}  # same weights as the old base
    assert res["benchmarks"]["toy"]["cache"]["base"] == {"hits": 0, "misses": 30}


def test_a_model_without_fingerprint_is_not_cached_and_says_so(tmp_path, capsys):
    unfingerprinted = FakeModel("m", "model-salt")
    unfingerprinted.info.fingerprint = ""
    models = {"m": unfingerprinted, "b": FakeModel("b", "base-salt")}
    _engine(tmp_path, models, tmp_path / "c.sqlite").run()
    assert "m has no fingerprint; its answers are not cached" in capsys.readouterr().err
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    assert conn.execute("SELECT COUNT(DISTINCT model) FROM answers").fetchone()[0] == 1  # the base only


def test_the_report_settings_say_how_many_answers_came_from_the_cache(tmp_path):
    from harness.report import render_report

    cache = tmp_path / "shared.sqlite"
    for _ in range(2):
        _engine(tmp_path, {"m": FakeModel("m", "model-salt"), "b": FakeModel("b", "base-salt")}, cache).run()
    render_report(tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    assert "request cache</dt><dd>model 35 of 35 answers from the cache; base 35 of 35 answers from the cache" in html
