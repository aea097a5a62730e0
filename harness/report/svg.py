"""The report's charts (and ``loss-curve.svg``), drawn with matplotlib as inline SVG.

Why matplotlib: a maintained library places ticks, labels and legends from real
text metrics instead of hand-picked coordinates. Why inline SVG: the report must
work from file:// with no network, no CDN and no JavaScript. matplotlib is imported
only when a chart is drawn (``harness --help`` stays fast), with the Agg backend (no
display) and the DejaVu Sans it ships. Same input, byte-identical SVG (fixed
``svg.hashsalt``, no date). Each SVG is re-serialised with ElementTree, which escapes
all text (names come from users' files), prefixes the ids with a digest of the chart
(several charts share a page) and drops matplotlib's page-wide ``<style>`` rule.
Text stays ``<text>`` (``svg.fonttype = "none"``): small files.

Colours are the Okabe–Ito colour-blind-safe pair: blue for "model better", orange
(vermillion) for "model worse", grey for the base; every coloured mark also carries
a ▲/▼ symbol or a label so nothing depends on colour alone.
"""
from __future__ import annotations

import hashlib
import io
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from markupsafe import Markup

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BLUE, ORANGE, GREY = "#0072B2", "#D55E00", "#8c8c8c"
UP, DOWN = "▲", "▼"

PX = 1 / 96  # inches per CSS pixel (the SVG is written in points, and a point is 4/3 px)
ROW_PX = 20  # one bar's row in the bar charts
MAX_LABEL = 48  # longer names are cut with "…", so one long name cannot shrink a whole chart
_NS, _XLINK = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
_RC = {"svg.hashsalt": "harness", "svg.fonttype": "none", "text.parse_math": False, "text.usetex": False,
       "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "font.size": 9.0,
       "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#444",
       "xtick.color": "#333", "ytick.color": "#333", "axes.labelcolor": "#222"}
_META = {"Date": None, "Creator": None, "Format": None, "Type": None}


def _clean(text: object, limit: int = MAX_LABEL) -> str:
    """One printable line (XML forbids control characters), cut to ``limit`` characters."""
    s = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _finite(*xs: float | None) -> bool:
    try:
        return all(x is not None and math.isfinite(x) for x in xs)
    except TypeError:  # a string or a list where a number belongs
        return False


def _render(draw: Callable[[Figure], None], width: float, height: float, title: str, *,
            tight: bool = True, standalone: bool = False, layout: Literal["constrained"] | None = None) -> str:
    """Draw on a fresh Figure of ``width`` x ``height`` px and return the finished SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # (keys typed as literals)
        fig = Figure(figsize=(width * PX, height * PX), facecolor="white" if standalone else "none",
                     layout=layout)
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata=_META, bbox_inches="tight" if tight else None,
                    pad_inches=0.06, facecolor=fig.get_facecolor())
    return _finish(buf.getvalue(), _clean(title, 200))


def _finish(data: bytes, title: str) -> str:
    """matplotlib's SVG made fit for inlining: unique ids, a <title>, no stray whitespace."""
    ET.register_namespace("", _NS)
    ET.register_namespace("xlink", _XLINK)
    root = ET.fromstring(data)
    prefix = "c" + hashlib.sha1(data).hexdigest()[:10] + "-"
    for defs in root.findall(f"{{{_NS}}}defs"):
        for style in defs.findall(f"{{{_NS}}}style"):  # "*{...}" would apply to the whole HTML page
            defs.remove(style)
        if not len(defs):
            root.remove(defs)
    for el in root.iter():
        for key, value in list(el.attrib.items()):
            if key == "id":
                el.set(key, prefix + value)
            elif key == f"{{{_XLINK}}}href" and value.startswith("#"):
                el.set(key, "#" + prefix + value[1:])
            elif "url(#" in value:
                el.set(key, value.replace("url(#", "url(#" + prefix))
            elif key == "d":
                el.set(key, " ".join(value.split()))
        if el.tag != f"{{{_NS}}}text" and el.text and not el.text.strip():
            el.text = None
        if el.tail and not el.tail.strip():
            el.tail = None
    for key, value in (("class", "chart"), ("role", "img"), ("stroke-linejoin", "round"), ("stroke-linecap", "butt")):
        root.set(key, value)
    head = ET.Element(f"{{{_NS}}}title")
    head.text = title
    root.insert(0, head)
    return ET.tostring(root, encoding="unicode")


def _bar_axes(fig: Figure, labels: list[str]) -> Axes:
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_yticks(range(len(labels)), [_clean(s) for s in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first item on top
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#e4e4e4", linewidth=0.6)
    ax.set_axisbelow(True)
    return ax


def _right_text(ax: Axes, y: float, text: str, colour: str = "#222") -> None:
    """A value printed right of the plot, on a bar's row (inside the tight bounding box)."""
    from matplotlib.transforms import blended_transform_factory

    ax.text(1.015, y, text, transform=blended_transform_factory(ax.transAxes, ax.transData),
            va="center", ha="left", color=colour)


def delta_bars(items: Sequence[dict], title: str, width: int = 720) -> Markup:
    """Horizontal bars of deltas sorted best first, with 95 % whiskers and a zero line.

    ``items``: dicts with ``label``, ``value``, optional ``lo``/``hi``, ``better`` (bool:
    the change is an improvement given higher_is_better) and ``significant``.
    Significant bars are solid, others light, so the eye finds real changes.
    """
    rows = [i for i in items if _finite(i.get("value"))]
    rows.sort(key=lambda i: (not i.get("better"), i.get("better") is False,
                             -abs(i["value"]) if i.get("better") else abs(i["value"])))
    if not rows:
        return Markup("")
    span = max(max(abs(i["value"]), abs(i.get("lo") or 0), abs(i.get("hi") or 0)) for i in rows) or 1.0

    def draw(fig: Figure) -> None:
        ax = _bar_axes(fig, [i["label"] for i in rows])
        for k, item in enumerate(rows):
            neutral = item["value"] == 0 or item.get("better") is None  # no change: no colour, no arrow
            colour = GREY if neutral else BLUE if item.get("better") else ORANGE
            ax.barh(k, item["value"], height=0.7, color=colour, alpha=1.0 if item.get("significant") else 0.45)
            if _finite(item.get("lo"), item.get("hi")):
                ax.plot([item["lo"], item["hi"]], [k, k], color="#222", linewidth=1)
            sym, star = ("" if neutral else UP if item.get("better") else DOWN), (" *" if item.get("significant") else "")
            value = "0.0000" if item["value"] == 0 else f"{item['value']:+.4f}"
            _right_text(ax, k, f"{sym} {value}{star}".strip(), colour)
        ax.axvline(0, color="#222", linewidth=0.9)
        ax.set_xlim(-span * 1.05, span * 1.05)
        ax.set_xlabel(f"{DOWN} model worse · model better {UP}")

    height = len(rows) * ROW_PX
    return Markup(_render(draw, max(width - 350, 200), height, title))


def score_bars(items: Sequence[dict], title: str, width: int = 720, colour: str = BLUE) -> Markup:
    """Horizontal bars of scores (no base to compare with), highest first, with whiskers.

    An item may carry its own ``colour`` and a ``suffix`` printed after its value.
    """
    rows = sorted((i for i in items if _finite(i.get("value"))), key=lambda i: -i["value"])
    if not rows:
        return Markup("")
    top = max(max(i["value"], i.get("hi") or 0) for i in rows)
    low = min(min(i["value"], i.get("lo") or 0) for i in rows)

    def draw(fig: Figure) -> None:
        ax = _bar_axes(fig, [i["label"] for i in rows])
        for k, item in enumerate(rows):
            ax.barh(k, item["value"], height=0.7, color=item.get("colour", colour))
            if _finite(item.get("lo"), item.get("hi")):
                ax.plot([item["lo"], item["hi"]], [k, k], color="#222", linewidth=1)
            suffix = str(item.get("suffix", ""))
            _right_text(ax, k, f"{item['value']:.4f}{' ' * suffix[:1].isspace()}{_clean(suffix)}")
        ax.set_xlim(min(0.0, low), max(1.0, top))

    return Markup(_render(draw, max(width - 310, 200), len(rows) * ROW_PX, title))


def histogram(series: Mapping[str, Sequence[float]], title: str, bins: int = 10, width: int = 520) -> Markup:
    """Side-by-side histograms of per-sample scores in [0, 1] (model blue, base grey).

    Means hide whether a model got many samples a bit better or a few much better;
    the distribution shows it (SQuAD F1 is mostly 0 or 1 with a middle band).
    """
    colours = {"model": BLUE, "base": GREY}
    counts: dict[str, list[int]] = {}
    for name, values in series.items():
        c = [0] * bins
        for v in values:
            if _finite(v):
                c[min(bins - 1, max(0, int(float(v) * bins)))] += 1
        counts[name] = c
    if not counts:
        return Markup("")

    def draw(fig: Figure) -> None:
        from matplotlib.ticker import MaxNLocator

        ax = fig.add_axes((0, 0, 1, 1))
        slot = 1 / bins
        bar_w = slot * 0.8 / len(counts)
        for j, (name, c) in enumerate(counts.items()):
            xs = [b * slot + slot * 0.1 + j * bar_w for b in range(bins)]
            ax.bar(xs, c, width=bar_w, align="edge", color=colours.get(name, BLUE), label=_clean(name))
        ax.set_xlim(0, 1)
        ax.set_xticks([b / bins for b in range(0, bins + 1, 2)])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("samples")
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncol=len(counts), frameon=False, borderaxespad=0.2)

    return Markup(_render(draw, width - 60, 150, title))


def epoch_steps(rows: Iterable[dict[str, Any]]) -> list[float]:
    """The steps where an epoch ends, interpolated between logged ``{"step", "epoch"}`` rows."""
    pts = sorted((float(r["step"]), float(r["epoch"])) for r in rows if isinstance(r, dict)
                 and _finite(r.get("step"), r.get("epoch")))
    out: list[float] = []
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        for k in range(math.floor(e0) + 1, math.floor(e1) + 1):
            if e1 > e0:
                out.append(s0 + (k - e0) / (e1 - e0) * (s1 - s0))
    return [s for s in out if pts and s < pts[-1][0]]


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, marker: float | None = None,
               marker_label: str = "", width: int = 640, height: int = 260, *, x_label: str = "step",
               y_label: str = "", dots: bool = False, standalone: bool = False,
               epochs: Sequence[float] = ()) -> Markup:
    """Loss curves: one line per series (train blue solid, val orange dashed), a dashed
    vertical marker at the kept (early-stopping) step, named in the legend, and dotted
    lines where epochs end, numbered along the top.

    The report inlines the chart; ``harness finetune`` writes it as ``loss-curve.svg``
    with ``standalone=True``: white background and the title drawn as a heading (a
    file opened on its own has no page around it), and a "no data" chart rather than
    nothing when there are no points. ``dots`` marks each evaluation.
    """
    good = {name: [p for p in s if _finite(p[0], p[1])] for name, s in series.items()}
    xs = [p[0] for s in good.values() for p in s]
    if not xs and not standalone:
        return Markup("")
    styles = [(BLUE, "-"), (ORANGE, "--"), (GREY, ":")]

    def draw(fig: Figure) -> None:
        from matplotlib.ticker import MaxNLocator

        ax = fig.add_subplot()
        if standalone:
            fig.suptitle(_clean(title, 200), fontsize=12)
        if not xs:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            return
        for k, (name, pts) in enumerate(good.items()):
            colour, dash = styles[k % len(styles)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=colour, linestyle=dash, linewidth=1.8,
                    marker="o" if dots else None, markersize=3, label=_clean(name), gid=f"series-{k}")
        ends = [e for e in epochs if _finite(e) and min(xs) < e < max(xs)]
        for k, e in enumerate(ends):
            ax.axvline(e, color=GREY, linestyle=":", linewidth=1, label="end of epoch" if k == 0 else None)
        if ends:
            top = ax.secondary_xaxis("top")
            every = max(1, math.ceil(len(ends) / 10))
            top.set_xticks([e for k, e in enumerate(ends) if k % every == 0],
                           [f"epoch {k + 1}" for k in range(len(ends)) if k % every == 0])
            top.tick_params(length=2, colors="#666")
            top.spines[:].set_visible(False)
        if marker is not None and _finite(marker):
            ax.axvline(marker, color="#222", linestyle=(0, (4, 3)), linewidth=1.2,
                       label=_clean(marker_label, 80) or "kept")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(_clean(x_label))
        ax.set_ylabel(_clean(y_label))
        ax.grid(color="#eeeeee", linewidth=0.6)
        labels = ax.get_legend_handles_labels()[1]
        fig.legend(loc="outside lower center", ncols=len(labels) if sum(map(len, labels)) < 70 else 2,
                   frameon=False)

    return Markup(_render(draw, width, height, title, standalone=standalone, layout="constrained"))


@lru_cache(maxsize=2048)  # the same row's strip appears on the index and on its benchmark's page
def interval_strip(value: float | None, lo: float | None, hi: float | None, span: float, better: bool | None,
                   significant: bool, width: int = 140, height: int = 16) -> Markup:
    """A tiny forest-plot cell for the summary table: the delta's interval against zero."""
    if value is None or not _finite(value) or not span:
        return Markup("")
    colour = GREY if better is None else (BLUE if better else ORANGE)

    def x(v: float) -> float:  # figure coordinates: 0.5 is zero, the span reaches 3 px from the edges
        return 0.5 + max(-1.0, min(1.0, v / span)) * (0.5 - 3 / width)

    def draw(fig: Figure) -> None:
        # figure-level lines, no Axes: an Axes costs more than the rest of the drawing, and a
        # table has one strip per row
        from matplotlib.lines import Line2D

        def line(xs: list[float], ys: list[float], **kw: Any) -> None:
            fig.add_artist(Line2D(xs, ys, transform=fig.transFigure, **kw))

        line([0.5, 0.5], [1 / height, 1 - 1 / height], color="#999", linewidth=0.75)
        if lo is not None and hi is not None and _finite(lo, hi):
            line([x(lo), x(hi)], [0.5, 0.5], color=colour, linewidth=2.25 if significant else 1.1,
                 solid_capstyle="butt")
        line([x(value)], [0.5], marker="o", markersize=6, markeredgewidth=1.1, color=colour,
             markerfacecolor=colour if significant else "#fff", linestyle="none")

    return Markup(_render(draw, width, height, f"difference {value:+.4f}", tight=False))
