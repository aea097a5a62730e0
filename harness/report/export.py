"""summary.md (for a CI comment) and results.csv (for spreadsheets and scripts).

Why both are derived from the same ``Row`` objects as the HTML: a number must read
the same everywhere. Text that came from plug-ins or models is neutralised for each
format: HTML-escaped and pipe-escaped in Markdown (code hosts render inline HTML in
comments), and formula-prefixed cells quoted in CSV (spreadsheets execute ``=...``).
"""
from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from .run import Row, Run, fmt, fmt_p, fmt_signed, interval, num

_CSV_FIELDS = ["benchmark", "scope", "name", "metric", "kind", "higher_is_better", "n",
               "base", "base_lo", "base_hi", "model", "model_lo", "model_hi",
               "delta", "delta_lo", "delta_hi", "p_value", "p_value_adjusted", "test", "verdict"]

_TEXT_FIELDS = ("benchmark", "name", "metric", "test")


def md_cell(text: Any) -> str:
    return escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ").replace("`", "\\`")


def _symbol(row: Row) -> str:
    return {"better": "▲", "worse": "▼"}.get(row.verdict, "")


def delta_text(row: Row) -> str:
    if row.delta is None:
        return "–"
    lo, hi = interval(row.delta)
    ci = f" [{fmt_signed(lo)}, {fmt_signed(hi)}]" if lo is not None and hi is not None else ""
    return f"{_symbol(row)} {fmt_signed(row.delta_value)}{ci}".strip()


def _mde_text(row: Row) -> str:
    """The smallest difference the comparison could have detected (alpha 0.05, power 0.8)."""
    return f"±{fmt(row.mde, 3)}" if row.mde is not None else "–"


def verdict_text(row: Row) -> str:
    return {"better": "model better", "worse": "model worse", "ns": "no evidence of a difference at this n"}.get(row.verdict, "")


def summary_markdown(run: Run, rows: list[Row], note: str, headline: str, judge_lines: list[str] | None = None,
                     judge_checks: list[dict[str, Any]] | None = None) -> str:
    models = run.results.get("models", {})
    model = (models.get("model") or {}).get("spec") or "model"
    base = (models.get("base") or {}).get("spec")
    lines = [f"## harness: {md_cell(model)}" + (f" vs base {md_cell(base)}" if base else ""), ""]
    if headline:
        lines += [f"**{md_cell(headline)}**", ""]
    lines += [f"- {md_cell(line)}" for line in judge_lines or []] + ([""] if judge_lines else [])
    for check in judge_checks or []:  # a judge at chance: its verdicts are not evidence
        mark = "" if check["reliable"] else "> ⚠ "
        lines += [f"{mark}judge {md_cell(check['spec'])} ({md_cell(check['bench'])}): {md_cell(check['text'])}", ""]
    errors = [(b, r["error"]) for b, r in run.results["benchmarks"].items() if r.get("error")]
    errors += [(f"plug-in {p.get('plugin', '?')}", p.get("error", "")) for p in run.results.get("plugin_errors") or []]
    for where, err in errors:
        lines.append(f"> ⚠ **{md_cell(where)}**: {md_cell(err)}")
    if errors:
        lines.append("")
    if base:
        lines += ["| benchmark | metric | n | base | model | Δ [95% CI] | detectable Δ | p | test | verdict |",
                  "|---|---|---:|---:|---:|---|---:|---:|---|---|"]
        for r in rows:
            p = fmt_p((r.delta or {}).get("p_value"))
            if r.p_adj is not None:
                p += f" (adj {fmt_p(r.p_adj)})"
            lines.append(f"| {md_cell(r.bench)} | {md_cell(r.metric)} | {r.n or ''} | "
                         f"{fmt((r.base or {}).get('value'))} | {fmt((r.model or {}).get('value'))} | "
                         f"{delta_text(r)} | {_mde_text(r)} | {p} | {md_cell((r.delta or {}).get('test', ''))} | {verdict_text(r)} |")
    else:
        lines += ["| benchmark | metric | n | score | 95% CI |", "|---|---|---:|---:|---|"]
        for r in rows:
            lo, hi = interval(r.model)
            ci = f"[{fmt(lo)}, {fmt(hi)}]" if lo is not None else "–"
            lines.append(f"| {md_cell(r.bench)} | {md_cell(r.metric)} | {r.n or ''} | "
                         f"{fmt((r.model or {}).get('value'))} | {ci} |")
    if note:
        lines += ["", md_cell(note)]
    if base:
        lines += ["", "detectable Δ: the smallest difference this n could detect (two-sided alpha 0.05, power 0.8; "
                  "binary: from the discordance rate, continuous: from the sd of the paired differences)."]
    return "\n".join(lines) + "\n"


def _safe(value: Any) -> Any:
    """Quote text cells a spreadsheet would run as a formula; numbers stay numbers."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_value(x: Any) -> Any:
    v = num(x)
    return "" if v is None else repr(v)


def results_csv(rows: list[Row]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        out: dict[str, Any] = {"benchmark": r.bench, "scope": r.scope, "name": r.name, "metric": r.metric,
                               "kind": r.kind, "higher_is_better": r.higher_is_better, "n": r.n or "",
                               "test": (r.delta or {}).get("test", ""), "verdict": r.verdict}
        for role in ("base", "model", "delta"):
            entry = getattr(r, role)
            out[role] = _csv_value((entry or {}).get("value"))
            lo, hi = interval(entry)
            out[f"{role}_lo"], out[f"{role}_hi"] = _csv_value(lo), _csv_value(hi)
        out["p_value"] = _csv_value((r.delta or {}).get("p_value"))
        out["p_value_adjusted"] = _csv_value(r.p_adj)
        writer.writerow({k: _safe(v) if k in _TEXT_FIELDS else v for k, v in out.items()})
    return buf.getvalue()
