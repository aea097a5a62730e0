"""Reading benchmark data: bundled files, local copies, the hub, JSON and JSON Lines.

Every benchmark reads data from one of three places (bundled subset, ``--data-dir``,
Hugging Face hub) and every one of them must turn a bad file into a one-line
:class:`HarnessError` naming the file, so that logic lives here once. The readers are
also harness's own (``harness.files`` re-exports them).
"""
from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import HarnessError, did_you_mean
from .benchmark import BenchmarkConfig

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; only annotations need it
    from importlib.resources.abc import Traversable


def bundled(*parts: str) -> Traversable:
    """A file shipped in ``harness_tasks`` (works from a wheel or an editable install)."""
    node = files("harness_tasks")
    for part in parts:
        node = node.joinpath(part)
    return node


def read_text(path: Path | str | Traversable, what: str = "file") -> str:
    """Read UTF-8 text (transparently gunzipping ``*.gz``); user errors become HarnessError."""
    if isinstance(path, str):
        path = Path(path)
    try:
        raw = path.read_bytes()
        if str(path).endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise HarnessError(f"{what} {path}: not found") from None
    except IsADirectoryError:
        raise HarnessError(f"{what} {path}: is a directory, expected a file") from None
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise HarnessError(f"{what} {path}: cannot read ({type(e).__name__}: {e})") from None


def read_json(path: Path | str | Traversable, what: str = "file") -> Any:
    """Parse a JSON (or ``.json.gz``) file, naming the file, line and column on a syntax error."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise HarnessError(f"{what} {path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


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


def read_jsonl(path: Path | str | Traversable, what: str = "file", hint: str = "") -> list[tuple[int, Any]]:
    """Every ``(line number, value)`` of a JSON Lines (or ``.jsonl.gz``) file."""
    # split on "\n" only: str.splitlines() would also split inside strings at U+0085, U+2028, ...
    return list(iter_jsonl(read_text(path, what).split("\n"), f"{what} {path}", hint))


def load_hub(bench: str, path: str, name: str | None, split: str) -> list[dict[str, Any]]:
    """Load one split from the Hugging Face hub; ``datasets`` is imported only here (slow import)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a hard dependency
        raise HarnessError(f"{bench}: the `datasets` package is needed for the full data set") from None
    try:
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as e:  # network, missing config, cache corruption: all user-fixable
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise HarnessError(
            f"{bench}: could not load {path}{'/' + name if name else ''} ({split}) from the Hugging Face hub "
            f"({type(e).__name__}: {first}); pass --data-dir {bench}=DIR to use a local copy"
        ) from None
    return [dict(row) for row in ds]


def data_dir(config: BenchmarkConfig, bench: str) -> Path | None:
    """``--data-dir BENCH=DIR`` as a checked Path (None when not given)."""
    if not config.data_dir:
        return None
    path = Path(config.data_dir).expanduser()
    if not path.exists():
        raise HarnessError(f"--data-dir {bench}={config.data_dir}: no such file or directory")
    return path


def effective_limit(config: BenchmarkConfig, bundled_data: bool, default: int) -> int | float | None:
    """``--limit`` if given; else ``default`` on the bundled subset (keeps the default run short), else all."""
    if config.limit is not None:
        if config.limit < 0:
            raise HarnessError(f"--limit must be >= 0, got {config.limit}")
        return config.limit
    return default if bundled_data else None


def select_subsets(
    bench: str, requested: Sequence[str] | None, available: Sequence[str],
    default: Sequence[str] | None, groups: dict[str, list[str]],
) -> list[str]:
    """Resolve ``--subsets`` (subset or group names) to subset names, in the benchmark's order."""
    if not requested:
        return list(default if default is not None else available)
    wanted: set[str] = set()
    for name in requested:
        if name in groups:
            wanted.update(groups[name])
        elif name in available:
            wanted.add(name)
        else:
            raise HarnessError(
                f"{bench}: unknown subset {name!r}{did_you_mean(name, [*available, *groups])}; "
                f"see `harness tasks` for the list"
            )
    return [s for s in available if s in wanted]


def take(items: Iterable[Any], limit: int | float | None) -> list[Any]:
    """The first ``limit`` items (all when None), as lm-eval's ``--limit``: a float below 1 is a
    fraction of the items, rounded up."""
    out = list(items)
    if limit is None:
        return out
    if isinstance(limit, float) and limit < 1.0:
        limit = math.ceil(len(out) * limit)
    return out[:int(limit)]
