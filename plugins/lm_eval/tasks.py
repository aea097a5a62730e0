"""Finding and loading lm-eval tasks: include paths, YAML checks with line numbers, offline errors.

lm-eval's TaskManager indexes its ~15k built-in YAMLs in tens of seconds, so names are looked
up first in the include paths alone (harness's ``tasks/*.yaml`` and ``--include-path``) and the
full index is built only for a name not found there. A typo in a YAML key would otherwise
surface as a TypeError deep in lm-eval; here it is one line naming the file, line and key.
"""
from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import Any

from harness.api import HarnessError, did_you_mean
from harness.api.data import bundled, read_text

_MANAGERS: dict[tuple, Any] = {}
_CHECKED: set[Path] = set()
HINT = ("get it where there is a network and copy ~/.cache/huggingface here (then HF_DATASETS_OFFLINE=1), "
        "or describe local files in a YAML task (--include-path DIR with dataset_path: json and "
        "dataset_kwargs: {data_files: FILE.jsonl})")


def include_paths(options: dict[str, Any]) -> list[Path]:
    """harness's shipped ``tasks/`` directory, then each ``--include-path`` (option ``include_path``)."""
    raw = options.get("include_path") or []
    raw = [raw] if isinstance(raw, str) else list(raw)
    paths = [Path(str(bundled()))]
    for item in raw:
        for part in filter(None, str(item).split(os.pathsep)):
            p = Path(part).expanduser()
            if not p.exists():
                raise HarnessError(f"--include-path {part}: no such file or directory")
            paths.append(p.resolve())
    return paths


def yaml_files(path: Path) -> list[Path]:
    """The YAML files lm-eval would index under ``path`` (the shipped dir: its top level only)."""
    if path.is_file():
        return [path]
    if path == Path(str(bundled())):
        return sorted(path.glob("*.yaml"))
    return sorted(p for p in path.rglob("*.yaml") if "__pycache__" not in p.parts)


def known_keys() -> set[str]:
    from lm_eval.api.group import GroupConfig
    from lm_eval.api.task import TaskConfig

    fields = {f.name for f in dataclasses.fields(TaskConfig)} | {f.name for f in dataclasses.fields(GroupConfig)}
    return fields | {"include", "class", "task_list", "version"}


def check_yaml(path: Path) -> None:
    """Top-level keys of one task YAML against lm-eval's TaskConfig/GroupConfig fields."""
    import yaml

    if path in _CHECKED:
        return
    text = read_text(path, "lm-eval task YAML")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)  # nodes only: `!function` tags need no constructor
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise HarnessError(f"{path}{line}: YAML syntax error: {exc.problem}; fix the file") from None
    if node is None:
        raise HarnessError(f"{path}: empty YAML; a task needs at least `task:` and `dataset_path:`")
    if not isinstance(node, yaml.MappingNode):
        raise HarnessError(f"{path}:{node.start_mark.line + 1}: expected a mapping of task keys")
    keys = known_keys()
    for key_node, _ in node.value:
        key = key_node.value
        if key not in keys:
            raise HarnessError(f"{path}:{key_node.start_mark.line + 1}: unknown key {key!r}"
                               f"{did_you_mean(key, sorted(keys))}; lm-eval's task keys are TaskConfig's fields")
    _CHECKED.add(path)


def manager(paths: list[Path], defaults: bool) -> Any:
    """One TaskManager per (include paths, with lm-eval's own tasks) per process."""
    key = (tuple(map(str, paths)), defaults)
    if key not in _MANAGERS:
        for p in paths:
            for f in yaml_files(p):
                check_yaml(f)
        from lm_eval.tasks import TaskManager

        _MANAGERS[key] = TaskManager(include_path=[str(p) for p in paths], include_defaults=defaults)
    return _MANAGERS[key]


def manager_for(names: list[str], options: dict[str, Any]) -> Any:
    """The cheapest TaskManager that knows every name; a one-line error for one that none knows."""
    paths = include_paths(options)
    local = manager(paths, defaults=False)
    if all(n in local.all_tasks for n in names):
        return local
    full = manager(paths, defaults=True)
    for n in names:
        if n not in full.all_tasks:
            raise HarnessError(f"--suite: lm-eval has no task or group {n!r}{did_you_mean(n, full.all_tasks)}; "
                               "`harness tasks lm-eval` lists the local ones, `lm-eval ls tasks` all of them; "
                               "local YAML tasks come with --include-path DIR")
    return full


def _resolved(cfg: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative ``data_files`` are read beside the YAML (lm-eval reads them from the cwd)."""
    kwargs = dict(cfg.get("dataset_kwargs") or {})
    files = kwargs.get("data_files")

    def fix(f: Any) -> Any:
        if isinstance(f, str) and not Path(f).is_absolute() and "://" not in f:
            cand = base / f
            if cand.exists() or glob.glob(str(cand)):
                return str(cand)
        return f

    if isinstance(files, dict):
        kwargs["data_files"] = {k: [fix(x) for x in v] if isinstance(v, list) else fix(v) for k, v in files.items()}
    elif isinstance(files, list):
        kwargs["data_files"] = [fix(x) for x in files]
    elif files is not None:
        kwargs["data_files"] = fix(files)
    return {**cfg, "dataset_kwargs": kwargs} if files is not None else cfg


def _offline_if_no_hub() -> None:
    """No DNS for the hub and no HF_*_OFFLINE set: go offline now, so a dataset missing from the
    cache fails at once instead of after datasets' retries."""
    import socket

    if any(os.environ.get(v) for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")):
        return
    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        import datasets.config
        import huggingface_hub.constants

        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
        huggingface_hub.constants.HF_HUB_OFFLINE = True


def _dataset_of(tm: Any, name: str) -> str:
    entry = tm.task_index.get(name)
    if entry is not None and entry.kind.name == "TAG" and entry.tags:  # a tag: its first task's data
        entry = tm.task_index.get(sorted(entry.tags)[0])
    if entry is None or not entry.yaml_path:
        return name
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        cfg = load_yaml(entry.yaml_path, resolve_func=False)
    except Exception:  # noqa: BLE001 - only for the message
        return name
    ds = cfg.get("dataset_path", name)
    return f"{ds} ({cfg['dataset_name']})" if cfg.get("dataset_name") else str(ds)


def load_tasks(tm: Any, names: list[str]) -> dict[str, Any]:
    """``{leaf task name: Task}`` for task, group and tag names; data errors name the dataset."""
    from lm_eval.tasks._yaml_loader import load_yaml

    out: dict[str, Any] = {}
    _offline_if_no_hub()
    for name in names:
        entry = tm.task_index.get(name)
        spec: Any = name
        if entry is not None and entry.yaml_path and entry.kind.name == "TASK":
            cfg = load_yaml(entry.yaml_path, resolve_func=True)
            if cfg.get("dataset_kwargs", {}) and cfg["dataset_kwargs"].get("data_files"):
                spec = _resolved(cfg, Path(entry.yaml_path).parent)
        try:
            loaded = tm.load([spec])
        except HarnessError:
            raise
        except Exception as exc:  # noqa: BLE001 - datasets' errors are many; the message names the data
            ds = _dataset_of(tm, name)
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise HarnessError(f"lm-eval task {name}: cannot load dataset {ds} ({type(exc).__name__}: {first}); "
                               f"{HINT}") from None
        out.update(loaded["tasks"])
    return out
