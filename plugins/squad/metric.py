"""The official SQuAD metrics, re-implemented line for line (v1.1 and v2.0 scripts).

Why two variants: the scripts differ at the edges. v1.1 compares against every gold
answer as given; v2.0 drops golds that normalise to "" (one is ``"."`` in dev-v1.1),
uses ``[""]`` for unanswerable questions, and scores an empty prediction against an
empty gold as F1 = 1. Mixing them would silently move reported numbers.

Inputs are plain Python: ``questions`` is a list of ``(qid, [gold answer texts])`` in
data-file order, ``preds`` maps qid -> predicted text, ``na_probs`` qid -> probability.
Arithmetic follows the scripts (``100.0 * sum / total``) so results are bit-identical.
"""
from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)

Questions = Sequence[tuple[str, list[str]]]


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (both scripts)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(_ARTICLES, " ", s)
    return " ".join(s.split())


# ---- v1.1 ----------------------------------------------------------------------------

def f1_v1(prediction: str, ground_truth: str) -> float:
    pred_toks = normalize_answer(prediction).split()
    gold_toks = normalize_answer(ground_truth).split()
    num_same = sum((collections.Counter(pred_toks) & collections.Counter(gold_toks)).values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def exact_v1(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def max_v1(metric, prediction: str, golds: list[str]) -> float:
    """``metric_max_over_ground_truths``; needs at least one gold (as the script)."""
    return max(metric(prediction, g) for g in golds)


def evaluate_v1(questions: Questions, preds: dict[str, str]) -> dict[str, float]:
    """``evaluate()`` of evaluate-v1.1.py: missing predictions score 0 but count in the total."""
    f1 = exact_match = total = 0
    for qid, golds in questions:
        total += 1
        if qid not in preds:
            continue
        exact_match += max_v1(exact_v1, preds[qid], golds)
        f1 += max_v1(f1_v1, preds[qid], golds)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# ---- v2.0 ----------------------------------------------------------------------------

def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks, pred_toks = _tokens(a_gold), _tokens(a_pred)
    num_same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)  # no-answer: 1 if both empty, else 0
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def golds_v2(answers: list[str]) -> list[str]:
    """Gold answers as v2.0 scores them: empty-after-normalisation dropped, ``[""]`` if none left."""
    return [a for a in answers if normalize_answer(a)] or [""]


def raw_scores_v2(questions: Questions, preds: dict[str, str]) -> tuple[dict[str, int], dict[str, float]]:
    """``get_raw_scores``: per-question max over golds (questions without a prediction skipped)."""
    exact: dict[str, int] = {}
    f1: dict[str, float] = {}
    for qid, answers in questions:
        if qid not in preds:
            continue
        golds = golds_v2(answers)
        exact[qid] = max(compute_exact(a, preds[qid]) for a in golds)
        f1[qid] = max(compute_f1(a, preds[qid]) for a in golds)
    return exact, f1


def apply_no_ans_threshold(scores: dict, na_probs: dict, has_ans: dict, thresh: float) -> dict:
    """Questions whose no-answer probability exceeds ``thresh`` are answered with ""."""
    return {q: float(not has_ans[q]) if na_probs[q] > thresh else s for q, s in scores.items()}


def _eval_dict(exact: dict, f1: dict, qids: list[str] | None = None) -> dict[str, float]:
    if not qids:
        total = len(exact)
        return {"exact": 100.0 * sum(exact.values()) / total, "f1": 100.0 * sum(f1.values()) / total, "total": total}
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[k] for k in qids) / total,
        "f1": 100.0 * sum(f1[k] for k in qids) / total,
        "total": total,
    }


def best_thresh_count(preds: dict, scores: dict, na_probs: dict, has_ans: dict) -> tuple[float, float]:
    """``find_best_thresh`` before the final percentage: (best summed score, threshold).

    Walks questions by increasing no-answer probability (a stable sort over ``na_probs``
    in its given order, so ties resolve exactly as in the script).
    """
    cur = best = sum(1 for k in has_ans if not has_ans[k])
    thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if preds[qid] else 0
        cur += diff
        if cur > best:
            best, thresh = cur, na_probs[qid]
    return best, thresh


def evaluate_v2(
    questions: Questions, preds: dict[str, str], na_probs: dict[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float]:
    """``main()`` of evaluate-v2.0.py (without the optional precision-recall plots)."""
    has_ans = {qid: bool(answers) for qid, answers in questions}
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}
    exact_raw, f1_raw = raw_scores_v2(questions, preds)
    exact = apply_no_ans_threshold(exact_raw, probs, has_ans, na_prob_thresh)
    f1 = apply_no_ans_threshold(f1_raw, probs, has_ans, na_prob_thresh)
    out = _eval_dict(exact, f1)
    for prefix, qids in (("HasAns", [k for k, v in has_ans.items() if v]),
                         ("NoAns", [k for k, v in has_ans.items() if not v])):
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in _eval_dict(exact, f1, qids).items()})
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = best_thresh_count(preds, raw, na_probs, has_ans)
            out[f"best_{name}"] = 100.0 * best / len(raw)
            out[f"best_{name}_thresh"] = thresh
    return out
