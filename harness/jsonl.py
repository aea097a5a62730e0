"""JSON Lines reading with errors that name the file and line (shared by the report and plug-ins)."""
from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

from .errors import HarnessError


def iter_jsonl(lines: Iterable[str], where: str, hint: str = "") -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line; bad JSON is a one-line HarnessError.

    ``where`` names the file in the message (e.g. ``"predictions file p.jsonl"``); ``hint``
    says what to do about it.
    """
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{where} line {lineno}: invalid JSON ({exc.msg})"
                               + (f"; {hint}" if hint else "")) from None
