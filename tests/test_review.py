"""harness review: items from runs, the append-only vote log, the server's API, kill and resume."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.review import VoteLog, human_summary, load_items
from harness.review.server import Session, make_server

FIXTURE = Path(__file__).parent / "fixtures" / "run_small"


@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(FIXTURE, out, ignore=shutil.ignore_patterns("checkpoint", "*.py"))
    return out


def test_items_are_free_text_pairs_in_a_stable_random_order(run):
    items = load_items(run)
    assert {i.benchmark for i in items} >= {"alpaca_eval"} and "mmlu" not in {i.benchmark for i in items}
    first = items[0]
    assert first.answer_a.startswith("A helpful answer") and first.answer_b.startswith("Short")
    assert [i.first for i in items] == [i.first for i in load_items(run)]  # same order after a restart
    assert {i.first for i in items} == {"a", "b"}  # both sides appear on the left
    with pytest.raises(HarnessError, match="not in .*samples"):
        load_items(run, benchmarks=["nope"])
    with pytest.raises(HarnessError, match="no results.json"):
        load_items(run / "samples")


def test_votes_map_screen_sides_back_to_the_runs_and_undo_appends(run):
    items = load_items(run, benchmarks=["alpaca_eval"])
    session = Session(items, VoteLog(run / "reviews.jsonl"))
    shown = session.state()["item"]
    item = session.by_key[shown["key"]]
    session.vote(shown["key"], "left")  # the left answer is run 1's model when item.first == "a"
    assert session.log.votes[item.key]["choice"] == item.first
    second = session.state()["item"]["key"]
    session.vote(second, "tie")
    assert session.log.undo() == second
    assert session.state()["item"]["key"] == second  # the undone item comes back
    lines = [json.loads(x) for x in (run / "reviews.jsonl").read_text().splitlines()]
    assert [("undo" in x) for x in lines] == [False, False, True]  # nothing rewritten, only appended
    again = VoteLog(run / "reviews.jsonl")
    assert list(again.votes) == [item.key]


def test_human_summary_is_a_win_rate_with_the_sign_test(tmp_path):
    log = VoteLog(tmp_path / "reviews.jsonl")
    for i, choice in enumerate(["a"] * 7 + ["b"] + ["tie"] * 2 + ["skip"]):
        log.vote(f"k/{i}", choice)
    s = human_summary(tmp_path / "reviews.jsonl")
    assert (s["wins"], s["losses"], s["draws"], s["n"], s["skipped"]) == (7, 1, 2, 10, 1)
    assert s["value"] == pytest.approx(0.8)
    assert s["delta"]["p_value"] == pytest.approx(2 * (1 + 8) / 2**8)  # exact: 2 * P(X <= 1), X ~ Bin(8, 1/2)
    assert human_summary(tmp_path / "none.jsonl") is None


def test_the_api_answers_and_rejects_bad_votes(run):
    session = Session(load_items(run), VoteLog(run / "reviews.jsonl"))
    server = make_server(session, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        page = urllib.request.urlopen(base + "/").read().decode()
        assert "which answer is better" in page and "textContent" in page
        state = json.load(urllib.request.urlopen(base + "/api/state"))
        assert state["done"] == 0 and state["item"]["prompt"].startswith("Instruction")
        for body in ({"key": "nope", "side": "left"}, {"key": state["item"]["key"], "side": "up"}):
            req = urllib.request.Request(base + "/api/vote", json.dumps(body).encode(), method="POST")
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req)
            assert err.value.code == 400
    finally:
        server.shutdown()
        server.server_close()


def _post(base: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(base + path, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=60))


def _start(run: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness", "review", str(run), "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
    assert match, line
    return proc, match.group(1).rstrip("/")


def test_a_killed_review_resumes_with_no_vote_lost(run):
    proc, base = _start(run)
    try:
        state = json.load(urllib.request.urlopen(base + "/api/state", timeout=60))
        keys = []
        for side in ("left", "right", "tie"):
            keys.append(state["item"]["key"])
            state = _post(base, "/api/vote", {"key": state["item"]["key"], "side": side})
        assert state["done"] == 3
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown handler runs
        proc.wait()
    assert len((run / "reviews.jsonl").read_text().splitlines()) == 3
    proc, base = _start(run)
    try:
        state = json.load(urllib.request.urlopen(base + "/api/state", timeout=60))
        assert state["done"] == 3 and state["item"]["key"] not in keys
    finally:
        proc.terminate()
        proc.wait(timeout=60)
