"""The HTML report of a run (``harness report``): see :mod:`harness.report.render`.

Modules: ``render`` (pages and files written), ``run`` (reading a run directory into
rows), ``bench``/``judge``/``samples``/``finetune``/``compare`` (one page kind each),
``export`` (summary.md, results.csv) and ``svg`` (the charts: matplotlib drawing inline
SVG, also used for the fine-tuning loss curve).
"""
from __future__ import annotations

from .render import compare_runs, render_report

__all__ = ["compare_runs", "render_report"]
