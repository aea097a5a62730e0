"""Per-benchmark pages, fine-tuning page, summary.md/results.csv, no-base runs, compare_runs."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report import compare_runs, render_report
from harness.report.samples import json_for_html

sys.path.insert(0, str(Path(__file__).parent))  # the HTML helpers live in test_report.py (any import mode)
from test_report import FIXTURE, metric_rows, parse, records  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pages")
    render_report(FIXTURE, out)
    return out


def _copy(tmp_path: Path, name: str = "run") -> Path:
    dst = tmp_path / name
    shutil.copytree(FIXTURE, dst)
    return dst


def test_mmlu_delta_chart_sorted_best_first(report: Path) -> None:
    doc = parse(report / "report" / "bench-mmlu.html")
    charts = [s for s in doc.find_all("svg") if "per subject" in s.find_all("title")[0].text()]
    labels = [t.text() for t in charts[0].find_all("text") if "text-anchor: end" in t.attrs.get("style", "")]
    # deltas from results.json subsets: history +0.5, algebra +4/9, anatomy +0.25
    assert labels == ["high_school_us_history", "abstract_algebra", "anatomy"]
    results = json.loads((FIXTURE / "results.json").read_text())
    subs = results["benchmarks"]["mmlu"]["subsets"]
    values = [t.text() for t in charts[0].find_all("text") if t.text().startswith("▲ ")]
    assert values == [f"▲ {subs[s]['metrics']['acc']['delta']['value']:+.4f}" for s in labels]
    groups = [tr.attrs["data-name"] for tr in doc.find_all("tr") if tr.attrs.get("data-name")]
    assert {"stem", "humanities", "anatomy"} <= set(groups)


def test_squad_split_and_distribution(report: Path) -> None:
    doc = parse(report / "report" / "bench-squad.html")
    split = doc.find_all("table", **{"class": "split"})[0]
    recs = records(FIXTURE, "squad")
    no = [r for r in recs if not r["target"]]
    has = [r for r in recs if r["target"]]
    f1 = [tr for tr in split.find_all("tr") if tr.find_all("td") and tr.find_all("td")[0].text() == "f1"][0]
    got = [float(td.attrs["data-value"]) for td in f1.find_all("td") if "data-value" in td.attrs]
    mean = lambda rs, role: sum(r[role]["scores"]["f1"] for r in rs) / len(rs)  # noqa: E731
    assert got == pytest.approx([mean(has, "base"), mean(has, "model"), mean(no, "base"), mean(no, "model")])
    assert any("distribution" in t.text() for t in doc.find_all("title"))


def test_humaneval_passes_and_flips(report: Path) -> None:
    doc = parse(report / "report" / "bench-humaneval.html")
    rows = {tr.find_all("td")[0].text(): [td.text() for td in tr.find_all("td")]
            for tr in doc.find_all("table", **{"class": "problems"})[0].find_all("tr") if tr.find_all("td")}
    assert rows["HumanEval/0"][1:3] == ["4/5", "5/5"]
    assert rows["HumanEval/3"][-1] == "▼ regressed"
    assert rows["HumanEval/4"][-1] == "▲ improved"
    assert "3 improved" in doc.text() and "1 regressed" in doc.text()


def test_judge_win_rates_and_every_verdict(report: Path) -> None:
    doc = parse(report / "report" / "bench-alpaca_eval.html")
    head = [d for d in doc.find_all("div") if d.attrs.get("data-comparison") == "model_vs_base"][0]
    spans = {s.attrs["data-key"]: s.text() for s in head.find_all("span") if "data-key" in s.attrs}
    # win rate = 100 * mean(preference - 1) over [2, 1.8, 1, 2, 1.5] = 66.0; se from results.json
    assert spans == {"win_rate": "66.0 % ± 18.9", "lc": "61.2 %"}
    assert "3 wins" in head.text() and "1 losses" in head.text() and "1 draws" in head.text()
    verdicts = doc.find_all("table", **{"class": "verdicts"})[0].find_all("tr")[1:]
    winners = [tr.find_all("td")[1].text() for tr in verdicts]
    assert winners == ["▲ model", "▲ model", "▼ base", "▲ model", "= tie"]
    assert verdicts[1].find_all("pre")[0].text() == "preference 1.8 · M <img src=x onerror=alert(2)>"
    summary = parse(report / "index.html").find_all("p", **{"data-bench": "alpaca_eval"})
    assert "66.0 %" in summary[0].text() and "61.2 %" in summary[0].text()
    page = parse(report / "report" / "samples" / "alpaca_eval" / "page-1.html")
    buttons = {b.attrs["data-filter"]: b.text() for b in page.find_all("button") if "data-filter" in b.attrs}
    assert buttons == {"all": "all (5)", "I": "▲ judge prefers model (3)", "R": "▼ judge prefers base (1)",
                       "T": "tie (1)"}


def test_judge_against_reference_and_score_mode(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    path = run / "samples" / "alpaca_eval.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    for r in recs:
        r["judge"] = {"model_vs_reference": r["judge"]["model_vs_base"],
                      "base_vs_reference": {"preference": None, "raw": {"text": "??"}}}
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    render_report(run)
    page = parse(run / "report" / "samples" / "alpaca_eval" / "page-1.html")
    buttons = {b.attrs["data-filter"]: b.text() for b in page.find_all("button") if "data-filter" in b.attrs}
    assert buttons["R"] == "▼ judge prefers reference (1)"
    statuses = [tr.attrs["data-status"] for tr in page.find_all("tr") if "data-status" in tr.attrs]
    assert statuses == ["I", "I", "R", "I", "T"]


def test_judge_score_mode(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["benchmarks"]["alpaca_eval"]["pairwise"] = {"mode": "score", "score": {
        "model": {"mean": 71.5, "n": 5, "n_scored": 4, "n_unparseable": 1},
        "base": {"mean": 40.0, "n": 5, "n_scored": 5, "n_unparseable": 0}}, "judge": {"spec": "j"}}
    (run / "results.json").write_text(json.dumps(data))
    path = run / "samples" / "alpaca_eval.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    for k, r in enumerate(recs):
        del r["judge"]
        r["model"]["judge"] = {"score": None if k == 0 else 70 + k, "raw": "<i>x</i>"}
        r["base"]["judge"] = {"score": 40, "raw": "40"}
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    render_report(run)
    means = [s.text() for p in parse(run / "index.html").find_all("p", **{"data-bench": "alpaca_eval"})
             for s in p.find_all("span") if s.attrs.get("data-key") == "mean"]
    assert means == ["71.50", "40.00"]
    doc = parse(run / "report" / "bench-alpaca_eval.html")
    table = doc.find_all("table", **{"class": "verdicts"})[0]
    texts = [tr.find_all("pre")[0].text() for tr in table.find_all("tr")[1:]]
    assert texts[0] == "model: score unparseable <i>x</i> / base: score 40 40"
    assert texts[1].startswith("model: score 71 ")


def test_finetune_page(report: Path) -> None:
    doc = parse(report / "report" / "finetune.html")
    hyper = {dt.text(): dd.text() for dt, dd in zip(doc.find_all("dl", id="hyper")[0].find_all("dt"),
                                                  doc.find_all("dl", id="hyper")[0].find_all("dd"))}
    assert hyper["lr"] == "0.0002" and hyper["lora.r"] == "8"
    svg = doc.find_all("svg")[0]
    lines = [g for g in svg.find_all("g") if g.attrs.get("id", "").endswith(("-series-0", "-series-1"))]
    assert len(lines) == 2 and all(g.find_all("path") for g in lines)
    texts = [t.text() for t in svg.find_all("text")]
    assert any("@ 40" in t for t in texts)
    assert "epoch 1" in texts and "end of epoch" in texts  # the fixture's epoch 1 ends at step 40
    assert any(p.text() == "<script>alert(3)</script>" for p in doc.find_all("pre"))
    assert "finetune.html" in (report / "index.html").read_text()


def test_finetune_from_metrics_file_only(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["models"]["model"]["extra"] = {}
    (run / "results.json").write_text(json.dumps(data))
    (run / "checkpoint" / "train_config.json").write_text("{oops")
    render_report(run)
    doc = parse(run / "report" / "finetune.html")
    assert any("lowest val loss" in t.text() for t in doc.find_all("text"))  # min val_loss, step 80
    assert "train_config.json" in doc.find_all("section", **{"class": "errors"})[0].text()


def test_no_finetune_page_without_signs(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["models"]["model"].update(extra={}, path="")
    (run / "results.json").write_text(json.dumps(data))
    render_report(run)
    assert not (run / "report" / "finetune.html").exists()
    assert "finetune.html" not in (run / "index.html").read_text()


def test_summary_md_and_csv(report: Path) -> None:
    results = json.loads((FIXTURE / "results.json").read_text())
    md = (report / "summary.md").read_text()
    acc = results["benchmarks"]["mmlu"]["metrics"]["acc"]
    assert f"| mmlu | acc | 27 | {acc['base']['value']:.4f} | {acc['model']['value']:.4f} | ▲ " in md
    assert "triviaqa" in md and "Holm" in md
    rows = list(csv.DictReader(io.StringIO((report / "results.csv").read_text())))
    overall = {(r["benchmark"], r["metric"]): r for r in rows if r["scope"] == "overall"}
    assert float(overall[("mmlu", "acc")]["p_value"]) == acc["delta"]["p_value"]
    assert float(overall[("mmlu", "acc")]["delta_lo"]) == acc["delta"]["ci95"][0]
    subset = [r for r in rows if r["scope"] == "subset" and r["name"] == "anatomy"][0]
    assert float(subset["model"]) == results["benchmarks"]["mmlu"]["subsets"]["anatomy"]["metrics"]["acc"][
        "model"]["value"]


def test_single_model_run(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    data = json.loads((run / "results.json").read_text())
    data["models"]["base"] = None
    for bench in data["benchmarks"].values():
        for scope in [bench] + list((bench.get("subsets") or {}).values()) + list((bench.get("groups") or {}).values()):
            for entry in scope["metrics"].values():
                entry.pop("base"), entry.pop("delta")
        bench.pop("pairwise", None)
    (run / "results.json").write_text(json.dumps(data))
    for path in (run / "samples").glob("*.jsonl"):
        recs = [json.loads(x) for x in path.read_text().splitlines()]
        for r in recs:
            r.pop("base"), r.pop("judge", None)
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    render_report(run)
    doc = parse(run / "index.html")
    assert "model − base" not in doc.text() and not doc.find_all("div", id="headline")
    tr = metric_rows(doc)[("mmlu", "acc")]
    assert [v for v in [float(td.attrs["data-value"]) for td in tr.find_all("td") if "data-value" in td.attrs]] == [
        data["benchmarks"]["mmlu"]["metrics"]["acc"]["model"]["value"]]
    page = parse(run / "report" / "samples" / "mmlu" / "page-1.html")
    assert {b.attrs["data-filter"] for b in page.find_all("button") if "data-filter" in b.attrs} == {"all", "C", "X"}
    assert "| benchmark | metric | n | score | 95% CI |" in (run / "summary.md").read_text()
    links = [a.attrs["href"] for a in doc.find_all("a") if "#filter=" in a.attrs.get("href", "")]
    assert "report/samples/mmlu/page-1.html#filter=C" in links and not any(h.endswith("=I") for h in links)


def test_tolerates_sparse_results(tmp_path: Path) -> None:
    """Plug-ins in progress may write less: absent keys must not break the report."""
    (tmp_path / "results.json").write_text(json.dumps({"benchmarks": {
        "x": {"metrics": {"m": {"model": {"value": None}}}, "pairwise": {"win_rate": {"value": 0.5}}},
        "y": {}}, "models": {"model": {}}}))
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "x.jsonl").write_text(json.dumps({"doc_id": 1, "model": {"answer": 3}}) + "\n")
    render_report(tmp_path)
    assert (tmp_path / "report" / "samples" / "x" / "page-1.html").is_file()


def test_json_for_html_round_trips() -> None:
    value = {"a": "</script><!-- & \u2028 >", "b": [1.5, None]}
    text = json_for_html(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


def _variant(tmp_path: Path, name: str, scale: float) -> Path:
    run = _copy(tmp_path, name)
    data = json.loads((run / "results.json").read_text())
    for bench in data["benchmarks"].values():
        for entry in bench["metrics"].values():
            entry["model"]["value"] *= scale
    data["models"]["model"]["fingerprint"] = name * 8
    (run / "results.json").write_text(json.dumps(data))
    render_report(run)
    return run


def test_compare_three_runs(tmp_path: Path) -> None:
    runs = [_variant(tmp_path, n, s) for n, s in (("r_low", 0.5), ("r_high", 1.2), ("r_mid", 1.0))]
    index = compare_runs(runs, tmp_path / "cmp")
    doc = parse(index)
    board = [tr for tr in doc.find_all("tr") if "data-label" in tr.attrs]
    labels = [tr.attrs["data-label"] for tr in board]
    # all fixture metrics but alpaca length are higher-is-better, so scaling orders the runs;
    # the three runs share one base fingerprint: listed once
    assert [tr.attrs["data-label"] for tr in board if tr.attrs["class"] == "role-model"] == [
        "r_high", "r_mid", "r_low"]
    assert [tr.attrs["data-label"] for tr in board if tr.attrs["class"] == "role-base"] == ["smollm2-135m (base)"]
    assert len(board) == 4 and labels[0] == "r_high"
    assert len(doc.find_all("svg")) == 6  # one chart per benchmark metric, and the judged win rate
    heads = [th.text() for th in doc.find_all("th")]
    assert any("win rate vs base" in h for h in heads)
    # each run's own verdict counts its 5 metric deltas and the judged win rate (3-1-1: 0.7, p 0.625)
    verdicts = [span.text() for span in doc.find_all("span") if "verdict" in span.attrs.get("class", "")]
    assert len(verdicts) == 3 and all("of 6 comparisons" in v for v in verdicts)
    links = [a.attrs["href"] for a in doc.find_all("a") if a.attrs.get("href", "").endswith("index.html")]
    assert "../r_low/index.html" in links


def test_compare_runs_bad_run(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("nope")
    with pytest.raises(HarnessError, match="bad/results.json"):
        compare_runs([FIXTURE, tmp_path / "bad"], tmp_path / "cmp")


def test_large_run_is_paginated(tmp_path: Path) -> None:
    """5,000 samples: 50 pages, none large (speed belongs in bench/, not in a wall-clock assert)."""
    run = _copy(tmp_path)
    recs = records(FIXTURE, "squad")
    big = [dict(recs[i % len(recs)], doc_id=f"q{i}") for i in range(5000)]
    (run / "samples" / "squad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in big))
    render_report(run)
    pages = list((run / "report" / "samples" / "squad").glob("page-*.html"))
    assert len(pages) == 50
    assert max(p.stat().st_size for p in pages) < 400_000
