"""The vote log (``reviews.jsonl``, append-only, fsynced per vote) and what it adds up to."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from .. import stats
from ..files import read_jsonl

CHOICES = ("a", "b", "tie", "skip")  # a/b: the run-1 / run-2 (model / base) answer, not the screen side


class VoteLog:
    """Votes by item key; ``undo`` lines cancel the latest standing vote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.votes: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # keys in the order their standing votes were cast
        if path.is_file():
            for _, line in read_jsonl(path, "reviews file"):
                self._apply(line)

    def _apply(self, line: dict[str, Any]) -> None:
        if line.get("undo"):
            key = line["undo"]
            self.votes.pop(key, None)
            if key in self.order:
                self.order.remove(key)
        elif line.get("key") and line.get("choice") in CHOICES:
            self.votes[line["key"]] = line
            if line["key"] in self.order:
                self.order.remove(line["key"])
            self.order.append(line["key"])

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._apply(line)

    def vote(self, key: str, choice: str, **extra: Any) -> None:
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {', '.join(CHOICES)}")
        with self.lock:
            self._append({"key": key, "choice": choice, "time": round(time.time(), 3), **extra})

    def undo(self) -> str | None:
        """Cancel the latest standing vote; returns its key (None when there is none)."""
        with self.lock:
            if not self.order:
                return None
            key = self.order[-1]
            self._append({"undo": key, "time": round(time.time(), 3)})
            return key


def human_summary(path: Path) -> dict[str, Any] | None:
    """The person's verdict over the cast votes: side "a" (the model)'s win rate, a tie counting
    half, with its interval and the exact sign test against 50% (:func:`harness.stats.win_rate_test`,
    the same test the judge's verdicts get); plus every standing vote by item key."""
    if not path.is_file():
        return None
    log = VoteLog(path)
    cast = [v["choice"] for v in log.votes.values() if v["choice"] != "skip"]
    if not cast:
        return None
    summary = stats.win_rate_test(cast.count("a"), cast.count("b"), cast.count("tie"))
    summary["skipped"] = len(log.votes) - len(cast)
    summary["votes"] = {k: v["choice"] for k, v in log.votes.items()}
    return summary
