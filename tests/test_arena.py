"""Bradley-Terry ratings (Chatbot Arena's ranking) and the judge-human agreement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report.arena import fit, judge_human_agreement, ratings


def test_two_systems_match_the_closed_form():
    comps = [("a", "b", 1.0)] * 7 + [("a", "b", 0.0)] * 3
    r = fit(comps, prior=0.0)
    assert r["a"] - r["b"] == pytest.approx(400 * math.log10(7 / 3), abs=1e-6)  # odds 7:3
    assert (r["a"] + r["b"]) / 2 == pytest.approx(1000)


def test_three_systems_satisfy_the_likelihood_equations():
    rng = np.random.default_rng(1)
    true = {"x": 1.0, "y": 2.0, "z": 4.0}
    comps = []
    for a, b in [("x", "y"), ("y", "z"), ("x", "z")] * 40:
        comps.append((a, b, float(rng.random() < true[a] / (true[a] + true[b]))))
    comps += [("x", "y", 0.5)] * 3
    r = fit(comps, prior=0.0)
    p = {k: 10 ** (v / 400) for k, v in r.items()}
    for name in p:  # at the MLE, each system's expected score equals its actual score
        actual = sum(s if a == name else 1 - s for a, b, s in comps if name in (a, b))
        expected = sum(p[name] / (p[name] + p[b if a == name else a]) for a, b, _ in comps if name in (a, b))
        assert expected == pytest.approx(actual, rel=1e-6)
    assert r["z"] > r["y"] > r["x"]


def test_ratings_have_bootstrap_intervals_and_stay_finite_when_unbeaten():
    out = ratings([("ft", "base", 1.0)] * 5 + [("ft2", "base", 0.5)] * 4, n_boot=50)
    assert list(out)[0] == "ft" and all(math.isfinite(v["rating"]) for v in out.values())
    lo, hi = out["ft"]["ci95"]
    assert lo <= out["ft"]["rating"] <= hi and out["base"]["n"] == 9


def test_judge_human_agreement_counts_items_both_decided():
    recs = [{"doc_id": str(i), "judge": {"model_vs_base": {"preference": pref}}}
            for i, pref in enumerate([2.0, 1.0, 1.9, 1.5, 1.2])]
    votes = {"b/0": "a", "b/1": "a", "b/2": "a", "b/3": "a", "b/4": "tie"}
    assert judge_human_agreement(recs, votes, "b") == {"agree": 2, "n": 3, "rate": pytest.approx(2 / 3)}
