"""0–100 scoring judge of "Build a Large Language Model (From Scratch)", chapter 7.

The judge reads the instruction (in the book's Alpaca ``format_input``), the expected
output and the model's response, and is asked for an integer only. The book's loop
drops replies that ``int()`` cannot parse; here they are kept as ``score: None`` with
the raw reply and counted, because a judge that fails on the weaker model's answers
more often would otherwise bias the comparison silently.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from harness.api import GenerateRequest, HarnessError, Model
from harness.api.chat import messages_to_chatml

from .cache import JudgeCache, cache_key, judge_fingerprint

_STRICT = re.compile(r"^\s*[+-]?\d+\s*$")  # what Python's int() accepts, minus underscores
_FIRST_INT = re.compile(r"(?<!\d)(?<!\d\.)(\d{1,3})(?!\d|\.\d)")  # not part of a decimal
MAX_TOKENS = 16


def format_input(instruction: str, input_text: str = "") -> str:
    """The book's ``format_input`` (Alpaca header, instruction, optional input)."""
    text = ("Below is an instruction that describes a task. Write a response that appropriately completes "
            f"the request.\n\n### Instruction:\n{instruction}")
    return text + (f"\n\n### Input:\n{input_text}" if input_text else "")


def score_prompt(instruction: str, input_text: str, expected: str, response: str) -> str:
    return (f"Given the input `{format_input(instruction, input_text)}` "
            f"and correct output `{expected}`, "
            f"score the model response `{response}`"
            " on a scale from 0 to 100, where 100 is the best score. "
            "Respond with the integer number only.")


def parse_score(text: str, lenient: bool = False) -> int | None:
    """The integer the judge replied, if it is one in [0, 100].

    Strict (default) accepts what the book's ``int(score)`` accepts; ``lenient`` takes
    the first 1–3 digit integer anywhere ("Score: 85/100" -> 85). Out of range -> None.
    """
    text = text or ""
    if _STRICT.match(text):
        value = int(text)
    elif lenient and (m := _FIRST_INT.search(text)):
        value = int(m.group(1))
    else:
        return None
    return value if 0 <= value <= 100 else None


class ScoreJudge:
    """Scores responses 0–100 against expected outputs with any harness :class:`Model` (greedy)."""

    def __init__(self, judge: Model, *, chat_format: str = "chatml", lenient: bool = False,
                 cache: JudgeCache | None = None, progress: bool = False) -> None:
        if chat_format not in ("chatml", "raw"):
            raise HarnessError(f"alpaca_eval option judge_format={chat_format!r}: expected chatml or raw")
        self.judge, self.chat_format, self.lenient = judge, chat_format, lenient
        self.cache = cache or JudgeCache(None)
        self.progress = progress
        self.fingerprint = judge_fingerprint(judge)
        self.calls = 0

    def context(self, prompt: str) -> str:
        if self.chat_format == "raw":
            return prompt
        return messages_to_chatml([{"role": "user", "content": prompt}])

    def score(self, items: Sequence[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
        """``(instruction, input, expected, response)`` -> ``{"score": int | None, "raw", "cached"}``."""
        contexts = [self.context(score_prompt(*item)) for item in items]
        keys = [cache_key(self.fingerprint, "score-generate",
                          {"context": c, "max_tokens": MAX_TOKENS, "temperature": 0.0}) for c in contexts]
        found = self.cache.get_many(keys)
        todo = list(dict.fromkeys(c for c, k in zip(contexts, keys) if k not in found))
        texts = self.judge.generate([GenerateRequest(c, max_tokens=MAX_TOKENS, temperature=0.0) for c in todo],
                                    progress=self.progress) if todo else []
        self.calls += len(todo)
        fresh = dict(zip(todo, texts))
        self.cache.put_many({k: {"text": fresh[c]} for c, k in zip(contexts, keys) if c in fresh})
        out = []
        for c, k in zip(contexts, keys):
            raw = found[k]["text"] if k in found else fresh[c]
            out.append({"score": parse_score(raw, self.lenient), "raw": raw, "cached": k in found})
        return out


def score_summary(verdicts: Sequence[dict[str, Any]], doc_ids: Sequence[str]) -> dict[str, Any]:
    """Mean over parsed scores plus the unparseable count and which samples they were."""
    scores = [v["score"] for v in verdicts if v["score"] is not None]
    bad = [d for d, v in zip(doc_ids, verdicts) if v["score"] is None]
    return {"mean": sum(scores) / len(scores) if scores else None, "n": len(verdicts), "n_scored": len(scores),
            "n_unparseable": len(bad), "unparseable_doc_ids": bad[:50]}
