"""A person's verdict (``harness review`` votes in RUN/reviews.jsonl) beside the judge's.

Why: a judge model is a proxy for a person; where a person has voted, the report shows
their win rate with the same interval and sign test the judge gets, and how often the
judge agreed with them, so a reader can tell whether the judge's verdict is trusted.
"""
from __future__ import annotations

from typing import Any

from ..review.votes import human_summary
from .arena import judge_human_agreement
from .run import Run, fmt_p


def human_lines(run: Run) -> list[str]:
    """Lines for the headline and summary.md; empty when nobody has voted."""
    summary = human_summary(run.dir / "reviews.jsonl")
    if not summary or summary.get("value") is None:
        return []
    lo, hi = summary["ci95"]
    lines = [f"human review: model win rate {100 * summary['value']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
             f"over {summary['n']} votes ({summary['wins']} model · {summary['losses']} base · "
             f"{summary['draws']} ties), sign test p = {fmt_p(summary['delta']['p_value'])}"]
    for bench, records in run.samples.items():
        agreement: dict[str, Any] | None = judge_human_agreement(records, summary["votes"], bench)
        if agreement:
            lines.append(f"judge-human agreement ({bench}): {agreement['agree']} of {agreement['n']} "
                         f"items both decided = {100 * agreement['rate']:.1f} %")
    return lines
