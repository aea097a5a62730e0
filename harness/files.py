"""Files: atomic writes, and (from :mod:`harness.api.data`) readers whose errors name the file and line.

Every file harness writes goes through :func:`atomic_write_text` (temp file in the
same directory, fsync, rename), so a crash or a full disk never leaves half a file
where a whole one was. Readers turn user mistakes into one-line ``HarnessError``s.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .api.data import iter_jsonl, read_json, read_jsonl, read_text  # noqa: F401 (one set of readers)
from .errors import HarnessError


def publish(path: Path | str) -> None:
    """Give a temp file or dir (created 0600/0700) the permissions of an ordinary new one."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~mask)


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write via a temp file in the same directory and rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        publish(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finite(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null rather than produce invalid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def atomic_write_json(path: Path | str, data: Any) -> None:
    atomic_write_text(path, json.dumps(finite(data), indent=2, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: Path | str, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(json.dumps(finite(r), ensure_ascii=False) + "\n" for r in rows))


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """``out`` is (or can be made) a writable directory: else one line, before any work.
    The probe has a unique name: torchrun's ranks check the same directory at once."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".harness-write-test-"):
            pass
    except OSError as e:
        raise HarnessError(f"{flag} {out}: cannot write there ({e.strerror or e}); "
                           "choose a writable directory") from None
