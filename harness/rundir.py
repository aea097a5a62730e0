"""A run directory holds one run: never overwritten silently; ``--resume`` and ``--merge``.

Why: re-running into a finished run's ``--out`` with another suite used to replace its
results without a word. Now a directory with a results.json is refused unless the command
says what to do with it: ``--resume`` continues the same run (the options must match; the
request cache makes the finished part free), ``--merge`` adds benchmarks to it (same models
and seed; a benchmark already there must have the same options and is recomputed from the
cache).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import HarnessError

# config keys that must match for --resume (batch size does not change answers; the cache
# path and the command line are not the run's substance)
RESUME_KEYS = ("model", "base", "model_args", "base_args", "suite", "limit", "limits", "num_fewshot", "seed",
               "device", "full", "data_dirs", "options")
MERGE_KEYS = ("model", "base", "model_args", "base_args", "seed", "device")


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _suite_text(config: dict[str, Any]) -> str:
    parts = []
    for sel in config.get("suite") or []:
        subsets = sel.get("subsets") if isinstance(sel, dict) else None
        name = sel.get("benchmark", "?") if isinstance(sel, dict) else str(sel)
        parts.extend(f"{name}:{s}" for s in subsets) if subsets else parts.append(name)
    return ",".join(parts) or "?"


def describe(results: dict[str, Any]) -> str:
    """``MODEL [vs BASE] on SUITE (complete|incomplete, created ...)`` for messages."""
    config = results.get("config") or {}
    models = results.get("models") or {}
    model = config.get("model") or (models.get("model") or {}).get("spec") or "the default model"
    base = config.get("base") or (models.get("base") or {}).get("spec")
    state = "complete" if results.get("complete") else "incomplete"
    return (f"{model}{f' vs {base}' if base else ''} on {_suite_text(config)} "
            f"({state}, created {results.get('created', '?')})")


def load_previous(out: Path) -> dict[str, Any] | None:
    path = Path(out) / "results.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{path}: exists but cannot be read ({exc}); use another --out") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise HarnessError(f"{path}: exists but is not a harness results file; use another --out")
    return data


def _first_difference(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in old and _norm(old[key]) != _norm(new.get(key)):
            shown = (_suite_text(old), _suite_text(new)) if key == "suite" else (old[key], new.get(key))
            return f"{key}={shown[0]!r} there, {key}={shown[1]!r} in this command"
    return None


def check_run_dir(out: Path, config: dict[str, Any], resume: bool, merge: bool) -> dict[str, Any] | None:
    """Refuse a directory holding a run unless ``resume``/``merge`` says what to do with it.
    Returns the previous results when merging into them, else None. ``config`` is the new
    run's results.json ``config``."""
    if resume and merge:
        raise HarnessError("--resume and --merge: choose one (--resume continues a run, --merge adds benchmarks)")
    previous = load_previous(out)
    if previous is None:
        return None
    if not (resume or merge):
        raise HarnessError(f"{out} holds a run of {describe(previous)}; use --resume to continue it, "
                           "--merge to add benchmarks to it, or another --out")
    old = previous.get("config") or {}
    flag, keys = ("--resume", RESUME_KEYS) if resume else ("--merge", MERGE_KEYS)
    diff = _first_difference(old, config, keys)
    if diff:
        raise HarnessError(f"{flag}: {out} holds a run with other options ({diff}); "
                           f"repeat its options or use another --out")
    return previous if merge else None


def check_merge_benchmark(out: Path, previous: dict[str, Any], name: str, bench_config: dict[str, Any]) -> None:
    """A benchmark already in the run may be merged again only with the same options."""
    old = (previous.get("benchmarks", {}).get(name) or {}).get("config")
    if old is None:
        return
    for key, value in _norm(bench_config).items():
        if key in old and old[key] != value:
            raise HarnessError(f"--merge: {out} already holds {name} with {key}={old[key]!r} "
                               f"(this command: {value!r}); use the same options or another --out")


def merged(skeleton: dict[str, Any], previous: dict[str, Any], bench_configs: dict[str, dict[str, Any]],
           out: Path) -> dict[str, Any]:
    """The new run's results skeleton on top of ``previous`` (--merge): the earlier benchmarks
    and their entries stay, the suite is the union, the earlier commands go to ``history``."""
    for name, cfg in bench_configs.items():
        check_merge_benchmark(out, previous, name, cfg)
    new_names = set(bench_configs)
    old_suite = [s for s in (previous.get("config") or {}).get("suite") or [] if s.get("benchmark") not in new_names]
    result = dict(skeleton)
    result["config"] = {**skeleton["config"], "suite": old_suite + skeleton["config"]["suite"]}
    result["benchmarks"] = {k: v for k, v in previous.get("benchmarks", {}).items() if k not in new_names}
    result["history"] = [*previous.get("history", []), {"command": previous.get("command"),
                                                        "created": previous.get("created")}]
    return result


def open_run_dir(out: Path, config: dict[str, Any], *, cache: str | Path | bool | None, resume: bool,
                 merge: bool, dist: Any) -> tuple[Path | None, dict[str, Any] | None]:
    """``(request cache path or None, previous results to merge into or None)`` for a run into
    ``out``. Rank 0 decides and tells the other ranks (they may not see ``out``), so a refusal
    is the same one-line error on every rank."""
    from .cache import CACHE_FILE

    outcome: tuple[Any, Any, str | None] = (None, None, None)
    if dist.is_main:
        try:
            previous = check_run_dir(out, config, resume, merge)
            recorded = (load_previous(out) or {}).get("config", {}).get("cache") if resume else None
            if cache is False:
                path = None
            elif cache is None or cache is True:
                path = Path(recorded) if recorded else Path(out) / CACHE_FILE
            else:
                path = Path(cache)
            outcome = (path, previous, None)
        except HarnessError as exc:
            outcome = (None, None, str(exc))
    path, previous, error = dist.broadcast(outcome)
    if error:
        raise HarnessError(error)
    return path, previous
