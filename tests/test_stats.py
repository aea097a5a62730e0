"""harness.stats against values computed independently.

Reference numbers were produced once in a scratch environment with scipy 1.17
(``binomtest``, ``sem``) and statsmodels 0.15 (``mcnemar(exact=True)``,
``proportion_confint(method="wilson")``, ``multipletests(method="holm")``) and are
hard-coded here: neither library is a dependency of the harness.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness import stats

# (b, c) discordant counts -> exact two-sided McNemar p (scipy binomtest / statsmodels mcnemar)
MCNEMAR = [
    (10, 2, 0.03857421875),
    (3, 9, 0.14599609375),
    (0, 5, 0.0625),
    (7, 7, 1.0),
    (25, 12, 0.04703102743951604),
    (1500, 1380, 0.026576281110159666),
    (1600, 1500, 0.07537169707532781),  # n > 2000: log-space path
    (5000, 5200, 0.04878796312682234),
]


@pytest.mark.parametrize("b,c,expected", MCNEMAR)
def test_mcnemar_exact_p_matches_scipy(b: int, c: int, expected: float) -> None:
    assert stats.mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_by_hand_small_table() -> None:
    # b=4, c=1: 2 * (C(5,0) + C(5,1)) / 2^5 = 2 * 6 / 32
    assert stats.mcnemar_exact_p(4, 1) == pytest.approx(12 / 32)
    assert stats.mcnemar_exact_p(0, 0) == 1.0


def _pairs(n11: int, n10: int, n01: int, n00: int) -> tuple[list[float], list[float]]:
    model = [1.0] * n11 + [1.0] * n10 + [0.0] * n01 + [0.0] * n00
    base = [1.0] * n11 + [0.0] * n10 + [1.0] * n01 + [0.0] * n00
    return model, base


def test_paired_test_binary_uses_discordant_pairs_only() -> None:
    model, base = _pairs(30, 10, 2, 8)
    r = stats.paired_test(model, base, "binary")
    assert r["test"] == "mcnemar_exact"
    assert r["p_value"] == pytest.approx(0.03857421875, rel=1e-12)
    assert r["value"] == pytest.approx(8 / 50)
    lo, hi = r["ci95"]
    assert lo < 8 / 50 < hi
    # paired Wald interval for a difference of proportions, as a sanity band
    n = 50
    se = math.sqrt((10 + 2) / n - (8 / n) ** 2) / math.sqrt(n)
    assert lo == pytest.approx(8 / 50 - 1.96 * se, abs=0.03)
    assert hi == pytest.approx(8 / 50 + 1.96 * se, abs=0.03)
    # concordant pairs do not change the p-value
    assert stats.paired_test(*_pairs(300, 10, 2, 0), "binary")["p_value"] == r["p_value"]


def test_paired_test_binary_no_discordance() -> None:
    r = stats.paired_test(*_pairs(5, 0, 0, 5), "binary")
    assert r["p_value"] == 1.0 and r["value"] == 0.0 and r["ci95"] == [0.0, 0.0]


def test_paired_test_binary_rejects_non_binary() -> None:
    with pytest.raises(ValueError):
        stats.paired_test([0.5, 1.0], [0.0, 1.0], "binary")


def test_paired_test_continuous_detects_shift_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0.5, 0.2, size=200)
    model = base + 0.1 + rng.normal(0, 0.05, size=200)
    r1 = stats.paired_test(model, base, "continuous", seed=3, n_boot=2000)
    r2 = stats.paired_test(model, base, "continuous", seed=3, n_boot=2000)
    assert r1 == r2
    assert r1["test"] == "paired_bootstrap"
    assert r1["p_value"] == pytest.approx(1 / 2001)  # nothing as extreme under the null
    d = model - base
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert r1["ci95"][0] == pytest.approx(d.mean() - 1.96 * se, abs=0.3 * se)
    assert r1["ci95"][1] == pytest.approx(d.mean() + 1.96 * se, abs=0.3 * se)
    r3 = stats.paired_test(model, base, "continuous", seed=4, n_boot=2000)
    assert r3["ci95"] != r1["ci95"]


def test_paired_test_continuous_null_is_not_significant() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(0, 1, size=400)
    model = base + rng.normal(0, 1, size=400)
    model = model - (model - base).mean()  # exact zero mean difference
    r = stats.paired_test(model, base, "continuous", n_boot=1000)
    assert r["p_value"] > 0.9
    assert r["ci95"][0] < 0 < r["ci95"][1]
    # a p-value near the normal approximation for a moderate effect
    model2 = model + 0.1
    r2 = stats.paired_test(model2, base, "continuous", n_boot=4000)
    d = model2 - base
    z = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    normal_p = math.erfc(abs(z) / math.sqrt(2))
    assert r2["p_value"] == pytest.approx(normal_p, abs=0.03)


def test_paired_test_input_errors() -> None:
    with pytest.raises(ValueError):
        stats.paired_test([1.0], [1.0, 0.0], "binary")
    with pytest.raises(ValueError):
        stats.paired_test([1.0], [1.0], "ordinal")
    with pytest.raises(ValueError):
        stats.paired_test([], [], "continuous")


def test_mean_stderr_matches_scipy_sem() -> None:
    mean, se = stats.mean_stderr([0.2, 0.5, 0.9, 0.4, 0.7])
    assert mean == pytest.approx(0.54)
    assert se == pytest.approx(0.1208304597359457, rel=1e-12)
    assert stats.mean_stderr([3.0]) == (3.0, 0.0)
    with pytest.raises(ValueError):
        stats.mean_stderr([])


@pytest.mark.parametrize("k,n,lo,hi", [
    (7, 20, 0.18119182410108203, 0.5671457233147638),
    (0, 10, 0.0, 0.27753279986288926),
    (10, 10, 0.7224672001371106, 1.0),
    (1, 1, 0.2065493143772374, 1.0),
    (45, 100, 0.35614537979511973, 0.5475539700255787),
])
def test_ci95_binary_is_wilson(k: int, n: int, lo: float, hi: float) -> None:
    got = stats.ci95([1.0] * k + [0.0] * (n - k), "binary")
    assert got[0] == pytest.approx(lo, abs=1e-12)
    assert got[1] == pytest.approx(hi, abs=1e-12)


def test_ci95_continuous_is_normal() -> None:
    lo, hi = stats.ci95([0.2, 0.5, 0.9, 0.4, 0.7], "continuous")
    assert lo == pytest.approx(0.54 - 1.959963984540054 * 0.1208304597359457)
    assert hi == pytest.approx(0.54 + 1.959963984540054 * 0.1208304597359457)


def test_holm_matches_statsmodels() -> None:
    got = stats.holm([0.01, 0.04, 0.03, 0.005, 0.5])
    assert got == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])


def test_holm_caps_at_one_and_skips_none() -> None:
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    got = stats.holm([0.01, None, 0.02])
    assert got[1] is None
    assert got[0] == pytest.approx(0.02) and got[2] == pytest.approx(0.02)
    assert stats.holm([]) == []
