"""TriviaQA scoring: the official evaluation and lm-eval's ``triviaqa`` exact match.

Why two definitions: published TriviaQA numbers come from the official script
(mandarjoshi90/triviaqa ``evaluation/triviaqa_evaluation.py``: normalised exact match
and token F1, max over the normalised aliases), while most open-model leaderboards
report lm-eval's ``triviaqa`` task (strip the answer, then ``exact_match`` with
``ignore_case`` and ``ignore_punctuation`` against any raw alias). They disagree on
the same answers (lm-eval deletes punctuation and keeps articles; the official one
turns punctuation into spaces and drops articles), so both are computed and named.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from harness.api import HarnessError

# Official handle_punc: ASCII punctuation plus these four quote marks become spaces.
_OFFICIAL_PUNCT = frozenset(string.punctuation + "\u2018\u2019\u00b4`")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_LMEVAL_PUNCT_TABLE = str.maketrans("", "", string.punctuation)  # lm-eval deletes, not replaces


def normalize_answer(text: str) -> str:
    """The official normalisation: ``_``→space, lower, punctuation→space, articles out, spaces collapsed."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in _OFFICIAL_PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split()).strip()


def official_exact_match(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def official_f1(prediction: str, ground_truth: str) -> float:
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def official_ground_truths(doc: Mapping[str, Any]) -> list[str]:
    """``NormalizedAliases`` + normalised ``HumanAnswers``, as the official ``get_ground_truths``.

    The bundled subset has no normalised aliases; :func:`make_doc` derives them with
    :func:`normalize_answer`, the closest thing the official code offers.
    """
    return list(doc["normalized_aliases"]) + [normalize_answer(a) for a in doc.get("human_answers", [])]


def official_scores(prediction: str, doc: Mapping[str, Any]) -> tuple[float, float]:
    """(exact match 0/1, F1) for one question: the max over its ground truths."""
    truths = official_ground_truths(doc)
    if not truths:
        return 0.0, 0.0
    em = max(float(official_exact_match(prediction, t)) for t in truths)
    f1 = max(official_f1(prediction, t) for t in truths)
    return em, f1


def lmeval_filter(response: str) -> str:
    """lm-eval's ``remove_whitespace`` + ``take_first`` filters: strip the (first) response."""
    return response.strip()


def lmeval_exact_match(prediction: str, aliases: Iterable[str]) -> float:
    """lm-eval ``exact_match`` (ignore_case, ignore_punctuation) against any alias: 1.0 or 0.0.

    Mirrors ``exact_match_hf_evaluate``: lower case, delete ``string.punctuation``,
    compare without stripping (the filter already stripped the prediction).
    """
    pred = prediction.lower().translate(_LMEVAL_PUNCT_TABLE)
    return 1.0 if any(pred == a.lower().translate(_LMEVAL_PUNCT_TABLE) for a in aliases) else 0.0


def make_doc(qid: str, question: str, aliases: list[str], normalized_aliases: list[str] | None = None,
             human_answers: list[str] | None = None, value: str = "") -> dict[str, Any]:
    """One question in the shape every loader returns (and :func:`official_scores` reads)."""
    if normalized_aliases is None:
        normalized_aliases = list(dict.fromkeys(normalize_answer(a) for a in aliases))
    doc: dict[str, Any] = {"id": qid, "question": question, "aliases": list(aliases),
                           "normalized_aliases": list(normalized_aliases), "value": value}
    if human_answers:
        doc["human_answers"] = list(human_answers)
    return doc


def evaluate_official(docs: Mapping[str, Mapping[str, Any]], predictions: Mapping[str, str]) -> dict[str, Any]:
    """The official ``evaluate_triviaqa`` over ``{qid: doc}`` (percentages, same keys) + lm-eval EM.

    Like the official script, a question without a prediction scores 0 but stays in the
    denominator, and predictions for unknown ids are ignored (``pred_len`` shows them).
    Unlike it, predictions that match no question at all are an error: that is nearly
    always a predictions file for another data set or split.
    """
    common = sum(1 for qid in docs if qid in predictions)
    if predictions and common == 0:
        sample = ", ".join(repr(k) for k in list(predictions)[:3])
        raise HarnessError(
            f"--predictions: none of its {len(predictions)} question ids (e.g. {sample}) is in --data "
            f"({len(docs)} questions); are they for another data set or split?"
        )
    em = f1 = lm_em = 0.0
    for qid, doc in docs.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        if not isinstance(pred, str):
            raise HarnessError(f"--predictions: the answer for {qid!r} is {type(pred).__name__}, expected a string")
        q_em, q_f1 = official_scores(pred, doc)
        em, f1 = em + q_em, f1 + q_f1
        lm_em += lmeval_exact_match(lmeval_filter(pred), doc["aliases"])
    n = len(docs)
    if n == 0:
        raise HarnessError("--data holds no questions")
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "common": common, "denominator": n,
            "pred_len": len(predictions), "gold_len": n, "lmeval_exact_match": 100.0 * lm_em / n}
