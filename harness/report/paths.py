"""Machine paths as a reader of a shared report should see them.

Why: a report is attached to CI runs and pull requests; absolute paths leak user and
machine names and mean nothing elsewhere. Paths under the home directory are shown
with ``~``, other absolute paths relative to the run (or comparison) directory.
Only configuration and model metadata pass through here, never model text.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

# an absolute POSIX path: a "/" not preceded by a word character, "<", ":" or "/" (tags, URLs)
_ABS = re.compile(r"(?<![\w.<>/:~-])/(?:[\w.+@=,-]+/?)+")


def shown(text: Any, base_dir: Path | str) -> Any:
    """``text`` with every absolute path made ``~/...`` (under home) or relative to ``base_dir``."""
    if not isinstance(text, str) or isinstance(text, Markup) or "/" not in text:  # Markup: rendered charts
        return text
    home = os.path.expanduser("~").rstrip("/")
    base = os.path.abspath(str(base_dir))
    packages = _package_dirs()

    def one(m: re.Match) -> str:
        path = m.group(0)
        trail = "/" if path.endswith("/") and len(path) > 1 else ""
        clean = path.rstrip("/") or "/"
        for name, root in packages:  # harness's bundled data: the same on every machine
            if clean == root or clean.startswith(root + "/"):
                return name + clean[len(root):] + trail
        if home and home != "/" and (clean == home or clean.startswith(home + "/")):
            if not (base == home or base.startswith(home + "/")):
                return "~" + clean[len(home):] + trail
        return os.path.relpath(clean, base) + trail

    return _ABS.sub(one, text)


def _package_dirs() -> list[tuple[str, str]]:
    """Where harness's own data packages live here, named by their import names."""
    out = []
    for name in ("harness_tasks", "harness_reports"):
        try:
            module = __import__(name)
        except ImportError:  # pragma: no cover - a broken install
            continue
        out.append((name, os.path.dirname(os.path.abspath(module.__file__ or ""))))
    return out


def scrub(obj: Any, base_dir: Path | str) -> Any:
    """A copy of a JSON-like value with :func:`shown` applied to every string in it."""
    if isinstance(obj, dict):
        return {k: scrub(v, base_dir) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub(v, base_dir) for v in obj)
    return shown(obj, base_dir)
