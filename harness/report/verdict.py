"""One verdict over everything a run compared: metric deltas and judged win rates together.

Why: for an instruction-tuned model the judged win rate is often the number that matters,
so it must count in the headline, summary.md, the CLI and the comparison of runs exactly
like an accuracy delta does: a row with an interval, a test against 50 % (the exact sign
test of :func:`harness.stats.win_rate_test`) and a Holm adjustment over the whole family.
A judge whose measured agreement is at chance gets a banner instead of being believed.
"""
from __future__ import annotations

from typing import Any

from .. import stats
from ..results import counted, pairwise_comparisons
from .run import Row, Run, adjust, fmt_p, num, summary_rows


def _verdict(summary: dict) -> dict | None:
    v = summary.get("verdict")
    if not isinstance(v, dict) or "delta" not in v:  # results written before the test existed
        v = stats.win_rate_test(int(summary.get("n_wins") or 0), int(summary.get("n_wins_base") or 0),
                                int(summary.get("n_draws") or 0))
    return v if v.get("delta") else None


def judge_rows(results: dict[str, Any]) -> list[Row]:
    """A row per judged comparison of the evaluated model (``model_vs_base``, ``model_vs_reference``):
    model = win rate (draws half) with its Wilson interval, delta = win rate − 50 %."""
    rows = []
    for bench, res in results.get("benchmarks", {}).items():
        for name, summary in pairwise_comparisons(res).items():
            v = _verdict(summary) if counted(name) else None
            if v is None:
                continue
            rows.append(Row(bench=bench, metric=f"win rate vs {name.partition('_vs_')[2]}", kind="binary",
                            higher_is_better=True, n=v["n"], model={"value": v["value"], "ci95": v["ci95"]},
                            base=None, delta=v["delta"]))
    return rows


def verdict_rows(run: Run) -> tuple[list[Row], str]:
    """Every top-level row (metrics, then judged win rates), Holm-adjusted as one family."""
    rows, note = summary_rows(run)
    extra = judge_rows(run.results)
    if not extra:
        return rows, note
    rows = rows + extra
    return rows, adjust(rows, "judged win rates included: exact sign test of wins vs losses against 50 %")


def headline(rows: list[Row]) -> str:
    """One sentence that answers "did it get better?" over every comparison, judged ones included."""
    tested = [r for r in rows if r.delta is not None]
    if not tested:
        return "No paired comparisons were possible (no per-sample scores for both models)."
    better = sum(r.verdict == "better" for r in tested)
    worse = sum(r.verdict == "worse" for r in tested)
    return (f"Model significantly better on {better}, worse on {worse}, "
            f"no evidence of a difference at this n on {len(tested) - better - worse} of {len(tested)} comparisons.")


def _pct(x: Any, digits: int = 1) -> str:
    v = num(x)
    return "–" if v is None else f"{v:.{digits}f} %"


def judge_lines(results: dict[str, Any], rows: list[Row]) -> list[str]:
    """One line per judged comparison: alpaca_eval's win rate, the decisions, the test."""
    adj = {(r.bench, r.metric): r.p_adj for r in rows}
    out = []
    for bench, res in results.get("benchmarks", {}).items():
        for name, s in pairwise_comparisons(res).items():
            v = _verdict(s)
            se = num(s.get("standard_error"))
            text = (f"{bench} {name.replace('_vs_', ' vs ')}: win rate {_pct(s.get('win_rate'))}"
                    + (f" ± {se:.1f}" if se is not None else "") + " (alpaca_eval, weighted)"
                    + f"; {s.get('n_wins', 0)} wins · {s.get('n_wins_base', 0)} losses · {s.get('n_draws', 0)} draws")
            if v is not None:
                lo, hi = v["ci95"]
                p_adj = adj.get((bench, f"win rate vs {name.partition('_vs_')[2]}"), v["delta"].get("p_value_holm"))
                text += (f" = {100 * v['value']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}], sign test p = "
                         f"{fmt_p(v['delta']['p_value'])}" + (f" (Holm {fmt_p(p_adj)})" if p_adj is not None else ""))
            failed = s.get("judge_failed", s.get("n_unparseable"))
            if failed:
                text += f"; judge failed on {failed}"
            out.append(text)
    return out


def cli_lines(results: dict[str, Any], out_dir: Any = ".") -> list[str]:
    """What `harness run` prints after the metrics: the verdict, judged win rates, judge warnings."""
    from pathlib import Path

    rows, _ = verdict_rows(Run(Path(out_dir), results))
    has_base = bool((results.get("models") or {}).get("base"))
    lines = [f"verdict: {headline(rows)}"] if has_base or judge_rows(results) else []
    lines += judge_lines(results, rows)
    lines += [("" if c["reliable"] else "WARNING: ") + f"judge {c['spec']} ({c['bench']}): {c['text']}"
              for c in judge_checks(results)]
    return lines


def judge_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each judged benchmark's measured judge: ``{"bench", "reliable", "text"}``."""
    out = []
    for bench, res in results.get("benchmarks", {}).items():
        pair = res.get("pairwise") if isinstance(res, dict) else None
        judge = pair.get("judge") if isinstance(pair, dict) else None
        check = judge.get("check") if isinstance(judge, dict) else None
        if isinstance(check, dict) and check.get("verdict"):
            out.append({"bench": bench, "spec": judge.get("spec") or "(default model)",
                        "reliable": bool(check.get("reliable")), "text": str(check["verdict"]), "check": check})
        elif isinstance(judge, dict):
            out.append({"bench": bench, "spec": judge.get("spec") or "(default model)", "reliable": False,
                        "text": "judge not measured in this run (option judge_check=0 or an older harness): its verdicts are unverified; measure it with `harness judge check --judge SPEC`", "check": None})
    return out
