"""The fine-tuning page: loss curves, hyper-parameters and held-out test responses.

Why it reads two places: `harness finetune` writes a checkpoint directory with
``metrics.jsonl`` ({"step", "epoch", "train_loss", "val_loss"} per line),
``train_config.json`` and ``test-responses.json``; the model's ModelInfo may also
carry an ``extra["finetune"]`` section (possibly pointing at that directory, or
holding the same data inline). Either is enough; neither is required, and a
damaged file is reported on the page rather than failing the whole report.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import HarnessError
from ..files import read_json, read_text
from . import svg
from .run import num

_DIR_KEYS = ("checkpoint", "checkpoint_dir", "dir", "output_dir", "path")
_RESPONSE_ORDER = ("instruction", "input", "reference", "output", "expected", "model_response", "response",
                   "prediction", "generated", "model_output")


def _candidate_dirs(info: dict, ft: dict, run_dir: Path) -> list[Path]:
    raw = [ft.get(k) for k in _DIR_KEYS] + [info.get("path")]
    out = []
    for value in raw:
        if not isinstance(value, str) or not value:
            continue
        p = Path(value)
        for cand in ([p] if p.is_absolute() else [p, run_dir / p]):
            cand = cand.parent if cand.is_file() else cand  # a weights file inside the checkpoint dir
            if cand.is_dir() and cand not in out:
                out.append(cand)
    return out


def _read_json(path: Path, problems: list[str]) -> Any:
    """The file's JSON, or None with the one-line reason added to ``problems``."""
    try:
        return read_json(path)
    except HarnessError as exc:
        problems.append(str(exc))
        return None


def _read_metrics(path: Path, problems: list[str]) -> list[dict]:
    """The dict lines of metrics.jsonl. Unlike ``iter_jsonl`` (which stops at the first
    bad line) a bad line is skipped and reported, so a damaged log still draws a curve."""
    rows: list[dict] = []
    try:
        lines = read_text(path).splitlines()
    except HarnessError as exc:
        problems.append(str(exc))
        return rows
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            problems.append(f"{path}:{lineno}: not valid JSON, line skipped")
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _curve(metrics: list[dict], key: str) -> list[tuple[float, float]]:
    pts = []
    for k, row in enumerate(metrics):
        x, y = num(row.get("step", k)), num(row.get(key))
        if x is not None and y is not None:
            pts.append((x, y))
    return pts


def _best_step(ft: dict, metrics: list[dict]) -> tuple[float | None, str]:
    """The early-stopping point: as recorded, else the step with the lowest validation loss."""
    early = ft.get("early_stopping") if isinstance(ft.get("early_stopping"), dict) else {}
    label = "early stopping: kept" if ft.get("stopped_early") or early else "kept (best val loss)"
    for value in (ft.get("best_step"), early.get("best_step"), early.get("step")):
        if num(value) is not None:
            return num(value), label
    val = [(y, x) for x, y in _curve(metrics, "val_loss")]
    if val:
        return min(val)[1], "lowest val loss"
    return None, ""


def _responses(data: Any) -> list[dict]:
    if isinstance(data, dict):
        data = next((data[k] for k in ("responses", "test_responses", "items", "data") if isinstance(
            data.get(k), list)), [data])
    if not isinstance(data, list):
        return []
    out = []
    for item in data:
        if not isinstance(item, dict):
            out.append({"fields": [("response", str(item))]})
            continue
        keys = [k for k in _RESPONSE_ORDER if k in item] + [k for k in item if k not in _RESPONSE_ORDER]
        out.append({"fields": [(k, item[k] if isinstance(item[k], str) else json.dumps(item[k], ensure_ascii=False))
                               for k in keys]})
    return out


# an option left at None and the key train_config.json stores its resolved value under
_EFFECTIVE = {"lr": "learning_rate", "max_length": "resolved_max_length", "format": "format_name",
              "data": "data_name"}


def _value(v: Any) -> str:
    """A hyper-parameter as text: floats to 4 significant digits, unset as "not set" (never ``null``)."""
    if v is None:
        return "not set"
    if isinstance(v, float):
        return f"{v:.4g}"
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def effective_config(config: Any) -> dict[str, Any]:
    """train_config.json with each None option replaced by its resolved value (lr → learning_rate ...)."""
    if not isinstance(config, dict):
        return {}
    out = {k: v for k, v in config.items() if k not in _EFFECTIVE.values()}
    for option, resolved in _EFFECTIVE.items():
        if resolved in config and config.get(option) is None:
            out[option] = config[resolved]
    return out


def pairs(data: Any) -> list[dict[str, Any]]:
    """Held-out items as ``{"instruction", "input", "expected", "base", "model", "judge"}`` for the side-by-side table."""
    if isinstance(data, dict):
        data = next((data[k] for k in ("responses", "test_responses", "items", "data") if isinstance(
            data.get(k), list)), [])
    out = []
    for item in data if isinstance(data, list) else []:
        if isinstance(item, dict):
            out.append({"instruction": str(item.get("instruction", "")), "input": str(item.get("input") or ""),
                        "expected": str(item.get("output", item.get("expected", item.get("reference", "")))),
                        "base": item.get("base_response"), "model": str(item.get("model_response",
                                                                                     item.get("response", ""))),
                        "judge": {k: item[k] for k in item if k.startswith("judge") or k.endswith("_score")}})
    return out


def _flat(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(config, dict):
        return []
    out = []
    for k, v in config.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", _value(v)))
    return out


def finetune_context(info: dict, run_dir: Path) -> dict[str, Any] | None:
    """The page's data, or None when the model shows no sign of having been fine-tuned here."""
    extra = info.get("extra") if isinstance(info.get("extra"), dict) else {}
    ft = extra.get("finetune") if isinstance(extra.get("finetune"), dict) else {}
    problems: list[str] = []
    dirs = [d for d in _candidate_dirs(info, ft, run_dir) if (d / "metrics.jsonl").is_file()
            or (d / "train_config.json").is_file()]
    ckpt = dirs[0] if dirs else None
    if not ft and ckpt is None:
        return None
    metrics = ft.get("metrics") if isinstance(ft.get("metrics"), list) else []
    if not metrics and ckpt is not None and (ckpt / "metrics.jsonl").is_file():
        metrics = _read_metrics(ckpt / "metrics.jsonl", problems)
    metrics = [m for m in metrics if isinstance(m, dict)]
    config = next((ft[k] for k in ("config", "train_config", "hyperparameters") if isinstance(ft.get(k), dict)),
                  None)
    if config is None and ckpt is not None and (ckpt / "train_config.json").is_file():
        config = _read_json(ckpt / "train_config.json", problems)
    responses = ft.get("test_responses")
    if responses is None and ckpt is not None and (ckpt / "test-responses.json").is_file():
        responses = _read_json(ckpt / "test-responses.json", problems)
    best, best_label = _best_step(ft, metrics)
    series = {name: pts for name, pts in (("train loss", _curve(metrics, "train_loss")),
                                          ("val loss", _curve(metrics, "val_loss"))) if pts}
    chart = svg.line_chart(series, "training and validation loss", marker=best,
                           marker_label=f"{best_label} @ {best:g}" if best is not None else "", y_label="loss",
                           epochs=svg.epoch_steps(metrics)) if series else ""
    best_row = next((m for m in metrics if num(m.get("step")) == best), None)
    other = {k: v for k, v in ft.items() if k not in ("metrics", "config", "train_config", "hyperparameters",
                                                        "test_responses")}
    return {"checkpoint": str(ckpt) if ckpt else None, "chart": chart, "n_points": len(metrics),
            "best": best, "best_label": best_label, "best_row": {k: _value(v) for k, v in best_row.items()} if best_row else None, "config": _flat(effective_config(config)),
            "pairs": pairs(responses), "base_model": (extra.get("base_model") or {}).get("spec")
            if isinstance(extra.get("base_model"), dict) else (config or {}).get("model"),
            "summary": _flat(other), "responses": _responses(responses), "problems": problems,
            "prompt_format": info.get("prompt_format")}
