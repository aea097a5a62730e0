"""Reading an LLM judge's output (AlpacaEval-style) for the report.

Why its own module: the judge plug-in stores a pair-level summary under
``benchmarks[NAME]["pairwise"]`` (``{"model_vs_base" | "model_vs_reference": {win_rate,
standard_error, n_wins, n_wins_base, n_draws, length_controlled_winrate_local, ...},
"judge": {...}}``; or ``{"score": {role: {...}}}`` in score mode) and a per-record
``judge`` field (``{"model_vs_base": {"preference": 1..2, "raw": ...}}``, where 2 means
the evaluated system — the first name — won). Those shapes are still evolving, so
everything here is tolerant: a simpler ``{"winner", "reason"}`` verdict or a flat
``{"win_rate", ...}`` summary are read too, and unknown keys are shown, not dropped.
Win rates are percentages (0–100), as alpaca_eval reports them.
"""
from __future__ import annotations

import json
from typing import Any

from .run import fmt, fmt_p, num

PRIMARY = ("model_vs_base", "model_vs_reference")
_LC_KEYS = ("length_controlled_winrate_local", "length_controlled_winrate", "lc_win_rate",
            "length_controlled_win_rate")
_FLAT_KEYS = {"win_rate", "standard_error", "n_wins", "n_wins_base", "n_draws", "n_total", "n", "wins", "losses",
              "ties", "by_subset", "discrete_win_rate", "n_unparseable", "avg_length", "avg_length_baseline",
              "baseline", *_LC_KEYS, *(f"{k}_note" for k in _LC_KEYS), *(f"{k}_weights" for k in _LC_KEYS)}
SCORE_PASS = 50  # score mode without a base: a 0-100 judge score counts as correct from here
_MAX_VERDICTS = 3000  # rows on the benchmark page; the sample browser has every one


def _comparisons(judge: dict) -> dict[str, dict]:
    return {k: v for k, v in judge.items() if isinstance(v, dict) and "_vs_" in k}


def _raw_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, dict):
        if "text" in raw:
            return str(raw["text"])
        if "logprob_m" in raw or "logprob_M" in raw:
            return f"log P(m) {fmt(raw.get('logprob_m'), 3)}, log P(M) {fmt(raw.get('logprob_M'), 3)}"
        return " | ".join(f"{k}: {_raw_text(v)}" for k, v in raw.items())
    return json.dumps(raw, ensure_ascii=False, default=str)


def _from_preference(verdict: dict, evaluated: str, baseline: str) -> tuple[str, str, float | None]:
    pref = num(verdict.get("preference"))
    if pref is None:
        winner = "judge failed"
    elif abs(pref - 1.5) < 1e-9:
        winner = "tie"
    else:
        winner = evaluated if pref > 1.5 else baseline
    text = _raw_text(verdict.get("raw"))
    if pref is not None:
        text = f"preference {pref:.3g}" + (f" · {text}" if text else "")
    return winner, text, pref


def verdict(judge: Any) -> tuple[str | None, str]:
    """(winner, text) of one record's ``judge`` field; winner is "model", "base",
    "reference", "tie", "judge failed" or whatever a simpler plug-in wrote."""
    if judge is None:
        return None, ""
    if not isinstance(judge, dict):
        return None, judge if isinstance(judge, str) else str(judge)
    if isinstance(judge.get("score"), dict):
        return _score_verdict(judge["score"])
    comps = _comparisons(judge)
    if comps:
        name = next((k for k in PRIMARY if k in comps), next(iter(comps)))
        evaluated, _, baseline = name.partition("_vs_")
        winner, text, _ = _from_preference(comps[name], evaluated, baseline)
        return winner, text
    if "preference" in judge:
        winner, text, _ = _from_preference(judge, "model", "base")
        return winner, text
    winner = next((str(judge[k]) for k in ("winner", "preferred", "verdict", "choice") if judge.get(k) is not None),
                  None)
    text = next((str(judge[k]) for k in ("reason", "reasoning", "explanation", "rationale", "output")
                 if judge.get(k)), "") or _raw_text(judge.get("raw"))
    return winner, text


def _score_verdict(scores: dict) -> tuple[str, str]:
    """Score mode (0–100 per system): the higher score wins; a reply that is no score is
    "judge failed" with the raw reply, never a wrong answer."""
    parts = {role: v for role, v in scores.items() if isinstance(v, dict)}
    text = " / ".join(f"{role}: " + (f"score {v['score']}" if v.get("score") is not None
                                       else f"judge failed, replied {_raw_text(v.get('raw'))!r}")
                      for role, v in parts.items())
    values = {role: num(v.get("score")) for role, v in parts.items()}
    if not values or any(v is None for v in values.values()):
        return "judge failed", text
    if len(values) == 1:
        return "score", text
    m, b = values.get("model"), values.get("base")
    if m is None or b is None:
        return "score", text
    return ("model" if m > b else "base" if b > m else "tie"), text


def status(judge: Any) -> str:
    """I (judge prefers the model), R (prefers its opponent), T (tie), ? (no usable verdict)."""
    winner = (verdict(judge)[0] or "").strip().lower()
    if winner == "score":  # one system scored 0-100 against the expected output: correct from 50 up
        score = num(next(iter(judge["score"].values())).get("score"))
        return "C" if score is not None and score >= SCORE_PASS else "X"
    if winner == "model":
        return "I"
    if winner in ("base", "reference"):
        return "R"
    return "T" if winner in ("tie", "draw") else "?"


def judged(records: list[dict]) -> bool:
    """A pairwise-judged benchmark: sample status comes from the verdicts, not a metric."""
    return any(isinstance(r, dict) and r.get("judge") is not None for r in records)


def opponent(records: list[dict]) -> str:
    """Who the model was judged against ("base" or "reference"), for labels."""
    for r in records:
        judge = r.get("judge")
        if isinstance(judge, dict):
            comps = _comparisons(judge)
            name = next((k for k in PRIMARY if k in comps), next(iter(comps), "model_vs_base"))
            return name.partition("_vs_")[2] or "base"
    return "base"


def _pct(x: Any) -> str:
    v = num(x)
    return "–" if v is None else f"{v:.1f} %"


def _comparison(name: str, s: dict) -> dict[str, Any]:
    lc_key = next((k for k in _LC_KEYS if k in s), None)
    lc = s.get(lc_key) if lc_key else None
    lc = lc.get("value") if isinstance(lc, dict) else lc
    wins = s.get("n_wins", s.get("wins"))
    losses = s.get("n_wins_base", s.get("losses"))
    draws = s.get("n_draws", s.get("ties"))
    by_subset = [{"name": k, "win_rate": _pct(v.get("win_rate")), "n": v.get("n_total")}
                 for k, v in (s.get("by_subset") or {}).items() if isinstance(v, dict)]
    se = num(s.get("standard_error"))
    return {"key": name, "name": name.replace("_vs_", " vs ").replace("_", " "),
            "win_rate": num(s.get("win_rate")), "win_rate_text": _pct(s.get("win_rate")) + (
                f" ± {se:.1f}" if se is not None else ""),
            "lc": num(lc), "lc_text": _pct(lc), "lc_name": (lc_key or "").replace("_", " "),
            "lc_note": str(s.get(f"{lc_key}_note") or ""), "discrete_text": _pct(s.get("discrete_win_rate")),
            "wins": wins, "losses": losses, "draws": draws, "n": s.get("n_total", s.get("n")),
            "unparseable": s.get("n_unparseable"), "avg_length": num(s.get("avg_length")),
            "avg_length_baseline": num(s.get("avg_length_baseline")), "baseline": s.get("baseline"),
            "by_subset": by_subset, "test_text": _test_text(s.get("verdict")),
            "judge_failed": s.get("judge_failed", s.get("n_unparseable"))}


def _test_text(v: Any) -> str:
    """The head-to-head against 50 %: win rate with draws half, its interval, the sign test."""
    if not isinstance(v, dict) or not isinstance(v.get("delta"), dict) or not v.get("ci95"):
        return ""
    lo, hi = v["ci95"]
    p_adj = v["delta"].get("p_value_holm")
    return (f"{100 * v['value']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] with draws counted half; exact sign test "
            f"against 50 %: p = {fmt_p(v['delta'].get('p_value'))}" + (f" (Holm {fmt_p(p_adj)})" if p_adj else ""))


def _flat(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(d, dict):
        return []
    out: list[tuple[str, str]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)))
    return out


def _score_text(part: Any) -> str:
    j = part.get("judge") if isinstance(part, dict) else None
    if not isinstance(j, dict):
        return ""
    return f"score {j.get('score') if j.get('score') is not None else 'unparseable'} {_raw_text(j.get('raw'))}"


def scores_text(rec: dict) -> str:
    """Score mode: each system's 0–100 judge score and the judge's reply, on one line."""
    return " / ".join(f"{role}: {_score_text(rec.get(role))}" for role in ("model", "base")
                      if _score_text(rec.get(role)))


def section(res: dict, records: list[dict]) -> dict[str, Any] | None:
    """Win rates (or mean judge scores) and every per-instruction verdict, or None without a judge."""
    pairwise = res.get("pairwise") if isinstance(res.get("pairwise"), dict) else {}
    if "win_rate" in pairwise:
        comparisons = [_comparison("model_vs_base", pairwise)]
    else:
        comparisons = [_comparison(k, v) for k, v in pairwise.items() if isinstance(v, dict) and "win_rate" in v]
    scores = [{"role": role, **{k: s.get(k) for k in ("mean", "n", "n_scored", "n_unparseable")}}
              for role, s in (pairwise.get("score") or {}).items() if isinstance(s, dict)]
    consumed = {"score", "judge", "mode"} | {c["key"] for c in comparisons}
    if "win_rate" in pairwise:  # a flat summary: its known keys are in the comparison already
        consumed |= _FLAT_KEYS
    details = _flat(pairwise.get("judge"), "judge.") + _flat({k: v for k, v in pairwise.items() if k not in consumed})
    verdicts = []
    for i, r in enumerate(records):
        if r.get("judge") is not None:
            winner, text = verdict(r["judge"])
            st = status(r["judge"])
        elif scores_text(r):
            winner, st, text = "score", "?", scores_text(r)
        else:
            continue
        verdicts.append({"i": i, "id": str(r.get("doc_id", i)), "prompt": str(r.get("prompt", ""))[:300],
                         "winner": winner or "–", "symbol": {"I": "▲", "R": "▼", "T": "="}.get(st, ""),
                         "status": st, "text": text})
    if not comparisons and not scores and not verdicts and not details:  # nothing judged
        return None
    judge = pairwise.get("judge") if isinstance(pairwise.get("judge"), dict) else {}
    check = judge.get("check") if isinstance(judge.get("check"), dict) else None
    return {"comparisons": comparisons, "scores": scores, "details": details, "check": check,
            "verdicts": verdicts[:_MAX_VERDICTS], "n_verdicts": len(verdicts)}
