"""Checking the shape of a run's files before the report reads them.

``harness report`` opens runs it did not write: older versions, other tools, damaged
copies. The templates and row builders assume objects where objects belong; a list or a
string there used to end in a traceback. Here every field the report reads is checked
once, and a misshapen one is a one-line error naming the file, the field (and line) and
what to do.
"""
from __future__ import annotations

import re
from typing import Any

from ..errors import HarnessError

HINT = "re-run the evaluation (or restore the file)"
_SAFE_NAME = re.compile(r"[^/\\\x00]+")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _need(where: str, field: str, value: Any, types: tuple[type, ...], what: str, optional: bool = True) -> None:
    if value is None and optional:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise HarnessError(f"{where}: field {field} is {_kind(value)}, expected {what}; {HINT}")


def _metric_block(where: str, field: str, metrics: Any) -> None:
    _need(where, field, metrics, (dict,), "an object of metrics")
    for metric, entry in (metrics or {}).items():
        _need(where, f"{field}.{metric}", entry, (dict,), "an object")
        for part in ("model", "base", "delta"):
            _need(where, f"{field}.{metric}.{part}", (entry or {}).get(part), (dict,), "an object or null")


def check_results(data: dict[str, Any], where: str) -> None:
    """Every field of results.json the report reads has the type the schema gives it."""
    for key in ("models", "config", "timing", "versions"):  # absent is fine (older writers), null is not
        _need(where, key, data.get(key), (dict,), "an object", optional=key not in data)
    for role, info in (data.get("models") or {}).items():
        _need(where, f"models.{role}", info, (dict,), "an object or null")
    seed = (data.get("config") or {}).get("seed")
    _need(where, "config.seed", seed, (int,), "an integer")
    _need(where, "command", data.get("command"), (list, str), "a list of arguments")
    errors = data.get("plugin_errors")
    _need(where, "plugin_errors", errors, (list,), "a list")
    for i, err in enumerate(errors or []):
        _need(where, f"plugin_errors[{i}]", err, (dict,), "an object", optional=False)
    for name, bench in data["benchmarks"].items():
        if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
            raise HarnessError(f"{where}: benchmark name {name!r} is not a plain name; {HINT}")
        field = f"benchmarks.{name}"
        _need(where, field, bench, (dict,), "an object", optional=False)
        _need(where, f"{field}.n", bench.get("n"), (int,), "an integer")
        _need(where, f"{field}.error", bench.get("error"), (str,), "text or null")
        for key in ("config", "timing", "pairwise", "subsets", "groups"):
            _need(where, f"{field}.{key}", bench.get(key), (dict,), "an object")
        _metric_block(where, f"{field}.metrics", bench.get("metrics"))
        for key in ("subsets", "groups"):
            for sub, entry in (bench.get(key) or {}).items():
                _need(where, f"{field}.{key}.{sub}", entry, (dict,), "an object", optional=False)
                _metric_block(where, f"{field}.{key}.{sub}.metrics", entry.get("metrics"))


def check_record(rec: Any, where: str) -> dict[str, Any]:
    """One samples line: an object whose model/base entries are objects with an object of scores."""
    if not isinstance(rec, dict):
        raise HarnessError(f"{where}: is {_kind(rec)}, expected a JSON object (one sample record); {HINT}")
    for role in ("model", "base"):
        part = rec.get(role)
        _need(where, role, part, (dict,), "an object")
        if isinstance(part, dict):
            _need(where, f"{role}.scores", part.get("scores"), (dict,), "an object of scores")
    return rec
