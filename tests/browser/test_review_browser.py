"""The review page in headless Chromium: votes cast by key presses land in reviews.jsonl."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from test_report_browser import FIXTURE, _driver, _errors

from harness.review import VoteLog, load_items
from harness.review.server import Session, make_server

pytestmark = pytest.mark.browser


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_key_presses_cast_votes_and_undo(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run, ignore=shutil.ignore_patterns("checkpoint", "*.py"))
    session = Session(load_items(run), VoteLog(run / "reviews.jsonl"))
    server = make_server(session, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = _driver(tmp_path / "profile")
    votes = run / "reviews.jsonl"
    lines = lambda: votes.read_text().splitlines() if votes.exists() else []  # noqa: E731
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        progress = lambda: driver.find_element(By.ID, "progress").text  # noqa: E731
        _wait(lambda: progress().startswith("0 /"), "the first item")
        body = driver.find_element(By.TAG_NAME, "body")
        first_prompt = driver.find_element(By.ID, "prompt").text
        assert "<b>" in first_prompt  # model/prompt text shown as text, not HTML
        for key, n in (("a", 1), ("b", 2), ("t", 3)):
            body.send_keys(key)
            _wait(lambda n=n: len(lines()) == n and progress().startswith(f"{n} /"), f"vote {n}")
        shots = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "review-mid-session.png"))
        body.send_keys("u")
        _wait(lambda: len(lines()) == 4 and progress().startswith("2 /"), "the undo")
        recorded = [json.loads(x) for x in lines()]
        assert [r.get("choice") for r in recorded[:3]] == [recorded[0]["shown_left"],
                                                            "b" if recorded[1]["shown_left"] == "a" else "a", "tie"]
        assert recorded[3] == {"undo": recorded[2]["key"], "time": recorded[3]["time"]}
        body.send_keys(Keys.ARROW_RIGHT)
        _wait(lambda: len(lines()) == 5, "a vote by arrow key")
        assert _errors(driver) == []
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
