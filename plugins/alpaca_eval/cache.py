"""On-disk cache of judge calls, so re-running a judged benchmark costs no judge calls.

Why at the call level: a judgement is a pure function of (judge weights, exact prompt,
what was asked: label log-probabilities or a greedy generation). Keying on those makes
the cache correct across runs, out dirs, models and benchmarks, and a new judge
(another fingerprint) or another prompt template never sees stale entries.

Where: ``$HARNESS_JUDGE_CACHE`` if set (a file path, or ``off``), else
``$XDG_CACHE_HOME/harness/judge-cache.sqlite`` (``~/.cache/harness/judge-cache.sqlite``).
sqlite3 (stdlib) gives atomic writes and safe concurrent runs for free.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.api import HarnessError, Model

OFF = ("off", "none", "false", "0", "")


def default_cache_path() -> Path | None:
    """The cache file, or None when caching is switched off via ``HARNESS_JUDGE_CACHE=off``."""
    env = os.environ.get("HARNESS_JUDGE_CACHE")
    if env is not None:
        return None if env.strip().lower() in OFF else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "judge-cache.sqlite"


def judge_fingerprint(judge: Model) -> str:
    """What identifies the judge's behaviour: the weights' hash, else backend + spec + path.

    Backends without a weight hash (remote endpoints) are keyed by URL and model name,
    which is the best available; point ``HARNESS_JUDGE_CACHE`` elsewhere if it changes.
    """
    info = getattr(judge, "info", None)
    if info is None:
        return f"{type(judge).__module__}.{type(judge).__qualname__}"
    if info.fingerprint:
        return f"{info.backend}:{info.fingerprint}"
    served = (info.extra or {}).get("model", "")  # the model name behind an endpoint
    return f"{info.backend}:{info.spec}:{info.path}:{served}"


def cache_key(fingerprint: str, kind: str, payload: Any) -> str:
    blob = json.dumps([fingerprint, kind, payload], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """A key -> JSON value store (sqlite), or a no-op when ``path`` is None; counts hits and misses."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path).expanduser() if path is not None else None
        self.hits = 0
        self.misses = 0
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self._connect() as db:
                    db.execute("CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            except (OSError, sqlite3.Error) as exc:
                raise HarnessError(f"judge cache {self.path}: cannot use it ({exc}); set HARNESS_JUDGE_CACHE "
                                   "to a writable file or to off") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is always closed (no leaked handles)."""
        db = sqlite3.connect(str(self.path), timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        if self.path is not None and keys:
            with self._connect() as db:
                for start in range(0, len(keys), 500):  # sqlite's bound-parameter limit
                    chunk = keys[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    for key, value in db.execute(f"SELECT key, value FROM judgements WHERE key IN ({marks})", chunk):
                        found[key] = json.loads(value)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        if self.path is None or not items:
            return
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO judgements (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()])

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "hits": self.hits, "misses": self.misses}


def cache_from_option(path: Any) -> JudgeCache:
    """The judge cache named by option ``judge_cache`` (None: the default place; off: none)."""
    if path is None:
        return JudgeCache(default_cache_path())
    return JudgeCache(None if str(path).lower() in OFF else path)
