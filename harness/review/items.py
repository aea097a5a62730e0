"""What a person reviews: pairs of answers to the same prompt, read from one or two run directories."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..files import read_jsonl


@dataclass(frozen=True)
class Item:
    """One comparison: ``key`` is stable across restarts (``bench/doc_id``); ``first`` says which
    side ("a" or "b") is shown on the left, drawn from the key so a resumed session shows the same."""

    key: str
    benchmark: str
    doc_id: str
    prompt: str
    answer_a: str  # run 1's model (or the model of a single run)
    answer_b: str  # run 2's model (or the base of a single run)
    label_a: str
    label_b: str
    first: str


def _records(run: Path) -> dict[str, list[dict[str, Any]]]:
    if not (run / "results.json").is_file():
        raise HarnessError(f"{run}: not a harness run (no results.json); give the --out of `harness run`")
    out = {}
    for path in sorted((run / "samples").glob("*.jsonl")):
        out[path.stem] = [rec for _, rec in read_jsonl(path, "samples file")]
    return out


def _answer(rec: dict[str, Any], role: str) -> str | None:
    entry = rec.get(role)
    answer = entry.get("answer") if isinstance(entry, dict) else None
    return answer if isinstance(answer, str) and answer.strip() else None


def _is_free_text(records: list[dict[str, Any]], role: str) -> bool:
    """Generation benchmarks only: multiple-choice letters are not worth a person's time."""
    answers = [a for a in (_answer(r, role) for r in records) if a is not None]
    return bool(answers) and sum(len(a) for a in answers) / len(answers) > 3


def load_items(run: Path, other: Path | None = None, benchmarks: list[str] | None = None,
               seed: int = 0) -> list[Item]:
    """Every prompt both sides answered, in the run's order; ``other`` compares two runs' models."""
    first = _records(run)
    second = _records(other) if other else None
    names = benchmarks or [b for b in first if _is_free_text(first[b], "model")]
    unknown = [b for b in names if b not in first]
    if unknown:
        raise HarnessError(f"--benchmark {unknown[0]}: not in {run}/samples/ (has: {', '.join(first) or 'none'})")
    items = []
    for bench in names:
        theirs = {r.get("doc_id"): r for r in (second or {}).get(bench, [])}
        for rec in first[bench]:
            a = _answer(rec, "model")
            if second is None:
                b, label_a, label_b = _answer(rec, "base"), "model", "base"
            else:
                b, label_a, label_b = _answer(theirs.get(rec.get("doc_id"), {}), "model"), str(run), str(other)
            if a is None or b is None:
                continue
            key = f"{bench}/{rec.get('doc_id')}"
            draw = hashlib.sha256(f"{seed}:{key}".encode()).digest()[0]
            items.append(Item(key, bench, str(rec.get("doc_id")), _prompt(rec), a, b, label_a, label_b,
                              "a" if draw % 2 == 0 else "b"))
    if not items:
        what = "the two runs' models" if other else "model and base (run it with --base)"
        raise HarnessError(f"{run}: no prompt with free-text answers from {what}; nothing to review")
    return items


def _prompt(rec: dict[str, Any]) -> str:
    prompt = rec.get("prompt")
    return prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False)
