"""The persistent request cache: every answer a model gave, keyed by (model, request).

Why: a run killed half-way, a re-run of the same command, or a second run that shares a
model with the first should not ask the model again. Answers are committed in chunks as
they are computed (see :func:`harness.engine.run_requests`), so a SIGKILL loses at most
the chunk in flight. SQLite in WAL mode; one writer per run (rank 0 under torchrun), other
processes sharing a ``--cache`` file wait on SQLite's lock.

The model half of the key is :func:`model_key`: the weights' fingerprint plus whatever
else changes answers (backend, architecture, backend options, device type, harness
version); a model without a fingerprint (an ``openai:`` endpoint) is not cached. The
request half is :func:`request_key`, a sha256 over the request's canonical JSON (batch
size is deliberately not part of either: it must not change answers).
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Any

from .api import GenerateRequest, LoglikelihoodRequest, LoglikelihoodResult, ModelInfo
from .errors import HarnessError

CACHE_FILE = "cache.sqlite"
KEY_VERSION = 1  # bump when request_key/encode_answer change meaning

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    model TEXT NOT NULL, request TEXT NOT NULL, answer TEXT NOT NULL,
    PRIMARY KEY (model, request)) WITHOUT ROWID
"""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def request_key(request: LoglikelihoodRequest | GenerateRequest) -> str:
    """sha256 of the request's canonical JSON: its kind and every field, float fields as floats
    (``temperature=0`` and ``0.0`` are the same request, as they are for ``==``)."""
    data: dict[str, Any] = {"kind": type(request).__name__, "v": KEY_VERSION}
    for f in fields(request):
        value = getattr(request, f.name)
        if f.type in ("float", float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return hashlib.sha256(_canonical(data).encode()).hexdigest()


def model_key(info: ModelInfo, *, device: str = "cpu", args: dict[str, Any] | None = None,
              version: str = "") -> str | None:
    """The model half of the key, or None when the model has no fingerprint (not cached)."""
    if not info.fingerprint:
        return None
    data = {"fingerprint": info.fingerprint, "backend": info.backend, "arch": info.arch,
            "device": str(device).split(":")[0], "args": args or {}, "harness": version, "v": KEY_VERSION}
    return hashlib.sha256(_canonical(data).encode()).hexdigest()[:32]


def encode_answer(answer: Any) -> str:
    if isinstance(answer, LoglikelihoodResult):
        return json.dumps(["ll", answer.logprob, answer.is_greedy])
    if isinstance(answer, str):
        return json.dumps(["gen", answer], ensure_ascii=False)
    raise TypeError(f"cannot cache an answer of type {type(answer).__name__}")


def decode_answer(text: str) -> Any:
    kind, *rest = json.loads(text)
    if kind == "ll":
        return LoglikelihoodResult(float(rest[0]), bool(rest[1]))
    return rest[0]


class RequestCache:
    """One SQLite file of answers. Not thread-safe; open one per process that writes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=120, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
            self.db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise HarnessError(f"--cache {self.path}: not a usable SQLite cache ({exc}); "
                               "delete it or pass another --cache") from None

    def get_many(self, model: str, keys: list[str]) -> dict[str, Any]:
        """The cached answers among ``keys`` (request keys), as ``{key: answer}``."""
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            rows = self.db.execute(f"SELECT request, answer FROM answers WHERE model=? AND request IN ({marks})",
                                   [model, *part])
            found.update((k, decode_answer(a)) for k, a in rows)
        return found

    def put_many(self, model: str, items: list[tuple[str, Any]]) -> None:
        """Store ``(request key, answer)`` pairs in one committed transaction."""
        rows = [(model, k, encode_answer(a)) for k, a in items]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO answers (model, request, answer) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM answers WHERE model=?", (model,)).fetchone()[0]

    def close(self) -> None:
        self.db.close()

