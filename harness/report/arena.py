"""Several runs ranked as Chatbot Arena ranks models: Bradley-Terry ratings with bootstrap intervals,
fitted separately from human votes (``reviews.jsonl``) and from judge verdicts (alpaca_eval samples).

Why Bradley-Terry: head-to-heads between different pairs (ft1 vs base, ft2 vs base, ft1 vs
ft2) only become one ranking through a model of pairwise strength; Chatbot Arena uses the
same one. Ratings are on the Elo scale (400 per factor of 10 in odds), mean 1000.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

Comparison = tuple[str, str, float]  # (system a, system b, score of a: 1 win, 0.5 tie, 0 loss)
SCALE, BASE_RATING = 400.0, 1000.0


def fit(comparisons: list[Comparison], iters: int = 2000, tol: float = 1e-10, prior: float = 1.0) -> dict[str, float]:
    """Maximum-likelihood strengths by Hunter's MM algorithm (a tie is half a win for each side);
    ``prior`` games against an average opponent, drawn, keep an unbeaten system finite (0: pure MLE)."""
    names = sorted({c[0] for c in comparisons} | {c[1] for c in comparisons})
    index = {n: i for i, n in enumerate(names)}
    k = len(names)
    wins = np.full(k, prior / 2)  # the prior: drawn games ...
    games = np.zeros((k, k))
    for a, b, s in comparisons:
        i, j = index[a], index[b]
        wins[i] += s
        wins[j] += 1.0 - s
        games[i, j] += 1
        games[j, i] += 1
    p = np.ones(k)
    for _ in range(iters):
        denom = games / (p[:, None] + p[None, :])
        new = wins / (denom.sum(axis=1) + prior / (p + 1.0))  # ... against an opponent of strength 1
        new /= math.exp(np.log(new).mean())
        if np.max(np.abs(new - p)) < tol:
            p = new
            break
        p = new
    logs = np.log10(p)
    return {n: float(BASE_RATING + SCALE * (logs[i] - logs.mean())) for n, i in index.items()}


def ratings(comparisons: list[Comparison], n_boot: int = 200, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{system: {"rating", "ci95": [lo, hi], "n"}}``, intervals from resampling the comparisons."""
    if not comparisons:
        return {}
    point = fit(comparisons)
    rng = np.random.default_rng(seed)
    boots: dict[str, list[float]] = {n: [] for n in point}
    for _ in range(n_boot):
        sample = [comparisons[i] for i in rng.integers(0, len(comparisons), len(comparisons))]
        for name, value in fit(sample, iters=500).items():
            boots[name].append(value)
    counts: dict[str, int] = {}
    for a, b, _ in comparisons:
        counts[a] = counts.get(a, 0) + 1
        counts[b] = counts.get(b, 0) + 1
    out = {}
    for name in sorted(point, key=point.get, reverse=True):
        values = boots[name]
        ci = [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))] if values else None
        out[name] = {"rating": point[name], "ci95": ci, "n": counts.get(name, 0)}
    return out


def _spec(results: dict[str, Any], role: str) -> str | None:
    info = (results.get("models") or {}).get(role) or {}
    return info.get("spec") if isinstance(info, dict) else None


def judge_comparisons(results: dict[str, Any], records: list[dict[str, Any]]) -> list[Comparison]:
    """Model-vs-base judge verdicts of one run (alpaca_eval: preference 2 = output_2 = the model)."""
    model, base = _spec(results, "model") or "model", _spec(results, "base")
    if base is None:
        return []
    out = []
    for rec in records:
        verdict = ((rec.get("judge") or {}).get("model_vs_base") or {}) if isinstance(rec.get("judge"), dict) else {}
        pref = verdict.get("preference") if isinstance(verdict, dict) else None
        if isinstance(pref, (int, float)) and math.isfinite(pref):
            out.append((model, base, 1.0 if pref > 1.5 else 0.0 if pref < 1.5 else 0.5))
    return out


def human_comparisons(run_dir: Path, results: dict[str, Any]) -> list[Comparison]:
    """A person's votes in ``run_dir/reviews.jsonl`` (skips left out)."""
    from ..review.votes import VoteLog

    path = run_dir / "reviews.jsonl"
    if not path.is_file():
        return []
    model, base = _spec(results, "model") or "model", _spec(results, "base") or "base"
    out = []
    for vote in VoteLog(path).votes.values():
        a, b = vote.get("label_a", "model"), vote.get("label_b", "base")
        a, b = (model if a == "model" else a), (base if b == "base" else b)
        score = {"a": 1.0, "b": 0.0, "tie": 0.5}.get(vote["choice"])
        if score is not None:
            out.append((a, b, score))
    return out


def judge_human_agreement(records: list[dict[str, Any]], votes: dict[str, str], bench: str) -> dict[str, Any] | None:
    """How often the judge picked the side the person picked, over items both decided (no ties)."""
    agree = total = 0
    for rec in records:
        vote = votes.get(f"{bench}/{rec.get('doc_id')}")
        verdict = ((rec.get("judge") or {}).get("model_vs_base") or {}) if isinstance(rec.get("judge"), dict) else {}
        pref = verdict.get("preference") if isinstance(verdict, dict) else None
        if vote not in ("a", "b") or not isinstance(pref, (int, float)) or pref == 1.5:
            continue
        total += 1
        agree += (pref > 1.5) == (vote == "a")
    return {"agree": agree, "n": total, "rate": agree / total} if total else None
