"""Standard errors, 95 % intervals, paired significance tests and Holm adjustment.

Why here and not scipy: the harness must compare a fine-tuned model with its base on
every run, and these few formulas do not justify a heavy dependency. Everything is
pure Python + numpy, deterministic for a given seed, and cheap enough for tens of
thousands of samples (bootstrap resampling is chunked to bound memory).

Conventions follow lm-eval where it has one (``mean_stderr`` uses the sample standard
deviation, ddof=1). Binary metrics (0/1 per sample) get exact or score-based methods
because normal approximations misbehave near 0 and 1 on small benchmarks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
KINDS = ("binary", "continuous")
_CHUNK_ELEMENTS = 4_000_000  # bootstrap indices held in memory at once (~32 MB of int64)
_EXACT_BINOM_MAX_N = 2000  # above this the McNemar tail is summed in log space


def _as_array(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise ValueError("expected a flat sequence of numbers")
    return arr


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown metric kind {kind!r}; expected one of {KINDS}")


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std with ddof=1 over sqrt(n)).

    Matches lm-eval's ``mean_stderr`` so numbers agree with that tool; the standard
    error is 0.0 when fewer than two values exist (it is undefined, not infinite).
    Raises ValueError for an empty sequence: a mean of nothing is a caller bug.
    """
    arr = _as_array(values)
    n = arr.size
    if n == 0:
        raise ValueError("mean_stderr of an empty sequence")
    mean = float(arr.mean())
    if n < 2:
        return mean, 0.0
    return mean, float(arr.std(ddof=1) / math.sqrt(n))


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion: stays inside [0, 1] and is sane at 0 % / 100 %."""
    if n <= 0:
        raise ValueError("wilson interval needs n > 0")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


def ci95(values: Sequence[float], kind: str) -> tuple[float, float]:
    """95 % interval for the mean: Wilson for ``binary`` (0/1), mean ± 1.96·se for ``continuous``."""
    _check_kind(kind)
    arr = _as_array(values)
    if arr.size == 0:
        raise ValueError("ci95 of an empty sequence")
    if kind == "binary":
        return wilson(float(arr.sum()), int(arr.size))
    mean, se = mean_stderr(arr)
    return mean - Z95 * se, mean + Z95 * se


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: 2·P(X ≤ min(b, c)), X ~ Bin(b + c, 1/2), capped at 1.

    Exact integer arithmetic for small tables (the common case); a log-space sum of
    the binomial tail for large ones, where big-integer sums would get slow.
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    if n <= _EXACT_BINOM_MAX_N:
        tail = sum(math.comb(n, i) for i in range(k + 1))
        return min(1.0, 2 * tail / 2**n)
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(log_terms)
    log_tail = top + math.log(math.fsum(math.exp(t - top) for t in log_terms)) - n * math.log(2)
    return min(1.0, 2 * math.exp(log_tail))


def _bootstrap_means(diff: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of ``diff``, in bounded-memory chunks."""
    n = diff.size
    out = np.empty(n_boot)
    per_chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_boot, per_chunk):
        stop = min(n_boot, start + per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = diff[idx].mean(axis=1)
    return out


def _binary_bootstrap_means(model: np.ndarray, base: np.ndarray, n_boot: int,
                            rng: np.random.Generator) -> np.ndarray:
    """Paired bootstrap of a difference of proportions, done on the 2×2 table.

    Resampling n pairs with replacement is the same as drawing the four cell counts
    from a multinomial, so this is exact and O(n_boot) instead of O(n_boot·n).
    """
    n = model.size
    b = int(np.sum((model == 1) & (base == 0)))
    c = int(np.sum((model == 0) & (base == 1)))
    probs = np.array([b, c, n - b - c], dtype=float) / n
    counts = rng.multinomial(n, probs, size=n_boot)
    return (counts[:, 0] - counts[:, 1]) / n


def paired_test(model: Sequence[float], base: Sequence[float], kind: str,
                seed: int = 0, n_boot: int = 10000) -> dict:
    """Compare per-sample scores of the model and its base on the same samples.

    Returns ``{"value", "ci95", "p_value", "test", "ci_method"}`` where value is
    mean(model − base). ``binary``: McNemar's exact test on the discordant pairs
    (``"mcnemar_exact"``); ``continuous``: paired bootstrap with the shifted-to-null
    two-sided p-value (1 + #{|d*−d̄| ≥ |d̄|}) / (n_boot + 1) (``"paired_bootstrap"``).
    The interval is always the percentile interval of a paired bootstrap of the mean
    difference (``ci_method`` = ``"paired_bootstrap_percentile"``), seeded, so the same
    inputs always give the same numbers.
    """
    _check_kind(kind)
    m, b = _as_array(model), _as_array(base)
    if m.size != b.size:
        raise ValueError(f"paired_test needs equal lengths, got {m.size} and {b.size}")
    if m.size == 0:
        raise ValueError("paired_test of empty sequences")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    diff = m - b
    value = float(diff.mean())
    rng = np.random.default_rng(seed)
    if kind == "binary":
        if not (np.isin(m, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
            raise ValueError("binary paired_test needs 0/1 scores")
        boot = _binary_bootstrap_means(m, b, n_boot, rng)
        n10 = int(np.sum((m == 1) & (b == 0)))
        n01 = int(np.sum((m == 0) & (b == 1)))
        p_value, test = mcnemar_exact_p(n10, n01), "mcnemar_exact"
    else:
        boot = _bootstrap_means(diff, n_boot, rng)
        extreme = int(np.sum(np.abs(boot - value) >= abs(value) - 1e-12))
        p_value, test = min(1.0, (1 + extreme) / (n_boot + 1)), "paired_bootstrap"
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"value": value, "ci95": [float(lo), float(hi)], "p_value": float(p_value),
            "test": test, "ci_method": "paired_bootstrap_percentile"}


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni step-down adjusted p-values, in the input order.

    Controls the family-wise error rate when a report shows many comparisons at once
    (every benchmark × metric) without Bonferroni's loss of power. ``None`` entries
    (comparisons that could not be made) pass through and do not count towards m.
    """
    idx = [i for i, p in enumerate(p_values) if p is not None]
    out: list[float | None] = [None] * len(p_values)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p_values[j])):
        adj = min(1.0, (m - rank) * float(p_values[i]))
        running = max(running, adj)
        out[i] = running
    return out


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign (binomial) test of wins vs losses against 50 %; draws are left out.

    ``2·P(X ≤ min(w, l))``, X ~ Bin(w + l, 1/2), capped at 1: the same tail as McNemar's
    exact test, because a head-to-head is a paired comparison whose discordant pairs are
    the decided ones.
    """
    return mcnemar_exact_p(int(wins), int(losses))


def win_rate_test(wins: int, losses: int, draws: int = 0) -> dict:
    """A head-to-head against 50 %: win rate (a draw counts half, as alpaca_eval's
    ``discrete_win_rate``) with its Wilson interval, and the exact sign test.

    Why the sign test and not alpaca_eval's standard error: that error is computed from the
    judge's own weighted preferences, so a judge that answers ~1.27 whatever it reads has a
    tiny error and every run would look significant; the sign test counts decisions only
    and is exact at the 20 instructions of a default run. Returns fractions (0–1):
    ``{"value", "ci95", "delta": {"value", "ci95", "p_value", "test"}, "n", wins, losses, draws}``.
    """
    n = int(wins) + int(losses) + int(draws)
    if n <= 0:
        return {"value": None, "ci95": None, "n": 0, "wins": 0, "losses": 0, "draws": 0, "delta": None}
    rate = (wins + 0.5 * draws) / n
    lo, hi = wilson(wins + 0.5 * draws, n)
    return {"value": rate, "ci95": [lo, hi], "n": n, "wins": int(wins), "losses": int(losses),
            "draws": int(draws),
            "delta": {"value": rate - 0.5, "ci95": [lo - 0.5, hi - 0.5], "p_value": sign_test_p(wins, losses),
                      "test": "sign_exact", "ci_method": "wilson"}}
