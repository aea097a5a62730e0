"""What a fine-tuning run leaves in ``--out`` besides the checkpoint.

* ``metrics.jsonl``: one ``{"step","epoch","tokens","train_loss","val_loss","lr"}`` per evaluation;
* ``loss-curve.svg``: train vs validation loss per step, the best evaluation marked
  (drawn with matplotlib by the report's chart module: an SVG that opens in any browser);
* ``train.log``: the human-readable log; ``train_config.json``: the hyper-parameters;
* ``test-responses.json``: each held-out test record with the model's greedy answer,
  shaped like LLMs-from-scratch's ``instruction-data-with-response.json``.

Small files are written to a temp file and renamed, so readers never see half a file.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..files import atomic_write_text, finite
from ..report.svg import epoch_steps, line_chart

METRIC_KEYS = ("step", "epoch", "tokens", "train_loss", "val_loss", "lr")




def write_metrics(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl from the full history (so a resumed run never duplicates lines)."""
    atomic_write_text(path, "".join(json.dumps(finite({k: r.get(k) for k in METRIC_KEYS})) + "\n" for r in history))


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


def loss_curve_svg(history: Sequence[dict[str, Any]], best_step: int | None, title: str = "") -> str:
    """Train and validation loss against optimizer step, the best evaluation marked.

    Drawn by the report's chart renderer (:func:`harness.report.svg.line_chart`), so the
    file and the report's fine-tuning page show the same chart.
    """
    pts = {k: [(r["step"], r[k]) for r in history if r.get(k) is not None] for k in ("train_loss", "val_loss")}
    best = [v for s, v in pts["val_loss"] if s == best_step]
    marked = best_step is not None and bool(best)
    series = {name: pts[key] for name, key in (("train", "train_loss"), ("validation", "val_loss")) if pts[key]}
    chart = line_chart(series, title or "Loss",
                       marker=best_step if marked else None,
                       marker_label=f"best (step {best_step}, {best[0]:.3f})" if marked else "",
                       width=720, height=420, x_label="optimizer step", y_label="loss", dots=True,
                       standalone=True, epochs=epoch_steps(history))
    return str(chart) + "\n"


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
