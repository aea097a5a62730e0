"""Issue 11, "a report a person can check": power beside each delta, neutral zeros,
per-benchmark limits, no machine paths, the sample browser's choices and diffs, the
leaderboard's Bradley-Terry tables, the human verdict and the fine-tune page."""
from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

import pytest

from harness.report import render_report

sys.path.insert(0, str(Path(__file__).parent))  # the HTML helpers live in test_report.py (any import mode)
from test_report import FIXTURE, metric_rows, parse, records  # noqa: E402

Z = statistics.NormalDist().inv_cdf(0.975) + statistics.NormalDist().inv_cdf(0.8)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("check")
    render_report(FIXTURE, out)
    return out


def _mde_cell(tr) -> float:
    spans = [s for s in tr.find_all("span") if "mde" in s.attrs.get("class", "").split()]
    assert spans, "no detectable-difference beside the delta"
    return float(spans[0].attrs["data-value"])


def test_mde_binary_from_discordance_rate(report: Path) -> None:
    recs = records(FIXTURE, "mmlu")
    n = len(recs)
    k = sum(r["model"]["scores"]["acc"] != r["base"]["scores"]["acc"] for r in recs)
    want = Z * math.sqrt(k / n) / math.sqrt(n)
    rows = metric_rows(parse(report / "index.html"))
    assert _mde_cell(rows[("mmlu", "acc")]) == pytest.approx(want, rel=1e-9)
    assert f"±{want:.3f}" in (report / "summary.md").read_text()


def test_mde_continuous_from_paired_sd(report: Path) -> None:
    recs = records(FIXTURE, "squad")
    d = [r["model"]["scores"]["f1"] - r["base"]["scores"]["f1"] for r in recs]
    want = Z * statistics.stdev(d) / math.sqrt(len(d))
    rows = metric_rows(parse(report / "index.html"))
    assert _mde_cell(rows[("squad", "f1")]) == pytest.approx(want, rel=1e-9)


def test_no_evidence_wording_everywhere(report: Path) -> None:
    index = (report / "index.html").read_text()
    summary = (report / "summary.md").read_text()
    bench = (report / "report" / "bench-squad.html").read_text()
    for text in (index, summary, bench):
        assert "not significant" not in text
        assert "no evidence of a difference at this n" in text
    head = parse(report / "index.html").find_all("div", id="headline")[0].text()
    assert "no evidence of a difference at this n on 4 of 6" in head
