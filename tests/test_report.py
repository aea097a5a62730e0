"""The HTML report of the fixture run, read back by parsing the HTML (stdlib html.parser).

Expected numbers come from tests/fixtures/run_small/results.json (written by an
independent script) or are computed here with math.comb, never by harness.stats.
"""
from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "run_small"
VOID = {"br", "img", "input", "meta", "link", "col", "hr", "source", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.children = tag, attrs, []  # type: list

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag and all(n.attrs.get(k.rstrip("_")) == v
                                                                  for k, v in attrs.items())]


class TreeBuilder(HTMLParser):
    """Just enough of a DOM to read tables: elements, attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(path: Path) -> Node:
    builder = TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    builder.close()
    return builder.root


def metric_rows(doc: Node) -> dict[tuple[str, str], Node]:
    return {(tr.attrs["data-bench"], tr.attrs["data-metric"]): tr for tr in doc.find_all("tr")
            if "data-bench" in tr.attrs and "data-name" not in tr.attrs}


def cell_values(tr: Node) -> list[float | None]:
    return [float(td.attrs["data-value"]) if "data-value" in td.attrs else None for td in tr.find_all("td")]


def mcnemar(b: int, c: int) -> float:
    n = b + c
    return 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n)


def records(run: Path, bench: str) -> list[dict]:
    return [json.loads(line) for line in (run / "samples" / f"{bench}.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    index = render_report(FIXTURE, out, page_size=4)
    assert index == out / "index.html"
    return out


@pytest.fixture
def run_copy(tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(FIXTURE, dst)
    return dst


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment, written out independently of harness.stats."""
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def test_summary_numbers_equal_results_json(report: Path) -> None:
    """Every metric row and the judged win rate (a row of its own) with one Holm family."""
    results = json.loads((FIXTURE / "results.json").read_text())
    rows = metric_rows(parse(report / "index.html"))
    expected = {(b, m) for b, r in results["benchmarks"].items() for m in r["metrics"]}
    assert set(rows) == expected | {("alpaca_eval", "win rate vs base")}
    # alpaca_eval model vs base: 3 wins, 1 loss, 1 draw -> 3.5/5, sign test on 3 vs 1
    win_p = 2 * (math.comb(4, 0) + math.comb(4, 1)) / 2 ** 4
    metrics = [(b, m) for b, r in results["benchmarks"].items() for m in r["metrics"]]
    family = [results["benchmarks"][b]["metrics"][m]["delta"]["p_value"] for b, m in metrics] + [win_p]
    adjusted = dict(zip(metrics + [("alpaca_eval", "win rate vs base")], holm(family)))
    for (bench, metric), tr in rows.items():
        got = [v for v in cell_values(tr) if v is not None]
        if metric == "win rate vs base":
            assert got == pytest.approx([0.7, 0.2, win_p, adjusted[(bench, metric)]])
            assert "sign_exact" in tr.text()
            continue
        entry = results["benchmarks"][bench]["metrics"][metric]
        delta = entry["delta"]
        assert got == pytest.approx([entry["base"]["value"], entry["model"]["value"], delta["value"],
                                     delta["p_value"], adjusted[(bench, metric)]])
        text = tr.text()
        assert f"{entry['model']['value']:.4f}" in text and f"{delta['value']:+.4f}" in text
        assert delta["test"] in text


def test_verdicts_follow_direction_and_holm(report: Path) -> None:
    rows = metric_rows(parse(report / "index.html"))
    assert rows[("mmlu", "acc")].attrs["class"] == "v-better"  # adjusted p 0.0137
    assert "▲ model better" in rows[("mmlu", "acc")].text()
    # longer answers with "lower is better": a positive delta is a regression
    assert rows[("alpaca_eval", "length")].attrs["class"] == "v-worse"
    assert "▼" in rows[("alpaca_eval", "length")].text()
    assert rows[("squad", "f1")].attrs["class"] == "v-ns"
    note = parse(report / "index.html").find_all("p", id="holm-note")[0].text()
    assert "Holm" in note and "6 comparisons" in note and "win rates included" in note


def test_pvalue_equals_independent_mcnemar(report: Path) -> None:
    recs = records(FIXTURE, "mmlu")
    b = sum(r["model"]["scores"]["acc"] == 1 and r["base"]["scores"]["acc"] == 0 for r in recs)
    c = sum(r["model"]["scores"]["acc"] == 0 and r["base"]["scores"]["acc"] == 1 for r in recs)
    assert (b, c) == (12, 1)
    expected = mcnemar(b, c)  # 2 * (1 + 13) / 2**13
    tr = metric_rows(parse(report / "index.html"))[("mmlu", "acc")]
    pcell = [td for td in tr.find_all("td") if "pval" in td.attrs.get("class", "")][0]
    assert float(pcell.attrs["data-value"]) == pytest.approx(expected, rel=1e-12)
    assert pcell.text().startswith(f"{expected:.3g}")


def test_report_computes_missing_delta_and_holm(run_copy: Path, tmp_path: Path) -> None:
    data = json.loads((run_copy / "results.json").read_text())
    for bench in data["benchmarks"].values():
        for entry in bench["metrics"].values():
            entry.get("delta", {}).pop("p_value_holm", None)
    del data["benchmarks"]["mmlu"]["metrics"]["acc"]["delta"]
    (run_copy / "results.json").write_text(json.dumps(data))
    render_report(run_copy, tmp_path / "out")
    rows = metric_rows(parse(tmp_path / "out" / "index.html"))
    p = mcnemar(12, 1)
    pcell = [td for td in rows[("mmlu", "acc")].find_all("td") if "pval" in td.attrs.get("class", "")][0]
    assert float(pcell.attrs["data-value"]) == pytest.approx(p, rel=1e-12)
    assert "mcnemar_exact" in pcell.text()
    # Holm by hand over the five p-values now on the page
    ps = {k: float([td for td in tr.find_all("td") if "pval" in td.attrs.get("class", "")][0].attrs["data-value"])
          for k, tr in rows.items()}
    order = sorted(ps, key=ps.get)
    expected, running = {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * ps[key]))
        expected[key] = running
    for key, tr in rows.items():
        padj = [td for td in tr.find_all("td") if "padj" in td.attrs.get("class", "")][0]
        assert float(padj.attrs["data-value"]) == pytest.approx(expected[key])


def _sample_pages(report: Path, bench: str) -> list[Path]:
    pages = sorted((report / "report" / "samples" / bench).glob("page-*.html"),
                   key=lambda p: int(p.stem.split("-")[1]))
    return pages


@pytest.mark.parametrize("bench", ["mmlu", "squad", "humaneval", "alpaca_eval"])
def test_every_sample_present_across_pages(report: Path, bench: str) -> None:
    expected = [str(r["doc_id"]) for r in records(FIXTURE, bench)]
    pages = _sample_pages(report, bench)
    assert len(pages) == math.ceil(len(expected) / 4)
    seen = [tr.attrs["data-doc"] for p in pages for tr in parse(p).find_all("tr") if "data-doc" in tr.attrs]
    assert seen == expected
    chunks = []
    for k in range(1, len(pages) + 1):
        text = (report / "report" / "samples" / bench / f"data-{k}.js").read_text()
        chunks += json.loads(text[text.index("["):text.rindex("]") + 1])
    assert [c["id"] for c in chunks] == expected


def test_script_answer_shows_as_text(report: Path) -> None:
    answer = "<script>alert(1)</script>"
    found = False
    for page in _sample_pages(report, "squad"):
        html = page.read_text()
        doc = parse(page)
        for script in doc.find_all("script"):
            assert "alert(1)" not in script.text()
        if any(pre.text() == answer for pre in doc.find_all("pre")):
            found = True
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<!-- 42" not in html  # the gold answer "</script><!-- 42" is escaped too
    assert found
    for data in (report / "report" / "samples" / "squad").glob("*.js"):
        text = data.read_text()
        assert "</" not in text and "<!--" not in text
    chunk = (report / "report" / "samples" / "squad" / "data-1.js").read_text()
    assert answer in json.loads(chunk[chunk.index("["):chunk.rindex("]") + 1])[2]["m"]


def test_no_injected_elements_anywhere(report: Path) -> None:
    """Judge reasoning '<img onerror>' and prompts with '<b>' must stay text on every page."""
    pages = list(report.rglob("*.html"))
    assert len(pages) > 8
    for page in pages:
        doc = parse(page)
        assert not doc.find_all("img")
        assert all("bold" not in b.text() for b in doc.find_all("b"))
        for script in doc.find_all("script"):
            assert script.attrs.get("type") == "application/json" or "src" in script.attrs or \
                "HarnessSamples" in script.text()


def test_errors_are_prominent(report: Path) -> None:
    section = parse(report / "index.html").find_all("section", id="errors")
    assert section
    text = section[0].text()
    assert "triviaqa" in text and "FileNotFoundError" in text
    assert "plug-in broken" in text and "No module named 'nope'" in text


def test_run_configuration(report: Path) -> None:
    text = parse(report / "index.html").text()
    for needle in ("checkpoints/sft-1", "smollm2-135m", "ab12cd34ef56ab12", "alpaca", "1234", "123.4 s",
                   "3.11.2", "134,515,008"):
        assert needle in text


def test_missing_results_json(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as err:
        render_report(tmp_path)
    assert str(tmp_path / "results.json") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"schema_version": 99, "benchmarks": {}}'])
def test_corrupt_results_json(tmp_path: Path, content: str) -> None:
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(HarnessError) as err:
        render_report(tmp_path)
    assert "results.json" in str(err.value) and "\n" not in str(err.value)


def test_corrupt_samples_file_names_file_and_line(run_copy: Path) -> None:
    path = run_copy / "samples" / "squad.jsonl"
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(HarnessError, match=r"squad\.jsonl line 11: invalid JSON"):
        render_report(run_copy)


def test_rerender_replaces_report_atomically(run_copy: Path) -> None:
    render_report(run_copy)
    (run_copy / "report" / "stale.html").write_text("old")
    render_report(run_copy)
    assert not (run_copy / "report" / "stale.html").exists()
    leftovers = [p.name for p in run_copy.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert (run_copy / "index.html").is_file() and (run_copy / "summary.md").is_file()
