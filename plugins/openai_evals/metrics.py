"""OpenAI Evals' basic checks, re-implemented from openai/evals (evals/api.py
``record_and_check_match``, evals/elsuite/basic/{match,includes,fuzzy_match}.py, evals/elsuite/utils.py)."""
from __future__ import annotations

import re
import string
from collections import Counter


def match(sampled: str, ideals: list[str]) -> bool:
    """Match: the completion starts with one of the ideal answers."""
    return any(sampled.startswith(ideal) for ideal in ideals)


def get_answer(text: str, answer: str, ignore_case: bool = False) -> str | None:
    idx = text.lower().rfind(answer.lower()) if ignore_case else text.rfind(answer)
    return None if idx == -1 else text[idx: idx + len(answer)]


def includes(sampled: str, ideals: list[str], ignore_case: bool = False) -> bool:
    """Includes: one of the ideal answers occurs in the completion."""
    return any(get_answer(sampled, ideal, ignore_case) is not None for ideal in ideals)


def normalize(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (evals' utils.normalize)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def fuzzy_match(s1: str, s2: str) -> bool:
    """Normalized containment either way; two empty strings match only each other."""
    s1, s2 = normalize(s1), normalize(s2)
    if s1 == "" or s2 == "":
        return s1 == s2
    return s1 in s2 or s2 in s1


def f1_score(prediction: str, answers: list[str]) -> float:
    """The best token-overlap F1 over the answers (evals' utils.f1_score)."""
    def one(pred: str, truth: str) -> float:
        p, t = normalize(pred).split(), normalize(truth).split()
        same = sum((Counter(p) & Counter(t)).values())
        if same == 0:
            return 0.0
        precision, recall = same / len(p), same / len(t)
        return 2 * precision * recall / (precision + recall)

    return max(one(prediction, a) for a in answers)


def chat_to_text(messages: list[dict[str, str]]) -> str:
    """evals' ``chat_prompt_to_text_prompt`` for completion models: one message as is; else
    system text bare, other turns prefixed ``User: ``/``Assistant: ``, ending with ``Assistant:``."""
    if len(messages) == 1:
        return messages[0]["content"]
    prefixes = {"system": "", "example_user": "User: ", "example_assistant": "Assistant: "}
    text = ""
    for msg in messages:
        role = msg.get("name") or msg["role"]
        text += f"{prefixes.get(role, role.capitalize() + ': ')}{msg['content']}\n"
    return (text + "Assistant:").lstrip()
