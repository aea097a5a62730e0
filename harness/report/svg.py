"""Inline SVG charts for the HTML report.

Why hand-written SVG: the report must work from file:// with no network, no CDN and
no JavaScript, and these few chart shapes (delta bars, score bars, histograms, loss
curves, interval strips) are short to draw directly. Every text that reaches the SVG
is XML-escaped here; the results are returned as ``markupsafe.Markup`` so Jinja's
autoescape leaves the (already safe) markup alone.

Colours are the Okabe–Ito colour-blind-safe pair: blue for "model better", orange
(vermillion) for "model worse", grey for the base; every coloured mark also carries
a ▲/▼ symbol or a label so nothing depends on colour alone.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BLUE = "#0072B2"
ORANGE = "#D55E00"
GREY = "#8c8c8c"
LIGHT = "#c9c9c9"
UP, DOWN = "▲", "▼"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}"


def _svg(width: float, height: float, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{_n(width)}" '
        f'height="{_n(height)}" viewBox="0 0 {_n(width)} {_n(height)}" font-size="12" '
        f'font-family="system-ui, sans-serif"><title>{_e(title)}</title>{"".join(body)}</svg>'
    )


def _finite(*xs: float | None) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def delta_bars(items: Sequence[dict], title: str, width: int = 720) -> Markup:
    """Horizontal bars of deltas sorted best first, with 95 % whiskers and a zero line.

    ``items``: dicts with ``label``, ``value``, optional ``lo``/``hi``, ``better`` (bool:
    the change is an improvement given higher_is_better) and ``significant``.
    Significant bars are solid, others hatched-light, so the eye finds real changes.
    """
    rows = [i for i in items if _finite(i.get("value"))]
    rows.sort(key=lambda i: (not i.get("better"), -abs(i["value"]) if i.get("better") else abs(i["value"])))
    if not rows:
        return Markup("")
    label_w, value_w, row_h, top = 200, 150, 18, 24
    span = max(max(abs(i["value"]), abs(i.get("lo") or 0), abs(i.get("hi") or 0)) for i in rows) or 1.0
    plot_w = width - label_w - value_w
    mid = label_w + plot_w / 2

    def x(v: float) -> float:
        return mid + max(-1.0, min(1.0, v / span)) * (plot_w / 2 - 4)

    body = [(f'<text x="{_n(mid)}" y="14" text-anchor="middle" fill="#444">'
             f'{DOWN} model worse · 0 · model better {UP}</text>')]
    for k, item in enumerate(rows):
        y = top + k * row_h
        colour = BLUE if item.get("better") else ORANGE
        opacity = "1" if item.get("significant") else "0.45"
        x0, x1 = sorted((x(0), x(item["value"])))
        body.append(f'<text x="{label_w - 6}" y="{_n(y + 13)}" text-anchor="end">{_e(item["label"])}</text>')
        body.append(f'<rect x="{_n(x0)}" y="{_n(y + 3)}" width="{_n(max(x1 - x0, 1))}" height="{row_h - 6}" '
                    f'fill="{colour}" fill-opacity="{opacity}"><title>{_e(item["label"])}: '
                    f'{item["value"]:+.4f}</title></rect>')
        if _finite(item.get("lo"), item.get("hi")):
            yc = y + row_h / 2
            body.append(f'<line x1="{_n(x(item["lo"]))}" x2="{_n(x(item["hi"]))}" y1="{_n(yc)}" y2="{_n(yc)}" '
                        f'stroke="#222" stroke-width="1"/>')
        sym = UP if item.get("better") else DOWN
        star = " *" if item.get("significant") else ""
        body.append(f'<text x="{width - value_w + 6}" y="{_n(y + 13)}" fill="{colour}">{sym} '
                    f'{item["value"]:+.4f}{star}</text>')
    height = top + len(rows) * row_h + 6
    body.append(f'<line x1="{_n(mid)}" x2="{_n(mid)}" y1="{top - 4}" y2="{height - 2}" stroke="#222"/>')
    return _svg(width, height, body, title)


def score_bars(items: Sequence[dict], title: str, width: int = 720, colour: str = BLUE,
               label_w: int = 200) -> Markup:
    """Horizontal bars of scores (no base to compare with), highest first, with whiskers."""
    rows = sorted((i for i in items if _finite(i.get("value"))), key=lambda i: -i["value"])
    if not rows:
        return Markup("")
    value_w, row_h = 110, 18
    top_v = max(max(i["value"], i.get("hi") or 0) for i in rows)
    scale = max(1.0, top_v)
    plot_w = width - label_w - value_w

    def x(v: float) -> float:
        return label_w + max(0.0, min(v / scale, 1.0)) * plot_w

    body = []
    for k, item in enumerate(rows):
        y = 4 + k * row_h
        colour_k = item.get("colour", colour)
        body.append(f'<text x="{label_w - 6}" y="{_n(y + 13)}" text-anchor="end">{_e(item["label"])}</text>')
        body.append(f'<rect x="{label_w}" y="{_n(y + 3)}" width="{_n(max(x(item["value"]) - label_w, 1))}" '
                    f'height="{row_h - 6}" fill="{colour_k}"><title>{_e(item["label"])}: {item["value"]:.4f}'
                    f'</title></rect>')
        if _finite(item.get("lo"), item.get("hi")):
            yc = y + row_h / 2
            body.append(f'<line x1="{_n(x(item["lo"]))}" x2="{_n(x(item["hi"]))}" y1="{_n(yc)}" y2="{_n(yc)}" '
                        f'stroke="#222"/>')
        body.append(f'<text x="{width - value_w + 6}" y="{_n(y + 13)}">{item["value"]:.4f}'
                    f'{_e(item.get("suffix", ""))}</text>')
    return _svg(width, 8 + len(rows) * row_h, body, title)


def histogram(series: dict[str, Sequence[float]], title: str, bins: int = 10, width: int = 520) -> Markup:
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
    peak = max(max(c) for c in counts.values()) or 1
    left, bottom, top, plot_h = 40, 36, 22, 140
    plot_w = width - left - 10
    slot = plot_w / bins
    bar_w = (slot - 4) / max(1, len(counts))
    body = []
    for j, (name, c) in enumerate(counts.items()):
        colour = colours.get(name, BLUE)
        body.append(f'<rect x="{left + j * 90}" y="4" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{left + j * 90 + 14}" y="13">{_e(name)}</text>')
        for b, count in enumerate(c):
            h = plot_h * count / peak
            bx = left + b * slot + 2 + j * bar_w
            body.append(f'<rect x="{_n(bx)}" y="{_n(top + plot_h - h)}" width="{_n(bar_w)}" height="{_n(h)}" '
                        f'fill="{colour}"><title>{_e(name)} {b / bins:.1f}–{(b + 1) / bins:.1f}: {count}'
                        f'</title></rect>')
    for b in range(bins + 1):
        if b % 2 == 0:
            body.append(f'<text x="{_n(left + b * slot)}" y="{top + plot_h + 14}" text-anchor="middle">'
                        f'{b / bins:.1f}</text>')
    body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#222"/>')
    body.append(f'<text x="8" y="{top + 10}">{peak}</text>')
    return _svg(width, top + plot_h + bottom - 8, body, title)


def line_chart(series: dict[str, list[tuple[float, float]]], title: str, marker: float | None = None,
               marker_label: str = "", width: int = 640, height: int = 260, *, x_label: str = "step",
               y_label: str = "", dots: bool = False, standalone: bool = False) -> Markup:
    """Loss curves: one polyline per series (train blue solid, val orange dashed) and a
    vertical marker at the early-stopping step, the checkpoint that was kept.

    The report inlines the chart; ``harness finetune`` writes it as ``loss-curve.svg``
    with ``standalone=True``: white background and the title drawn as a heading (a
    file opened on its own has no page around it), and a "no data" chart rather than
    nothing when there are no points. ``dots`` marks each evaluation.
    """
    pts = [p for s in series.values() for p in s if _finite(p[0], p[1])]
    if not pts and not standalone:
        return Markup("")
    head = 24 if standalone else 0
    body = [f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="{_n(width / 2)}" y="17" text-anchor="middle" font-size="15">{_e(title)}</text>'
            ] if standalone else []
    if not pts:
        body.append(f'<text x="{_n(width / 2)}" y="{_n(height / 2)}" text-anchor="middle">no data</text>')
        return _svg(width, height, body, title)
    x_lo, x_hi = min(p[0] for p in pts), max(p[0] for p in pts)
    y_lo, y_hi = min(p[1] for p in pts), max(p[1] for p in pts)
    x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)
    left, right, top, bottom = (62 if y_label else 52), 16, 24 + head, 30
    pw, ph = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - x_lo) / (x_hi - x_lo) * pw

    def sy(v: float) -> float:
        return top + (1 - (v - y_lo) / (y_hi - y_lo)) * ph

    styles = [(BLUE, ""), (ORANGE, ' stroke-dasharray="6 3"'), (GREY, ' stroke-dasharray="2 2"')]
    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#bbb"/>')
    for k, (name, s) in enumerate(series.items()):
        colour, dash = styles[k % len(styles)]
        good = [p for p in s if _finite(p[0], p[1])]
        if good:
            path = " ".join(f"{_n(sx(a))},{_n(sy(b))}" for a, b in good)
            body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
            if dots:
                body += [f'<circle cx="{_n(sx(a))}" cy="{_n(sy(b))}" r="2.5" fill="{colour}"/>' for a, b in good]
        body.append(f'<line x1="{left + k * 110}" x2="{left + k * 110 + 22}" y1="{10 + head}" y2="{10 + head}" '
                    f'stroke="{colour}" stroke-width="2"{dash}/><text x="{left + k * 110 + 26}" y="{14 + head}">'
                    f'{_e(name)}</text>')
    for v in (y_lo, (y_lo + y_hi) / 2, y_hi):
        body.append(f'<text x="{left - 4}" y="{_n(sy(v) + 4)}" text-anchor="end">{v:.3g}</text>')
    for v in (x_lo, x_hi):
        body.append(f'<text x="{_n(sx(v))}" y="{height - 10}" text-anchor="middle">{v:g}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{_e(x_label)}</text>')
    if y_label:
        yc = _n(top + ph / 2)
        body.append(f'<text x="14" y="{yc}" text-anchor="middle" transform="rotate(-90 14 {yc})">'
                    f'{_e(y_label)}</text>')
    if marker is not None and _finite(marker):
        mx = sx(marker)
        # a label that would run off the right edge goes to the left of the line instead
        tx, anchor = (mx + 4, "") if mx + 4 + 7 * len(marker_label) <= width else (mx - 4, ' text-anchor="end"')
        body.append(f'<line x1="{_n(mx)}" x2="{_n(mx)}" y1="{top}" y2="{top + ph}" stroke="#222" '
                    f'stroke-dasharray="4 3"/><text x="{_n(tx)}" y="{top + 14}"{anchor}>{_e(marker_label)}</text>')
    return _svg(width, height, body, title)


def interval_strip(value: float | None, lo: float | None, hi: float | None, span: float, better: bool | None,
                   significant: bool, width: int = 140, height: int = 16) -> Markup:
    """A tiny forest-plot cell for the summary table: the delta's interval against zero."""
    if not _finite(value) or not span:
        return Markup("")
    mid = width / 2

    def x(v: float) -> float:
        return mid + max(-1.0, min(1.0, v / span)) * (width / 2 - 3)

    colour = GREY if better is None else (BLUE if better else ORANGE)
    body = [f'<line x1="{_n(mid)}" x2="{_n(mid)}" y1="1" y2="{height - 1}" stroke="#999"/>']
    if _finite(lo, hi):
        body.append(f'<line x1="{_n(x(lo))}" x2="{_n(x(hi))}" y1="{height / 2}" y2="{height / 2}" '
                    f'stroke="{colour}" stroke-width="{3 if significant else 1.5}"/>')
    fill = colour if significant else "#fff"
    body.append(f'<circle cx="{_n(x(value))}" cy="{height / 2}" r="4" fill="{fill}" stroke="{colour}" '
                f'stroke-width="1.5"/>')
    return _svg(width, height, body, f"difference {value:+.4f}")
