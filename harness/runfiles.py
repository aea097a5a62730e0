"""Writing a run's files: results.json first, then samples/, each after a free-space check.

A full disk used to end a finished evaluation with a traceback and nothing kept. Now the
small results.json (every metric) is written before the large samples files, free space
is checked before each write (an atomic write needs the whole new file beside the old
one), and a failure is one line naming the path and the space it needs.
"""
from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

from .errors import HarnessError
from .files import atomic_write_text, finite

MARGIN = 1 << 20  # bytes kept free beyond the file itself (directory entries, temp names)
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def free_bytes(directory: Path) -> int | None:
    """Free bytes on the file system holding ``directory`` (None when unknown)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def write_checked(path: Path, text: str, kept: str = "") -> None:
    """Atomically write ``text`` to ``path`` if the disk can hold it, else a one-line HarnessError."""
    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    free = free_bytes(path.parent)
    if free is not None and free < len(data) + MARGIN:
        raise HarnessError(f"{path}: not enough disk space: needs {_mb(len(data) + MARGIN)}, "
                           f"{_mb(free)} free; free some space and run again{kept}")
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        if exc.errno not in _FULL:
            raise HarnessError(f"{path}: cannot write ({exc.strerror}); choose a writable --out{kept}") from None
        raise HarnessError(f"{path}: disk full or file too large ({exc.strerror}) writing {_mb(len(data))}; "
                           f"free some space and run again{kept}") from None


def write_run(out: Path, results: dict[str, Any], samples: dict[str, list[dict]]) -> None:
    """``out/results.json``, then ``out/samples/<name>.jsonl`` for each benchmark."""
    results_path = out / "results.json"
    write_checked(results_path, json.dumps(finite(results), indent=2, ensure_ascii=False) + "\n")
    kept = f" (the metrics are in {results_path})"
    for name, records in samples.items():
        text = "".join(json.dumps(finite(r), ensure_ascii=False) + "\n" for r in records)
        write_checked(out / "samples" / f"{name}.jsonl", text, kept)
