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


def _edit_samples(run: Path, bench: str, edit) -> None:
    import json

    path = run / "samples" / f"{bench}.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines() if line]
    for k, rec in enumerate(recs):
        edit(k, rec)
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_mmlu_choices_probabilities_and_margin(tmp_path: Path) -> None:
    run = _run_with(tmp_path, lambda data: None)
    lls = {"model": [-1.0, -2.5, -0.5, -3.0], "base": [-2.0, -1.0, -1.5, -4.0]}

    def add(k: int, rec: dict) -> None:
        for role in ("model", "base"):
            rec[role]["loglikelihoods"] = lls[role]
    _edit_samples(run, "mmlu", add)
    render_report(run)
    doc = parse(run / "report" / "samples" / "mmlu" / "page-1.html")
    first = doc.find_all("tr", id="s-0")[0]
    table = first.find_all("table")[0]
    rows = {tr.attrs["data-choice"]: tr for tr in table.find_all("tr") if "data-choice" in tr.attrs}
    assert rows["B"].find_all("td")[0].text().startswith("B. two")
    for role, col in (("base", 1), ("model", 2)):
        z = sum(math.exp(x) for x in lls[role])
        want = [math.exp(x) / z for x in lls[role]]
        got = [float(rows[c].find_all("td")[col].attrs["data-value"]) for c in "ABCD"]
        assert got == pytest.approx(want, rel=1e-12)
    gold = "ABCD".index(records(FIXTURE, "mmlu")[0]["target"])
    assert "gold" in rows["ABCD"[gold]].attrs.get("class", "")
    margins = {s.attrs["data-role"]: float(s.attrs["data-value"]) for s in first.find_all("span")
               if "data-role" in s.attrs}
    z = sum(math.exp(x) for x in lls["model"])
    p = [math.exp(x) / z for x in lls["model"]]
    assert margins["model"] == pytest.approx(p[gold] - max(q for i, q in enumerate(p) if i != gold))


def test_answers_diffed_word_by_word_and_escaped(tmp_path: Path) -> None:
    run = _run_with(tmp_path, lambda data: None)

    def answers(k: int, rec: dict) -> None:
        if k == 0:
            rec["base"]["answer"] = "the cat sat on <b>mat</b>"
            rec["model"]["answer"] = "the dog sat on <b>mat</b> today"
    _edit_samples(run, "squad", answers)
    render_report(run)
    doc = parse(run / "report" / "samples" / "squad" / "page-1.html")
    row = doc.find_all("tr", id="s-0")[0]
    sides = {p.attrs["data-side"]: p for p in row.find_all("pre") if "data-side" in p.attrs}
    assert [d.text() for d in sides["base"].find_all("del")] == ["cat"]
    assert [i.text() for i in sides["model"].find_all("ins")] == ["dog", " today"]
    assert sides["model"].text() == "the dog sat on <b>mat</b> today"
    assert not sides["model"].find_all("b")  # the answer's markup is text, not elements


def test_status_and_score_change_for_every_metric(tmp_path: Path) -> None:
    import json

    run = _run_with(tmp_path, lambda data: None)
    render_report(run)
    chunk = (run / "report" / "samples" / "squad" / "data-1.js").read_text()
    views = json.loads(chunk[chunk.index(",[") + 1:chunk.rindex(");")])
    recs = records(FIXTURE, "squad")
    for v, rec in zip(views, recs):
        for metric in ("exact_match", "f1"):
            d = rec["model"]["scores"][metric] - rec["base"]["scores"][metric]
            assert v["dc"][metric] == pytest.approx(d)
            assert v["sts"][metric] == ("I" if d > 1e-12 else "R" if d < -1e-12 else
                                        "B" if rec["model"]["scores"][metric] >= 0.5 else "W")
    page = parse(run / "report" / "samples" / "squad" / "page-1.html")
    options = [o.attrs["value"] for o in page.find_all("select", id="metric")[0].find_all("option")]
    assert options == ["exact_match", "f1"]
    meta = json.loads(page.find_all("script", id="page-meta")[0].text())
    assert sum(meta["by_metric"]["f1"].values()) == len(recs)


def _cmp_run(tmp_path: Path, name: str, scale: float, drop_fingerprints: bool = False) -> Path:
    def edit(data: dict) -> None:
        for bench in data["benchmarks"].values():
            for entry in bench["metrics"].values():
                entry["model"]["value"] *= scale
        data["benchmarks"]["humaneval"]["metrics"].pop("pass@1") if name == "r_b" else None
        data["models"]["model"]["fingerprint"] = name * 8
        if drop_fingerprints:
            data["models"]["base"]["fingerprint"] = ""
    import shutil
    dst = tmp_path / name
    shutil.copytree(_run_with(tmp_path / f"src-{name}", edit), dst)
    return dst


def test_leaderboard_keeps_bases_ranks_shared_metrics_and_rates_pairs(tmp_path: Path) -> None:
    import json

    from harness.report import compare_runs
    from harness.report.arena import fit

    runs = [_cmp_run(tmp_path, n, s, drop_fingerprints=True) for n, s in (("r_a", 0.5), ("r_b", 1.2))]
    (runs[0] / "reviews.jsonl").write_text("".join(json.dumps({"key": f"alpaca_eval/{i}", "choice": c}) + "\n"
                                                   for i, c in enumerate(["a", "a", "b", "tie"])))
    doc = parse(compare_runs(runs, tmp_path / "cmp"))
    board = [tr for tr in doc.find_all("tr") if "data-label" in tr.attrs]
    assert sum(tr.attrs["class"] == "role-base" for tr in board) == 2  # no fingerprint: never merged
    heads = [th for th in doc.find_all("th") if "data-shared" in th.attrs]
    shared = [th.attrs["data-shared"] == "yes" for th in heads]
    names = [th.text() for th in heads]
    # humaneval is missing in r_b and the judged win rate has no base value: shown, not ranked
    assert not shared[[i for i, n in enumerate(names) if "humaneval" in n][0]]
    assert not shared[[i for i, n in enumerate(names) if "win rate" in n][0]]
    assert sum(shared) == 4
    for tr in board:
        cells = [td for td in tr.find_all("td")][4:]
        assert len(cells) == len(heads)
    tables = {t.attrs["data-source"]: t for t in doc.find_all("table") if "data-source" in t.attrs}
    assert set(tables) == {"human votes", "judge verdicts"}
    human = {tr.attrs["data-system"]: float(tr.find_all("td")[2].attrs["data-value"])
             for tr in tables["human votes"].find_all("tr") if "data-system" in tr.attrs}
    want = fit([("checkpoints/sft-1", "smollm2-135m", s) for s in (1.0, 1.0, 0.0, 0.5)])
    assert human == pytest.approx(want)
    recs = [r for r in records(FIXTURE, "alpaca_eval") if isinstance(
        ((r.get("judge") or {}).get("model_vs_base") or {}).get("preference"), (int, float))]
    n_judged = [int(tr.find_all("td")[4].text()) for tr in tables["judge verdicts"].find_all("tr")
                if "data-system" in tr.attrs]
    assert n_judged == [2 * len(recs)] * 2  # both runs' verdicts, one comparison each per system


def test_human_verdict_beside_the_judge(tmp_path: Path) -> None:
    import json

    run = _run_with(tmp_path, lambda data: None)
    recs = records(FIXTURE, "alpaca_eval")
    votes = ["a", "a", "b", "tie", "a"]
    (run / "reviews.jsonl").write_text("".join(
        json.dumps({"key": f"alpaca_eval/{r['doc_id']}", "choice": c}) + "\n" for r, c in zip(recs, votes)))
    render_report(run)
    head = parse(run / "index.html").find_all("div", id="headline")[0].text()
    summary = (run / "summary.md").read_text()
    # 3 wins, 1 loss, 1 tie: 3.5/5 = 70 %; exact sign test 2·P(X ≤ 1 | n=4) = 0.625
    wins, losses = 3, 1
    p = min(1.0, 2 * sum(math.comb(4, i) for i in range(min(wins, losses) + 1)) / 2 ** 4)
    assert "human review: model win rate 70.0 %" in head and f"sign test p = {p:.3g}" in head
    agree = total = 0
    for r, c in zip(recs, votes):
        pref = ((r.get("judge") or {}).get("model_vs_base") or {}).get("preference")
        if c in ("a", "b") and isinstance(pref, (int, float)) and pref != 1.5:
            total += 1
            agree += (pref > 1.5) == (c == "a")
    assert f"judge-human agreement (alpaca_eval): {agree} of {total}" in head
    assert "human review: model win rate 70.0 %" in summary and "judge-human agreement" in summary
    render_report(_run_with(tmp_path / "novotes", lambda data: None))
    assert "human review" not in (tmp_path / "novotes" / "run" / "summary.md").read_text()


def test_finetune_page_pairs_base_named_and_effective_hyper_parameters(tmp_path: Path) -> None:
    import json

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "train_config.json").write_text(json.dumps({
        "model": "tiny-base", "lr": None, "learning_rate": 5.123456e-05, "max_length": None,
        "resolved_max_length": 64, "format": "alpaca", "format_name": "alpaca", "lora_alpha": None,
        "weight_decay": 0.123456789}))
    (ckpt / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "epoch": s / 2, "train_loss": 3.0 - s / 10,
                                                            "val_loss": 3.1 - s / 10}) + "\n" for s in (1, 2, 3, 4)))
    (ckpt / "test-responses.json").write_text(json.dumps([
        {"instruction": "Say <hi>", "input": "", "output": "hi", "model_response": "hi there", "base_response": "bye"},
        {"instruction": "Add", "input": "1+1", "output": "2", "model_response": "2"}]))

    def point(data: dict) -> None:
        data["models"]["model"]["extra"] = {"base_model": {"spec": "tiny-base"},
                                            "finetune": {"dir": str(ckpt), "epochs": 2}}
    run = _run_with(tmp_path, point)
    render_report(run)
    doc = parse(run / "report" / "finetune.html")
    assert "tiny-base" in doc.find_all("p", id="base-model")[0].text()
    hyper = doc.find_all("dl", id="hyper")[0]
    kv = dict(zip([dt.text() for dt in hyper.find_all("dt")], [dd.text() for dd in hyper.find_all("dd")]))
    assert kv["lr"] == "5.123e-05" and kv["max_length"] == "64" and kv["weight_decay"] == "0.1235"
    assert "learning_rate" not in kv and "null" not in kv.values() and kv["lora_alpha"] == "not set"
    rows = [tr for tr in doc.find_all("table", id="pairs")[0].find_all("tr") if tr.find_all("td")]
    first = {td.attrs.get("data-role"): td.text() for td in rows[0].find_all("td")}
    assert first["base"] == "bye" and first["model"] == "hi there"
    assert "Say <hi>" in rows[0].find_all("td")[1].text()
    assert "(not generated)" in rows[1].text()
    assert doc.find_all("svg")  # the loss chart
