"""What a reader needs to check one sample: choice probabilities and answer differences.

Why: an MMLU row that only says "model D, gold B" hides how sure the model was; the
softmax over the choices' loglikelihoods (what the plug-in already stores per role)
and the margin of the gold choice show whether a flip is a near-tie or a real change.
For generated answers, a word-level diff of base vs model (difflib, computed here so
the page and the JS view show the same thing) makes the change visible at a glance.
Both are returned as plain data; templates escape, the script uses textContent.
"""
from __future__ import annotations

import difflib
import math
import re
from typing import Any

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")
_CHOICE_LINE = re.compile(r"^([A-Z])\. ?(.*)$")
MAX_DIFF_TOKENS = 3000  # difflib is quadratic in the worst case; longer answers get no diff


def softmax(lls: list[float]) -> list[float]:
    top = max(lls)
    exps = [math.exp(x - top) for x in lls]
    total = sum(exps)
    return [e / total for e in exps]


def _choice_texts(rec: dict, n: int) -> list[str]:
    """Choice texts from the record (``choices`` of a role) or the prompt's last question."""
    for role in ("model", "base"):
        part = rec.get(role)
        if isinstance(part, dict) and isinstance(part.get("choices"), list) and len(part["choices"]) == n:
            return [str(c) for c in part["choices"]]
    lines = str(rec.get("prompt", "")).split("\n")
    found: list[str] = []
    for line in reversed(lines):
        m = _CHOICE_LINE.match(line)
        if m:
            found.insert(0, m.group(2))
        elif found:
            break
    return found if len(found) == n else [""] * n


def choices_view(rec: dict) -> dict[str, Any] | None:
    """``{"ch": [{"l", "x", "pm", "pb", "g"}], "mg": {"model": m, "base": b}}`` or None.

    ``pm``/``pb``: softmax over the stored loglikelihoods of model/base. The margin of a
    role is p(gold) − the largest p of another choice: above 0 the role picked the gold
    answer, and its size says how clearly.
    """
    probs: dict[str, list[float]] = {}
    for role in ("model", "base"):
        part = rec.get(role)
        lls = part.get("loglikelihoods") if isinstance(part, dict) else None
        if isinstance(lls, list) and lls and all(isinstance(x, (int, float)) and math.isfinite(x) for x in lls):
            probs[role] = softmax([float(x) for x in lls])
    if "model" not in probs:
        return None
    n = len(probs["model"])
    if "base" in probs and len(probs["base"]) != n:
        del probs["base"]
    letters = [chr(ord("A") + k) for k in range(n)]
    target = str(rec.get("target", "")).strip()
    gold = letters.index(target) if target in letters else None
    texts = _choice_texts(rec, n)
    out = [{"l": letters[k], "x": texts[k], "pm": probs["model"][k],
            "pb": probs["base"][k] if "base" in probs else None, "g": k == gold} for k in range(n)]
    margins = {}
    if gold is not None and n > 1:
        for role, p in probs.items():
            margins[role] = p[gold] - max(q for k, q in enumerate(p) if k != gold)
    return {"ch": out, "mg": margins}


def word_diff(old: str, new: str) -> list[list[str]] | None:
    """Word-level diff of base (old) → model (new) as ``[[op, text], ...]``; op is "=", "-" or "+".

    None when the texts are equal or too long to diff.
    """
    if old == new:
        return None
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    if len(a) > MAX_DIFF_TOKENS or len(b) > MAX_DIFF_TOKENS:
        return None
    out: list[list[str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(["=", "".join(a[i1:i2])])
            continue
        if i2 > i1:
            out.append(["-", "".join(a[i1:i2])])
        if j2 > j1:
            out.append(["+", "".join(b[j1:j2])])
    return out
