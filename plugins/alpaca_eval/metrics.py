"""AlpacaEval's head-to-head numbers and a locally fitted length-controlled win rate.

``head2head`` reproduces alpaca_eval's ``get_winrate`` (``metrics/helpers.py``):
win_rate = 100·mean(p − 1), standard_error = 100·sem (ddof=1), wins/losses/draws around
0.5, and discrete_win_rate where each preference is rounded to a win/loss and an exact
1.5 is a draw. With the shipped annotations of alpaca-7b it gives the leaderboard's
2.5914505, 0.4870855 and 2.2981366 (see tests).

``length_controlled_local``: upstream's length-controlled win rate fits the GLM
``tanh(std_delta_len) + instruction_difficulty + not_gamed_baseline − 1`` (soft-label
logistic regression) and predicts at zero length difference. The instruction
difficulties and the "gamed" verbose/concise baselines it regularises towards are
downloaded at run time, so they are not available here. The local variant keeps the
length term and the intercept (``not_gamed_baseline``) and fits them on this run's
judgements only, with an L2 penalty at C=100 (upstream's ``LogisticRegression`` default
C) so that all-win or all-loss runs still give a finite answer. Its numbers are not the
leaderboard's ``length_controlled_winrate`` and are named differently on purpose.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

LC_NAME = "length_controlled_winrate_local"
LC_NOTE = ("local GLM tanh(std_delta_len) + intercept fitted on this run's judgements only; "
           "no instruction-difficulty term and no gamed-baseline regularisation (upstream downloads both), "
           "so not comparable with the AlpacaEval leaderboard's length_controlled_winrate")


def valid_preferences(prefs: Sequence[float | None]) -> list[float]:
    """Preferences in [1, 2] (alpaca_eval's ``validate_alpacaeval_preference``); 0 means a draw upstream."""
    out = []
    for p in prefs:
        if p is None or (isinstance(p, float) and math.isnan(p)):
            continue
        p = 1.5 if p == 0 else float(p)
        if 1.0 <= p <= 2.0:
            out.append(p)
    return out


def head2head(prefs: Sequence[float | None]) -> dict[str, Any]:
    """alpaca_eval's weighted and discrete win rates of output_2 over output_1 (percent)."""
    valid = valid_preferences(prefs)
    n_invalid = len(prefs) - len(valid)
    if not valid:
        return {"win_rate": None, "standard_error": None, "n_wins": 0, "n_wins_base": 0, "n_draws": 0,
                "n_total": 0, "discrete_win_rate": None, "n_unparseable": n_invalid}
    x = np.asarray(valid) - 1.0
    n = x.size
    se = float(x.std(ddof=1) / math.sqrt(n) * 100) if n > 1 else None
    # ZeroOneScoringRule: exact 1.5 -> draw; otherwise round to the nearer of 1 and 2.
    discrete = np.where(x == 0.5, 0.5, np.round(x))
    return {
        "win_rate": float(x.mean() * 100), "standard_error": se,
        "n_wins": int((x > 0.5).sum()), "n_wins_base": int((x < 0.5).sum()), "n_draws": int((x == 0.5).sum()),
        "n_total": int(n), "discrete_win_rate": float(discrete.mean() * 100), "n_unparseable": n_invalid,
    }


def fit_soft_logistic(X: np.ndarray, y: np.ndarray, C: float = 100.0, tol: float = 1e-12,
                      max_iter: int = 100) -> np.ndarray:
    """Minimise ``C·Σ logloss(y_i, σ(x_i·w)) + ½‖w‖²`` with soft labels y ∈ [0, 1] (Newton's method).

    The same objective as upstream's duplicated-rows trick (each row once with label 1
    weighted y, once with label 0 weighted 1 − y) in scikit-learn; convex, so Newton
    with step halving converges in a handful of iterations for these 2–3 features.
    """
    w = np.zeros(X.shape[1])

    def objective(v: np.ndarray) -> float:
        z = X @ v
        return float(C * np.sum(np.logaddexp(0, z) - y * z) + 0.5 * v @ v)

    current = objective(w)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(X @ w)))
        grad = C * X.T @ (p - y) + w
        hess = C * (X.T * (p * (1 - p))) @ X + np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-8:
            candidate = w - scale * step
            value = objective(candidate)
            if value <= current + 1e-15:
                break
            scale /= 2
        w, current = candidate, value
        if np.max(np.abs(scale * step)) < tol:
            break
    return w


def length_controlled_local(prefs: Sequence[float | None], len_1: Sequence[int], len_2: Sequence[int],
                            C: float = 100.0) -> dict[str, Any]:
    """Win rate predicted at zero length difference by the local GLM (see module docstring).

    ``len_1``/``len_2``: character lengths of output_1 (baseline) and output_2, as upstream's
    ``std_delta_len = (len_1 − len_2) / std``. Pairs with an invalid preference are left out.
    """
    rows = [(p, a, b) for p, a, b in zip(prefs, len_1, len_2) if valid_preferences([p])]
    if len(rows) < 2:
        return {"value": None, "weights": None, "note": LC_NOTE}
    y = np.array([1.5 if p == 0 else p for p, _, _ in rows], dtype=float) - 1.0
    delta = np.array([a - b for _, a, b in rows], dtype=float)
    sd = delta.std(ddof=1)
    z = np.tanh(delta / sd) if sd > 0 else np.zeros_like(delta)
    X = np.column_stack([z, np.ones_like(z)])
    w = fit_soft_logistic(X, y, C=C)
    value = 100.0 / (1.0 + math.exp(-w[1]))  # predicted preference at std_delta_len = 0
    return {"value": value, "weights": {"np.tanh(std_delta_len)": float(w[0]),
                                        "not_gamed_baseline.astype(float)": float(w[1])}, "note": LC_NOTE}


def summarise(prefs: Sequence[float | None], len_1: Sequence[int], len_2: Sequence[int]) -> dict[str, Any]:
    """Everything a comparison reports: head-to-head, the local LC win rate, average lengths."""
    out = head2head(prefs)
    lc = length_controlled_local(prefs, len_1, len_2)
    out[LC_NAME] = lc["value"]
    out[f"{LC_NAME}_weights"] = lc["weights"]
    out[f"{LC_NAME}_note"] = lc["note"]
    out["avg_length"] = float(np.mean(len_2)) if len(len_2) else None
    out["avg_length_baseline"] = float(np.mean(len_1)) if len(len_1) else None
    return out


def sign_test(n_wins: int, n_losses: int, n_draws: int = 0) -> dict[str, Any]:
    """The head-to-head against 50 % that harness.stats.win_rate_test gives a run (fractions):
    win rate with draws counting half and its Wilson interval, and the two-sided exact sign test
    on wins vs losses, ``2·Σ_{i≤min} C(n, i) / 2^n`` (draws left out). Here because a plug-in
    imports only harness.api; tests check both give the same numbers."""
    n = n_wins + n_losses + n_draws
    if n == 0:
        return {"value": None, "ci95": None, "n": 0, "p_value": None, "test": "sign_exact"}
    decided, k = n_wins + n_losses, min(n_wins, n_losses)
    p = 1.0 if decided == 0 else min(1.0, 2 * sum(math.comb(decided, i) for i in range(k + 1)) / 2 ** decided)
    rate, z = (n_wins + 0.5 * n_draws) / n, 1.959963984540054
    denom = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(rate * (1 - rate) / n + z * z / (4 * n * n), 0.0))
    return {"value": rate, "ci95": [max(0.0, centre - half), min(1.0, centre + half)], "n": n,
            "p_value": p, "test": "sign_exact"}


def comparison_summary(verdicts: Sequence[dict[str, Any]], firsts: Sequence[str], seconds: Sequence[str],
                       subsets: Sequence[str]) -> dict[str, Any]:
    """alpaca_eval's numbers for one head-to-head (output_1 = firsts, the baseline), per subset
    too, and how many judgements failed (no usable preference: never counted as a loss)."""
    prefs = [v["preference"] for v in verdicts]
    summary = summarise(prefs, [len(a) for a in firsts], [len(b) for b in seconds])
    by_subset: dict[str, list] = {}
    for subset, p in zip(subsets, prefs):
        by_subset.setdefault(subset, []).append(p)
    summary["by_subset"] = {s: head2head(ps) for s, ps in sorted(by_subset.items())}
    summary["judge_failed"] = sum(p is None for p in prefs)
    return summary
