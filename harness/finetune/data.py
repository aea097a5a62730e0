"""Instruction data: load records from JSON / JSONL files, a local dataset dir or a hub id,
and validate them into :class:`Example` objects.

Two record shapes are accepted, because both are common in the wild:

* Alpaca style ``{"instruction", "input" (optional), "output"}`` (LLMs-from-scratch ch07,
  tatsu-lab/alpaca);
* chat style ``{"messages": [{"role", "content"}, ...]}`` ending with an assistant turn.

Every record is checked up front, so a typo in record 812 fails in a second with
``file: record 812, field 'output': ...`` instead of crashing an hour into training.
``datasets`` is imported only for directories and hub ids (it is slow to import).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..files import iter_jsonl
from ..prompts.example import Example, example_from_alpaca, user_content  # noqa: F401 (records become Examples)

ROLES = ("system", "user", "assistant")
RECORD_HELP = ('each record needs string fields "instruction" and "output" ("input" optional), '
               'or a "messages" list of {"role", "content"} ending with an assistant turn')
HUB_ID = re.compile(r"^(hf:)?[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_data_path() -> Path:
    """The bundled example data (LLMs-from-scratch ch07's 1,100 instructions, Apache-2.0)."""
    import harness_tasks

    return Path(harness_tasks.__file__).resolve().parent / "instructions" / "instruction-data.json"


def _bad(where: str, i: int, fld: str, what: str) -> HarnessError:
    return HarnessError(f"{where}: record {i}, field {fld!r}: {what}; {RECORD_HELP}")


def validate_record(rec: Any, i: int, where: str) -> Example:
    """Turn one raw record into an :class:`Example` or raise a one-line HarnessError."""
    if not isinstance(rec, dict):
        raise _bad(where, i, "(record)", f"expected an object, got {type(rec).__name__}")
    if rec.get("messages") is not None:
        return _validate_chat(rec["messages"], i, where)
    for name in ("instruction", "output"):
        if name not in rec or rec[name] is None:
            raise _bad(where, i, name, "missing")
        if not isinstance(rec[name], str):
            raise _bad(where, i, name, f"expected a string, got {type(rec[name]).__name__}")
    if not rec["instruction"].strip():
        raise _bad(where, i, "instruction", "empty")
    inp = rec.get("input")
    if inp is None:
        inp = ""
    if not isinstance(inp, str):
        raise _bad(where, i, "input", f"expected a string, got {type(inp).__name__}")
    return example_from_alpaca(rec["instruction"], inp, rec["output"], index=i)


def _validate_chat(msgs: Any, i: int, where: str) -> Example:
    if not isinstance(msgs, list) or not msgs:
        raise _bad(where, i, "messages", "expected a non-empty list")
    for j, m in enumerate(msgs):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise _bad(where, i, f"messages[{j}].content", "missing or not a string")
        if m.get("role") not in ROLES:
            raise _bad(where, i, f"messages[{j}].role", f"{m.get('role')!r} is not one of {', '.join(ROLES)}")
        if m["role"] == "system" and j != 0:
            raise _bad(where, i, f"messages[{j}].role", "a system turn may only come first")
    if msgs[-1]["role"] != "assistant":
        raise _bad(where, i, f"messages[{len(msgs) - 1}].role", "the last turn must be the assistant's answer")
    users = [m for m in msgs if m["role"] == "user"]
    if not users:
        raise _bad(where, i, "messages", "no user turn")
    turns = [{"role": m["role"], "content": m["content"]} for m in msgs[:-1]]
    return Example(instruction=users[-1]["content"], input="", output=msgs[-1]["content"], messages=turns,
                   index=i, chat=True)


def validate_records(records: Iterable[Any], where: str) -> list[Example]:
    """Validate all records; the error names the first bad one and counts the rest."""
    out: list[Example] = []
    first: HarnessError | None = None
    n_bad = 0
    for i, rec in enumerate(records):
        try:
            out.append(validate_record(rec, i, where))
        except HarnessError as e:
            n_bad += 1
            first = first or e
    if first is not None:
        more = f" ({n_bad - 1} more bad record{'s' if n_bad > 2 else ''})" if n_bad > 1 else ""
        raise HarnessError(f"{first}{more}")
    if not out:
        raise HarnessError(f"{where}: no records; {RECORD_HELP}")
    return out


def read_json_records(path: Path) -> list[Any]:
    """A JSON list (or {"data": [...]}) or JSON Lines; syntax errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HarnessError(f"--data {path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    if path.suffix != ".json" and (path.suffix == ".jsonl" or not text.lstrip().startswith("[")):
        return [rec for _, rec in iter_jsonl(text.split("\n"), str(path),
                                             "JSON Lines files hold one record per line")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise HarnessError(f"{path}: not valid JSON at line {e.lineno} column {e.colno} ({e.msg}); "
                           "fix the file or use .jsonl for one record per line") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise HarnessError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


def _load_with_datasets(source: str, local: bool) -> list[Any]:
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is an install requirement
        raise HarnessError("--data: loading a dataset dir or hub id needs `pip install datasets`") from None
    try:
        ds = datasets.load_dataset(source, split="train")
    except Exception as e:  # datasets raises many types (offline, missing split, bad files)
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        hint = "check the directory's files" if local else "check the id and your network, or pass a local file"
        raise HarnessError(f"--data {source}: cannot load with `datasets` ({msg}); {hint}") from None
    return [dict(r) for r in ds]


def load_examples(source: str | Path | None = None, limit: int | None = None) -> tuple[list[Example], str]:
    """Load and validate examples; returns them and a name for logs/configs.

    ``source`` is a .json/.jsonl file, a local dataset directory, a hub id
    (``tatsu-lab/alpaca``, optionally ``hf:`` prefixed) or None for the bundled data.
    ``limit`` keeps the first N records (before splitting), so runs are reproducible.
    """
    if source is None:
        path = default_data_path()
        records, name = read_json_records(path), str(path)
    else:
        s = str(source)
        path = Path(s).expanduser()
        if path.is_file():
            records, name = read_json_records(path), str(path)
        elif path.is_dir():
            records, name = _load_with_datasets(str(path), local=True), str(path)
        elif HUB_ID.match(s) and not s.endswith((".json", ".jsonl")):
            hub = s[3:] if s.startswith("hf:") else s
            records, name = _load_with_datasets(hub, local=False), hub
        else:
            raise HarnessError(f"--data {s}: no such file or directory (want a .json/.jsonl file, a dataset "
                               "dir or a hub id like tatsu-lab/alpaca)")
    if limit is not None:
        records = records[:limit]
    return validate_records(records, name), name
