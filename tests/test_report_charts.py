"""The report's matplotlib charts (harness.report.svg): deterministic, escaped, valid,
inline-safe SVG whose labels are present and inside the drawing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report import svg

NS = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
EVIL = "<script>alert(1)</script> & \"q\" $x$"

DELTAS = [
    {"label": "high_school_government_and_politics", "value": 0.3, "lo": 0.1, "hi": 0.5, "better": True,
     "significant": True},
    {"label": "anatomy", "value": 0.1, "lo": -0.1, "hi": 0.3, "better": True, "significant": False},
    {"label": EVIL, "value": -0.25, "lo": -0.4, "hi": -0.1, "better": False, "significant": True},
    {"label": "nan row", "value": float("nan")},
]
LOSS = {"train loss": [(0, 3.1), (10, 2.4), (20, 1.9), (40, 1.2), (80, 0.9)],
        "val loss": [(0, 3.2), (10, 2.41), (20, 1.88), (40, 1.3), (80, 1.4)]}


def charts() -> dict[str, str]:
    return {
        "delta": str(svg.delta_bars(DELTAS, "mmlu acc per subject")),
        "score": str(svg.score_bars([{"label": "run-a", "value": 0.6, "lo": 0.5, "hi": 0.7, "suffix": " ★ best"},
                                     {"label": "base", "value": 0.4, "colour": svg.GREY}], "leaderboard")),
        "hist": str(svg.histogram({"model": [0.0, 0.5, 1.0, 1.0], "base": [0.0, 0.2]}, "distribution of f1")),
        "line": str(svg.line_chart(LOSS, "loss", marker=40, marker_label="kept @ 40", y_label="loss",
                                   epochs=[40.0])),
        "strip": str(svg.interval_strip(0.1, -0.05, 0.25, 0.3, True, False)),
    }


@pytest.fixture(scope="module")
def drawn() -> dict[str, str]:
    return charts()


def texts(doc: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(doc).iter(f"{NS}text")]


def test_valid_inline_svg(drawn: dict[str, str]) -> None:
    for name, doc in drawn.items():
        root = ET.fromstring(doc)
        assert root.tag == f"{NS}svg" and root.get("class") == "chart", name
        assert root[0].tag == f"{NS}title" and root[0].text, name
        assert not doc.startswith("<?xml") and "<!DOCTYPE" not in doc, name  # fit for inlining in HTML
        assert root.find(f".//{NS}style") is None, name  # matplotlib's "*{...}" would style the whole page


def test_same_input_same_bytes_across_processes(drawn: dict[str, str]) -> None:
    assert charts() == drawn
    code = ("import sys, json; import harness.cli, harness.report, harness.finetune.outputs; "
            "assert 'matplotlib' not in sys.modules, 'imported before a chart is drawn'; "
            f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_report_charts as t, matplotlib; "
            "print(json.dumps([t.charts(), matplotlib.get_backend()]))")
    # a display backend asked for in the environment is not used: the charts force Agg
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "TkAgg"}).stdout
    other, backend = json.loads(out)
    assert other == drawn
    assert backend.lower() == "agg"


def test_user_text_is_escaped_and_literal(drawn: dict[str, str]) -> None:
    doc = drawn["delta"]
    assert "<script" not in doc and "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert EVIL in texts(doc)  # shown as written: no mathtext for "$x$", nothing dropped
    title = str(svg.line_chart(LOSS, EVIL, standalone=True))
    assert "<script" not in title and EVIL in texts(title)
    assert ET.fromstring(title)[0].text == EVIL


def test_ids_unique_per_chart_and_references_resolve(drawn: dict[str, str]) -> None:
    seen: set[str] = set()
    for name, doc in drawn.items():
        root = ET.fromstring(doc)
        ids = [el.get("id") for el in root.iter() if el.get("id")]
        assert len(ids) == len(set(ids)) and not seen & set(ids), name
        seen |= set(ids)
        refs = [v[1:] for el in root.iter() for k, v in el.attrib.items() if k == XLINK]
        refs += [m for el in root.iter() for v in el.attrib.values() for m in re.findall(r"url\(#([^)]+)\)", v)]
        assert set(refs) <= set(ids), name


def test_delta_bars_labels_order_and_values(drawn: dict[str, str]) -> None:
    root = ET.fromstring(drawn["delta"])
    ends = [t.text for t in root.iter(f"{NS}text") if "text-anchor: end" in t.get("style", "")]
    assert ends == ["high_school_government_and_politics", "anatomy", EVIL]  # best first, nan left out
    all_text = texts(drawn["delta"])
    assert ["▲ +0.3000 *", "▲ +0.1000", "▼ -0.2500 *"] == [t for t in all_text if re.match(r"[▲▼] [+-]\d", t)]
    assert "▼ model worse · model better ▲" in all_text
    assert svg.delta_bars([{"label": "x", "value": None}], "t") == ""


def test_score_bars_histogram_line_labels(drawn: dict[str, str]) -> None:
    assert {"run-a", "base", "0.6000 ★ best", "0.4000"} <= set(texts(drawn["score"]))
    assert {"model", "base", "samples", "0.0", "1.0"} <= set(texts(drawn["hist"]))
    line = texts(drawn["line"])
    assert {"train loss", "val loss", "kept @ 40", "end of epoch", "epoch 1", "step", "loss"} <= set(line)
    assert svg.line_chart({}, "t") == "" and svg.histogram({}, "t") == ""


def test_long_label_is_cut() -> None:
    doc = str(svg.score_bars([{"label": "y" * 400, "value": 0.5}], "t"))
    label = [t for t in texts(doc) if t.startswith("y")][0]
    assert label.endswith("…") and len(label) == svg.MAX_LABEL


@pytest.mark.parametrize("name", ["delta", "score", "hist", "line"])
def test_text_inside_the_drawing(drawn: dict[str, str], name: str) -> None:
    """Every horizontal label, measured with the font the browser is told to use, lies
    within the SVG's viewBox: nothing is clipped at the edges."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    root = ET.fromstring(drawn[name])
    _, _, width, height = map(float, root.get("viewBox").split())
    measure = TextToPath()
    checked = 0
    for t in root.iter(f"{NS}text"):
        style = t.get("style", "")
        size = float(re.search(r"font(?:-size)?: ([\d.]+)px", style).group(1))  # 3.7 writes "font:" shorthand
        w, h, _ = measure.get_text_width_height_descent(t.text, FontProperties(family="DejaVu Sans", size=size),
                                                         ismath=False)
        x, y = float(t.get("x")), float(t.get("y"))
        if "rotate(-90" in t.get("transform", ""):
            w, h = h, w
            assert 0 <= x - w and y + h / 2 <= height + 0.5, t.text
            continue
        anchor = re.search(r"text-anchor: (\w+)", style).group(1)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        assert left >= -0.5 and left + w <= width + 0.5, (t.text, left, w, width)
        assert y - h >= -0.5 and y <= height + 0.5, (t.text, y, h, height)
        checked += 1
    assert checked >= 5


def test_standalone_loss_curve() -> None:
    doc = str(svg.line_chart(LOSS, "Loss", marker=40, marker_label="best (step 40, 1.300)", standalone=True,
                             dots=True, epochs=[40.0]))
    root = ET.fromstring(doc)
    assert "Loss" in texts(doc) and "best (step 40, 1.300)" in texts(doc)
    background = root.find(f".//{NS}path")
    assert "fill: #ffffff" in background.get("style")  # a file opened on its own: not transparent
    assert "no data" in texts(str(svg.line_chart({}, "Loss", standalone=True)))


def test_interval_strip() -> None:
    doc = str(svg.interval_strip(0.1, -0.05, 0.25, 0.3, True, True))
    root = ET.fromstring(doc)
    assert (root.get("width"), root.get("height")) == ("105pt", "12pt")  # 140 x 16 CSS px, fixed
    assert root[0].text == "difference +0.1000"
    assert svg.BLUE.lower() in doc.lower()
    assert svg.ORANGE.lower() in str(svg.interval_strip(-0.1, -0.2, 0.0, 0.3, False, False)).lower()
    assert svg.interval_strip(float("nan"), None, None, 0.3, None, False) == ""


def test_epoch_steps() -> None:
    rows = [{"step": 0, "epoch": 0.0}, {"step": 30, "epoch": 0.75}, {"step": 50, "epoch": 1.25},
            {"step": "x", "epoch": 1.5}, {"step": 70, "epoch": None}, {"step": 90, "epoch": 2.25},
            {"step": 100, "epoch": 2.5}]
    assert svg.epoch_steps(rows) == pytest.approx([40.0, 80.0])
    # an epoch that ends at the last logged step is the edge of the chart, not a mark
    assert svg.epoch_steps([{"step": 0, "epoch": 0.0}, {"step": 10, "epoch": 1.0}]) == []
