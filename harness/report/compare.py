"""Comparing several runs: a leaderboard and one chart per benchmark metric.

Why average rank rather than an average score: metrics live on different scales
(accuracy, F1, win rate, maybe perplexity), and ranks respect each metric's
direction. Bases are listed once per distinct fingerprint, so a shared base appears
as one reference row. Differences in run configuration (limit, few-shot, data) make
numbers incomparable, so they are shown as warnings instead of being hidden.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import svg
from .arena import human_comparisons, judge_comparisons, ratings
from .run import Run, interval, load_samples, num
from .verdict import headline, judge_rows, verdict_rows


def _entries(runs: list[Run]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for run in runs:
        info = run.model_info("model")
        entries.append({"run": run, "role": "model", "info": info, "label": run.dir.name,
                        "spec": info.get("spec") or "(default model)"})
    bases: set[str] = set()
    for run in runs:  # one row per distinct base; a base without fingerprint is never merged with another
        info = run.model_info("base")
        if not info:
            continue
        key = info.get("fingerprint") or f"{run.dir}:base"
        if key in bases:
            continue
        bases.add(key)
        entries.append({"run": run, "role": "base", "info": info,
                        "label": f"{info.get('spec') or run.dir.name} (base)",
                        "spec": info.get("spec") or "base"})
    return entries


def _columns(runs: list[Run]) -> list[dict[str, Any]]:
    cols: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        for bench, res in run.results["benchmarks"].items():
            for metric, entry in (res.get("metrics") or {}).items():
                if isinstance(entry, dict):
                    cols.setdefault((bench, metric), {"bench": bench, "metric": metric,
                                                      "hib": bool(entry.get("higher_is_better", True))})
        for row in judge_rows(run.results):  # judged win rates rank like any other score
            cols.setdefault((row.bench, row.metric), {"bench": row.bench, "metric": row.metric, "hib": True,
                                                      "judged": True})
    return list(cols.values())


def _entry(run: Run, role: str, col: dict[str, Any]) -> dict[str, Any]:
    """One cell's ``{"value", "ci95"}``: a metric of the role, or the model's judged win rate."""
    if col.get("judged"):
        if role != "model":
            return {}
        row = next((r for r in judge_rows(run.results) if (r.bench, r.metric) == (col["bench"], col["metric"])),
                   None)
        return row.model or {} if row else {}
    return (((run.results["benchmarks"].get(col["bench"]) or {}).get("metrics") or {})
            .get(col["metric"]) or {}).get(role) or {}


def _verdict(run: Run) -> str:
    """The run's own verdict over every comparison it made, judged win rates included."""
    rows, _ = verdict_rows(run)
    return headline(rows) if run.has_base or judge_rows(run.results) else ""


def _ranks(values: list[float | None], hib: bool) -> list[float | None]:
    """1 = best; ties share the average rank; missing values get no rank."""
    present = sorted((v for v in values if v is not None), reverse=hib)
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        first = present.index(v) + 1
        out.append(first + (present.count(v) - 1) / 2)
    return out


def _warnings(runs: list[Run]) -> list[str]:
    out = []
    for key in ("limit", "num_fewshot", "full"):
        vals = {str((r.results.get("config") or {}).get(key)) for r in runs}
        if len(vals) > 1:
            out.append(f"runs differ in {key}: {', '.join(sorted(vals))}; scores may not be comparable")
    benches: dict[str, set[str]] = {}
    for r in runs:
        for name, res in r.results["benchmarks"].items():
            benches.setdefault(name, set()).add(str(res.get("n")))
    for name, ns in sorted(benches.items()):
        if len(ns) > 1:
            out.append(f"{name} was evaluated on different numbers of samples ({', '.join(sorted(ns))})")
    for r in runs:
        for name, res in r.results["benchmarks"].items():
            if res.get("error"):
                out.append(f"{r.dir.name}: benchmark {name} failed: {res['error']}")
    return out


def arena_tables(runs: list[Run]) -> list[dict[str, Any]]:
    """Bradley-Terry ratings (bootstrap 95 % intervals), from human votes and from judge verdicts
    separately: a judge and a person are different raters and must not be pooled."""
    human, judge = [], []
    for run in runs:
        human += human_comparisons(run.dir, run.results)
        for name, res in run.results["benchmarks"].items():
            path = run.dir / "samples" / f"{name}.jsonl"
            if isinstance(res.get("pairwise"), dict) and path.is_file():
                judge += judge_comparisons(run.results, load_samples(path))
    out = []
    for source, comps in (("human votes", human), ("judge verdicts", judge)):
        if comps:
            out.append({"source": source, "n": len(comps),
                        "rows": [{"system": k, **v} for k, v in ratings(comps).items()]})
    return out


def compare_context(runs: list[Run], out_dir: Path) -> dict[str, Any]:
    """Leaderboard rows sorted by average rank, and a chart per benchmark metric."""
    entries = _entries(runs)
    cols = _columns(runs)
    table = [[None] * len(cols) for _ in entries]
    for j, col in enumerate(cols):
        values = []
        for i, e in enumerate(entries):
            entry = _entry(e["run"], e["role"], col)
            v = num(entry.get("value"))
            lo, hi = interval(entry)
            values.append(v)
            table[i][j] = {"value": v, "lo": lo, "hi": hi}
        for i, rank in enumerate(_ranks(values, col["hib"])):
            table[i][j]["rank"] = rank
            table[i][j]["best"] = rank is not None and rank <= 1.0
    shared = [all(table[i][j]["value"] is not None for i in range(len(entries))) for j in range(len(cols))]
    for j, col in enumerate(cols):
        col["shared"] = shared[j]
    board = []
    for i, e in enumerate(entries):
        ranks = [c["rank"] for j, c in enumerate(table[i]) if shared[j] and c.get("rank") is not None]
        report = e["run"].dir / "index.html"
        board.append({**{k: e[k] for k in ("label", "spec", "role")},
                      "fingerprint": e["info"].get("fingerprint") or "", "cells": table[i],
                      "avg_rank": sum(ranks) / len(ranks) if ranks else None, "n_ranked": len(ranks),
                      "created": e["run"].results.get("created") or "",
                      "verdict": _verdict(e["run"]) if e["role"] == "model" else "",
                      "href": os.path.relpath(report, out_dir) if report.is_file() else None})
    board.sort(key=lambda b: (b["avg_rank"] is None, b["avg_rank"] or 0.0, b["role"] != "model"))
    charts = []
    for j, col in enumerate(cols):
        items = [{"label": b["label"], "value": b["cells"][j]["value"], "lo": b["cells"][j]["lo"],
                  "hi": b["cells"][j]["hi"], "colour": svg.GREY if b["role"] == "base" else svg.BLUE,
                  "suffix": " ★ best" if b["cells"][j].get("best") else ""} for b in board]
        direction = "" if col["hib"] else " (lower is better)"
        chart = svg.score_bars(items, f"{col['bench']} {col['metric']}{direction}", width=600)
        charts.append({**col, "chart": chart})
    return {"board": board, "cols": cols, "charts": charts, "warnings": _warnings(runs), "n_runs": len(runs),
            "n_shared": sum(shared), "arena": arena_tables(runs)}
