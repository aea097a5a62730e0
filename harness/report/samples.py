"""The sample browser's data: pages of records, per-page data chunks, the status index.

Why this shape: the report must open from file://, where a page cannot fetch() other
local files, yet stay fast with tens of thousands of samples. So every page of N
samples is a plain HTML table (readable with JavaScript off), and the same records
also exist as small ``data-K.js`` chunks that the page's script loads lazily through
``<script src>`` (allowed from file://) only when the reader filters or searches
across pages. A tiny ``index.js`` holds one status letter per sample so a filter
loads only the chunks that contain matches.
"""
from __future__ import annotations

import json
import re
from typing import Any

from .choices import choices_view, word_diff
from .judge import judged, opponent, scores_text, verdict
from .judge import status as judge_status
from .run import STATUS_LABELS, num, primary_metric, sample_status, target_text

PAGE_SIZE = 100
JUDGE_LABELS = {"I": "judge prefers model", "R": "judge prefers {opponent}", "T": "tie"}
_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_for_html(obj: Any) -> str:
    """JSON that is safe inside a <script> element or a .js file.

    Escaping every ``<`` (so ``</script>`` and ``<!--`` cannot occur), ``>`` and ``&``
    as \\u escapes keeps model text from ending the script block; the JSON value is
    unchanged when parsed.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return re.sub("[<>&\u2028\u2029]", lambda m: _UNSAFE[m.group(0)], text)


def slug(name: str) -> str:
    """A file-name-safe form of a benchmark name (plug-ins choose names freely)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


def _scores(part: Any) -> dict[str, float]:
    if not isinstance(part, dict):
        return {}
    return {k: v for k, v in (part.get("scores") or {}).items() if num(v) is not None}


def _per_metric(rec: dict, directions: dict[str, bool]) -> tuple[dict[str, str], dict[str, float]]:
    """Status letter and score change (model − base) for every metric, so any metric can filter/sort."""
    status, change = {}, {}
    for name, hib in directions.items():
        status[name] = sample_status(rec, name, hib)
        m, b = (num(((rec.get(r) or {}).get("scores") or {}).get(name)) if isinstance(rec.get(r), dict) else None
                for r in ("model", "base"))
        if m is not None and b is not None:
            change[name] = (m - b) if hib else (b - m)  # positive = the model improved
    return status, change


def sample_view(rec: dict, index: int, metric: str | None, higher_is_better: bool,
                by_judge: bool = False, directions: dict[str, bool] | None = None) -> dict[str, Any]:
    """The compact per-sample dict both the HTML table and the JS chunks use."""
    model, base = rec.get("model"), rec.get("base")
    winner, judge_text = verdict(rec.get("judge"))
    judge_text = judge_text or scores_text(rec)
    sts, dc = _per_metric(rec, directions or {})
    m_text = str(model.get("answer", "")) if isinstance(model, dict) else ""
    b_text = str(base.get("answer", "")) if isinstance(base, dict) else None
    return {
        "sts": sts, "dc": dc, "cv": choices_view(rec),
        "df": word_diff(b_text, m_text) if b_text is not None else None,
        "i": index,
        "id": str(rec.get("doc_id", index)),
        "sub": str(rec.get("subset", "")),
        "p": str(rec.get("prompt", "")),
        "t": target_text(rec.get("target")),
        "m": str(model.get("answer", "")) if isinstance(model, dict) else "",
        "b": str(base.get("answer", "")) if isinstance(base, dict) else None,
        "ms": _scores(model),
        "bs": _scores(base) if isinstance(base, dict) else None,
        "st": judge_status(rec.get("judge")) if by_judge else sample_status(rec, metric, higher_is_better),
        "j": (f"{winner}: {judge_text}" if winner and judge_text else winner or judge_text) or None,
    }


def paginate(name: str, res: dict, records: list[dict], page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Split one benchmark's records into pages and build the status index.

    Returns ``{"pages": [[view, ...], ...], "status": [str per page], "counts": {letter: n},
    "metric": name, "page_size": N}``.
    """
    metric, entry = primary_metric(res)
    hib = bool(entry.get("higher_is_better", True))
    by_judge = judged(records)
    directions = {k: bool(v.get("higher_is_better", True)) for k, v in (res.get("metrics") or {}).items()
                  if isinstance(v, dict)}
    views = [sample_view(r, i, metric, hib, by_judge, directions) for i, r in enumerate(records)]
    pages = [views[k:k + page_size] for k in range(0, len(views), page_size)] or [[]]
    status = ["".join(v["st"] for v in page) for page in pages]
    counts: dict[str, int] = {}
    by_metric: dict[str, dict[str, int]] = {k: {} for k in directions}
    for v in views:
        counts[v["st"]] = counts.get(v["st"], 0) + 1
        for k, letter in v["sts"].items():
            by_metric[k][letter] = by_metric[k].get(letter, 0) + 1
    return {"pages": pages, "status": status, "counts": counts, "page_size": page_size, "total": len(views),
            "metric": "the judge's verdicts" if by_judge else metric, "by_judge": by_judge,
            "against": opponent(records) if by_judge else "base", "by_metric": by_metric}


def status_labels(by_judge: bool, against: str = "base") -> dict[str, str]:
    """Words for each status letter, with ▲/▼ so the meaning does not rest on colour."""
    judge = {k: v.format(opponent=against) for k, v in JUDGE_LABELS.items()}
    labels = {**STATUS_LABELS, **(judge if by_judge else {})}
    return {k: ("▲ " if k == "I" else "▼ " if k == "R" else "") + v for k, v in labels.items()}


def filters(counts: dict[str, int], has_base: bool, by_judge: bool = False,
            against: str = "base") -> list[dict[str, Any]]:
    """Filter buttons in a fixed, meaningful order, each with its count."""
    order = "IRT" if by_judge else "IRBW" if has_base else "CX"
    order += "".join(c for c in "IRBWCXT" if counts.get(c) and c not in order)  # partial runs mix kinds
    labels = status_labels(by_judge, against)
    out = [{"code": "all", "label": "all", "n": sum(counts.values())}]
    out += [{"code": c, "label": labels[c], "n": counts.get(c, 0)} for c in order]
    if counts.get("?"):
        out.append({"code": "?", "label": STATUS_LABELS["?"], "n": counts["?"]})
    return out


def chunk_js(page_no: int, views: list[dict]) -> str:
    """A data chunk: calling a registration function lets <script src> work from file://."""
    return f"window.HarnessSamples&&HarnessSamples.put({page_no},{json_for_html(views)});\n"


def index_js(name: str, status: list[str], page_size: int) -> str:
    return f"window.HARNESS_INDEX={json_for_html({'bench': name, 'status': status, 'size': page_size})};\n"


def sample_href(index: int, page_size: int) -> str:
    """Link (relative to the report/ folder) to one sample's row in the browser."""
    return f"page-{index // page_size + 1}.html#s-{index}"


def score_text(scores: dict[str, float] | None) -> str:
    if not scores:
        return ""
    return " · ".join(f"{k} {v:.3g}" for k, v in scores.items())
