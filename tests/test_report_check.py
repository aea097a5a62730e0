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


def _run_with(tmp_path: Path, edit) -> Path:
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    data = json.loads((run / "results.json").read_text())
    edit(data)
    (run / "results.json").write_text(json.dumps(data))
    return run


def test_zero_delta_is_neutral(tmp_path: Path) -> None:
    def zero(data: dict) -> None:
        sub = data["benchmarks"]["mmlu"]["subsets"]["anatomy"]["metrics"]["acc"]
        sub["delta"] = {**sub["delta"], "value": 0.0, "ci95": [-0.2, 0.2], "p_value": 1.0}
        top = data["benchmarks"]["squad"]["metrics"]["exact_match"]
        top["delta"] = {**top["delta"], "value": 0.0, "ci95": [-0.2, 0.2], "p_value": 1.0}
    run = _run_with(tmp_path, zero)
    render_report(run)
    tr = metric_rows(parse(run / "index.html"))[("squad", "exact_match")]
    delta = [td for td in tr.find_all("td") if "delta" in td.attrs.get("class", "")][0]
    assert "▲" not in delta.text() and "▼" not in delta.text() and "+0.0000" not in delta.text()
    assert "v-ns" in tr.attrs["class"]
    chart = parse(run / "report" / "bench-mmlu.html")
    texts = [t.text() for s in chart.find_all("svg") for t in s.find_all("text")]
    zero_labels = [t for t in texts if "0.0000" in t and "+" not in t and "-" not in t]
    assert zero_labels and all("▲" not in t and "▼" not in t for t in zero_labels)
    assert not any(t.endswith("+0.0000") or t.endswith("-0.0000") for t in texts)


def test_settings_show_per_benchmark_limits(tmp_path: Path) -> None:
    def limits(data: dict) -> None:
        data["config"]["limits"] = {"mmlu": 27, "squad": 10}
        data["benchmarks"]["mmlu"]["config"]["limit"] = 27
        data["benchmarks"]["squad"]["config"]["limit"] = 10
    run = _run_with(tmp_path, limits)
    render_report(run)
    doc = parse(run / "index.html")
    configured = doc.find_all("dd", id="limits")[0]
    assert {s.attrs["data-bench"]: s.text() for s in configured.find_all("span")} == {
        "mmlu": "mmlu: 27", "squad": "squad: 10"}
    used = doc.find_all("dd", id="limits-used")[0]
    got = {s.attrs["data-bench"]: s.attrs["data-limit"] for s in used.find_all("span")}
    assert got["mmlu"] == "27" and got["squad"] == "10" and got["humaneval"] == "all"


def test_no_absolute_machine_paths(tmp_path: Path) -> None:
    home = str(Path.home())

    def paths(data: dict) -> None:
        data["models"]["model"]["spec"] = str(tmp_path / "ckpt")
        data["models"]["model"]["path"] = str(tmp_path / "ckpt")
        data["models"]["base"]["spec"] = f"{home}/models/base"
        data["command"] = ["harness", "run", "--model", str(tmp_path / "ckpt"), "--out", str(tmp_path / "run")]
        data["config"]["cache"] = str(tmp_path / "run" / "cache.sqlite")
        data["benchmarks"]["triviaqa"]["error"] = f"FileNotFoundError: {tmp_path}/data missing"
    run = _run_with(tmp_path, paths)
    render_report(run)
    pages = [run / "index.html", run / "summary.md", *sorted((run / "report").rglob("*.html"))]
    for page in pages:
        text = page.read_text()
        assert str(tmp_path) not in text, page
        assert home + "/" not in text, page
    index = (run / "index.html").read_text()
    assert "../ckpt" in index and "~/models/base" in index and "--out ." in index
