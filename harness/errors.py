"""User-facing errors: one line, no traceback, non-zero exit."""
from __future__ import annotations

import difflib


class HarnessError(Exception):
    """An error caused by the user's input; the CLI prints ``error: <message>`` and exits 2."""

    exit_code = 2


def did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
