"""What a per-benchmark page shows, derived from results.json and the sample records.

Why it is generic rather than one module per benchmark: benchmarks are plug-ins and
new ones arrive without report changes. Each section appears when the data for it
exists: subsets/groups (MMLU subjects and categories) get sorted delta charts;
continuous per-sample scores (SQuAD/TriviaQA F1) get distributions; unanswerable
questions (SQuAD v2) get a has-answer/no-answer split; records with several code
samples (HumanEval) get passes per problem and flips; a judge (AlpacaEval-style)
gets its win rates and every verdict.
"""
from __future__ import annotations

from typing import Any

from . import svg
from .judge import judged
from .judge import section as judge_section
from .run import Row, fmt, is_no_answer, num, slice_rows
from .samples import sample_status

_PASS_KEYS = ("passed", "passes", "results", "pass", "sample_passed")
_MAX_LIST = 300  # rows in flip / verdict tables; the sample browser has the rest


def chart_items(rows: list[Row], metric: str) -> list[dict]:
    """Chart inputs for one metric's subset or group rows."""
    items = []
    for r in rows:
        if r.metric != metric:
            continue
        if r.delta is not None:
            lo, hi = (r.delta.get("ci95") or [None, None])[:2]
            items.append({"label": r.name, "value": r.delta_value, "lo": num(lo), "hi": num(hi),
                          "better": r.better, "significant": r.significant})
        elif r.model:
            lo, hi = (r.model.get("ci95") or [None, None])[:2]
            items.append({"label": r.name, "value": num(r.model.get("value")), "lo": num(lo), "hi": num(hi)})
    return items


def slice_charts(name: str, res: dict, metric: str | None, has_base: bool) -> list[dict]:
    """A sorted bar chart of deltas (or scores, without a base) per subset and per group."""
    out = []
    for key, title in (("groups", "category"), ("subsets", "subject / subset")):
        rows = slice_rows(name, res, key)
        if not rows or metric is None:
            continue
        items = chart_items(rows, metric)
        chart = (svg.delta_bars(items, f"{name} {metric}: model − base per {title}") if has_base
                 else svg.score_bars(items, f"{name} {metric} per {title}"))
        out.append({"key": key, "title": title, "rows": rows, "chart": chart, "metric": metric})
    return out


def distributions(res: dict, records: list[dict], has_base: bool) -> list[dict]:
    """Histograms of per-sample scores for continuous metrics in [0, 1]."""
    out = []
    for metric, entry in (res.get("metrics") or {}).items():
        if not isinstance(entry, dict) or entry.get("kind") != "continuous":
            continue
        series: dict[str, list[float]] = {}
        for role in ("model", "base") if has_base else ("model",):
            vals = [num(((r.get(role) or {}).get("scores") or {}).get(metric)) for r in records
                    if isinstance(r.get(role), dict)]
            vals = [v for v in vals if v is not None]
            if vals and all(0.0 <= v <= 1.0 for v in vals):
                series[role] = vals
        if series:
            out.append({"metric": metric, "chart": svg.histogram(series, f"distribution of per-sample {metric}")})
    return out


def _mean(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def answerability(res: dict, records: list[dict], has_base: bool) -> list[dict]:
    """Has-answer / no-answer split (SQuAD v2): a model can gain by abstaining more often."""
    no = [r for r in records if is_no_answer(r.get("target"))]
    if not no or len(no) == len(records):
        return []
    has = [r for r in records if not is_no_answer(r.get("target"))]
    rows = []
    for metric in (res.get("metrics") or {}):
        row: dict[str, Any] = {"metric": metric}
        for label, group in (("has_answer", has), ("no_answer", no)):
            for role in ("model", "base") if has_base else ("model",):
                vals = [num(((r.get(role) or {}).get("scores") or {}).get(metric)) for r in group]
                row[f"{label}_{role}"] = _mean([v for v in vals if v is not None])
        if row.get("has_answer_model") is not None or row.get("no_answer_model") is not None:
            rows.append(row)
    return [{"n_has": len(has), "n_no": len(no), "rows": rows}] if rows else []


def _passes(part: Any) -> str | None:
    """'3/5' from a list of per-sample pass flags in a model's record, if the plug-in kept one."""
    if not isinstance(part, dict):
        return None
    for key in _PASS_KEYS:
        val = part.get(key)
        if isinstance(val, list) and val and all(isinstance(v, (bool, int, float, dict)) for v in val):
            flags = [bool(v.get("passed", v.get("pass"))) if isinstance(v, dict) else bool(v) for v in val]
            return f"{sum(flags)}/{len(flags)}"
    return None


def per_problem(res: dict, records: list[dict], metric: str | None, page_size: int,
                has_base: bool) -> dict | None:
    """Per-problem table with passes per sample (code benchmarks) and which problems flipped."""
    if metric is None or judged(records):
        return None  # a judged benchmark's flips are its verdicts, listed in the judge section
    hib = bool((res.get("metrics") or {}).get(metric, {}).get("higher_is_better", True))
    with_passes = any(_passes(r.get("model")) for r in records)
    problems, flips = [], {"I": [], "R": []}
    for i, r in enumerate(records):
        st = sample_status(r, metric, hib)
        item = {"i": i, "id": str(r.get("doc_id", i)), "status": st,
                "model_score": fmt(((r.get("model") or {}).get("scores") or {}).get(metric), 3),
                "base_score": fmt(((r.get("base") or {}).get("scores") or {}).get(metric), 3) if has_base else None,
                "model_passes": _passes(r.get("model")), "base_passes": _passes(r.get("base"))}
        if st in flips:
            flips[st].append(item)
        if with_passes:
            problems.append(item)
    if not with_passes and not (has_base and (flips["I"] or flips["R"])):
        return None
    return {"problems": problems[:_MAX_LIST], "n_problems": len(problems), "improved": flips["I"][:_MAX_LIST],
            "regressed": flips["R"][:_MAX_LIST], "n_improved": len(flips["I"]), "n_regressed": len(flips["R"]),
            "metric": metric, "binary": (res.get("metrics") or {}).get(metric, {}).get("kind") == "binary"}


def bench_context(name: str, res: dict, records: list[dict], rows: list[Row], metric: str | None,
                  has_base: bool, page_size: int) -> dict[str, Any]:
    """Everything the benchmark template needs, precomputed."""
    return {
        "name": name, "res": res, "rows": rows, "metric": metric,
        "slices": slice_charts(name, res, metric, has_base),
        "distributions": distributions(res, records, has_base),
        "answerability": answerability(res, records, has_base),
        "per_problem": per_problem(res, records, metric, page_size, has_base),
        "judge": judge_section(res, records),
        "n_records": len(records),
    }
