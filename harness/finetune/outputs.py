"""What a fine-tuning run leaves in ``--out`` besides the checkpoint.

* ``metrics.jsonl``: one ``{"step","epoch","tokens","train_loss","val_loss","lr"}`` per evaluation;
* ``loss-curve.svg``: train vs validation loss per step, the best evaluation marked
  (hand-written SVG: no matplotlib dependency, opens in any browser);
* ``train.log``: the human-readable log; ``train_config.json``: the hyper-parameters;
* ``test-responses.json``: each held-out test record with the model's greedy answer,
  shaped like LLMs-from-scratch's ``instruction-data-with-response.json``.

Small files are written to a temp file and renamed, so readers never see half a file.
"""
from __future__ import annotations

import json
import os
import sys
import time
from html import escape
from pathlib import Path
from typing import Any, Sequence, TextIO

METRIC_KEYS = ("step", "epoch", "tokens", "train_loss", "val_loss", "lr")


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_metrics(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl from the full history (so a resumed run never duplicates lines)."""
    write_atomic(path, "".join(json.dumps({k: r.get(k) for k in METRIC_KEYS}) + "\n" for r in history))


class TrainLog:
    """Appends timestamped lines to train.log and echoes them to stderr (above tqdm bars)."""

    def __init__(self, path: Path, echo: bool = True) -> None:
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            from tqdm.auto import tqdm

            tqdm.write(msg, file=sys.stderr)


def format_eval(rec: dict[str, Any], total_steps: int, best: bool) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"
    return (f"epoch {rec['epoch']:.2f} step {rec['step']}/{total_steps}: train loss {f(rec['train_loss'])}, "
            f"val loss {f(rec['val_loss'])}, lr {rec['lr']:.2e}, {rec['tokens']:,} tokens"
            + ("  (best so far)" if best else ""))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def loss_curve_svg(history: Sequence[dict[str, Any]], best_step: int | None, title: str = "") -> str:
    """Train and validation loss against optimizer step, best evaluation circled."""
    W, H, L, R, T, B = 720, 420, 64, 20, 40, 50
    pts = {k: [(r["step"], r[k]) for r in history if r.get(k) is not None] for k in ("train_loss", "val_loss")}
    values = [v for series in pts.values() for _, v in series]
    steps = [r["step"] for r in history] or [0]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (y1 - y0) * 0.05 or 0.5
    y0, y1 = y0 - pad, y1 + pad

    def sx(s: float) -> float:
        return L + (s - x0) / (x1 - x0) * (W - L - R)

    def sy(v: float) -> float:
        return T + (y1 - v) / (y1 - y0) * (H - T - B)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{escape(title or "Loss")}</text>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="#333"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="#333"/>']
    for v in _ticks(y0, y1):
        out.append(f'<line x1="{L - 4}" y1="{sy(v):.1f}" x2="{W - R}" y2="{sy(v):.1f}" stroke="#eee"/>'
                   f'<text x="{L - 8}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    for s in sorted({round(t) for t in _ticks(x0, x1)}):
        out.append(f'<text x="{sx(s):.1f}" y="{H - B + 18}" text-anchor="middle">{s}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">optimizer step</text>')
    out.append(f'<text x="16" y="{(T + H - B) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(T + H - B) / 2})">loss</text>')
    styles = {"train_loss": ("#1f77b4", "", "train"), "val_loss": ("#d62728", ' stroke-dasharray="6 4"', "validation")}
    for i, (key, (color, dash, label)) in enumerate(styles.items()):
        series = pts[key]
        if series:
            path = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in series)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{path}"/>')
            out += [f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}"/>' for s, v in series]
        ly = T + 8 + 18 * i
        out.append(f'<line x1="{W - R - 130}" y1="{ly}" x2="{W - R - 100}" y2="{ly}" stroke="{color}" '
                   f'stroke-width="2"{dash}/><text x="{W - R - 94}" y="{ly + 4}">{label}</text>')
    best = [v for s, v in pts["val_loss"] if s == best_step]
    if best_step is not None and best:
        bx, by = sx(best_step), sy(best[0])
        anchor = "end" if bx > W - R - 90 else "start" if bx < L + 90 else "middle"
        out.append(f'<circle cx="{bx:.1f}" cy="{by:.1f}" r="7" fill="none" stroke="#2ca02c" stroke-width="2.5"/>'
                   f'<text x="{bx:.1f}" y="{by - 12:.1f}" text-anchor="{anchor}" fill="#2ca02c">'
                   f'best (step {best_step}, {best[0]:.3f})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def clean_response(text: str, stops: Sequence[str]) -> str:
    """The answer as ch07 stores it: stripped, cut before any stop string."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=len(text))
    return text[:cut].strip()


def print_outputs(out: Path, files: Sequence[str], stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    print(f"outputs in {out}/:", file=stream)
    for name in files:
        if (out / name).exists():
            print(f"  {out / name}", file=stream)
