"""The HTML report of a run: summary, per-benchmark pages, sample browser, fine-tuning.

Why static files: a report must open from file:// on a laptop, in CI artefacts and
offline, with nothing to serve it. Everything is rendered here with Jinja2 (autoescape
on for every template: model output is untrusted text) into plain HTML with inline
SVG charts, inline CSS and a small vanilla script for the sample browser.

Layout written under ``out_dir`` (default: the run directory)::

    index.html  summary.md  results.csv
    report/bench-<name>.html  report/finetune.html
    report/samples/<name>/page-<k>.html, data-<k>.js, index.js

The ``report/`` folder is built in a temporary sibling and swapped in by rename, and
the top-level files are written by temp + rename, so a reader never sees a mixture.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..files import atomic_write_text, publish
from . import svg
from .bench import bench_context
from .export import delta_text, results_csv, summary_markdown, verdict_text
from .finetune import finetune_context
from .human import human_lines
from .judge import section as judge_section
from .paths import scrub, shown
from .power import attach_mde
from .run import (
    Row,
    Run,
    fill_missing_deltas,
    fmt,
    fmt_p,
    fmt_signed,
    interval,
    load_run,
    num,
    primary_metric,
    slice_rows,
)
from .samples import (
    PAGE_SIZE,
    chunk_js,
    filters,
    index_js,
    json_for_html,
    paginate,
    score_text,
    slug,
    status_labels,
)
from .verdict import headline, judge_checks, judge_lines, judge_rows, verdict_rows

__all__ = ["compare_runs", "render_report"]


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """One Jinja environment: autoescape for every template, absent keys render empty (plug-ins vary)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness_reports", "templates"),
                             autoescape=True, undefined=jinja2.ChainableUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, fmt_p=fmt_p, fmt_signed=fmt_signed, json_html=json_for_html,
                       score_text=score_text, slug=slug, num=num)
    env.globals.update(interval=interval, delta_text=delta_text, verdict_text=verdict_text,
                       css=Markup(_static("report.css")), samples_js=Markup(_static("samples.js")))
    return env


def _static(name: str) -> str:
    return resources.files("harness_reports").joinpath("static", name).read_text(encoding="utf-8")


def _render(template: str, **ctx: Any) -> str:
    return environment().get_template(template).render(**ctx)


def _strip_span(rows: list[Row]) -> float:
    """One scale for all interval strips whose numbers lie in [-1, 1] (scores, rates), so
    their lengths compare across rows; other rows (counts, lengths) get their own scale."""
    vals = [abs(v) for r in rows if r.delta for v in (r.delta_value, *interval(r.delta)) if v is not None]
    small = [v for v in vals if v <= 1.0]
    return max(small or [1.0]) or 1.0


def strip(row: Row, span: float) -> Markup:
    vals = [abs(v) for v in (row.delta_value, *interval(row.delta)) if v is not None]
    if vals and max(vals) > 1.0:
        span = max(vals) * 1.05
    lo, hi = interval(row.delta)
    return svg.interval_strip(row.delta_value, lo, hi, span, row.better, row.significant)


def _config_context(run: Run) -> dict[str, Any]:
    res = run.results
    models = [(role, run.model_info(role)) for role in ("model", "base") if run.model_info(role)]
    data = []
    for name, bench in res["benchmarks"].items():
        cfg = bench.get("config") if isinstance(bench.get("config"), dict) else {}
        data.append({"name": name, "n": bench.get("n"), "subsets": len(bench.get("subsets") or {}),
                     "limit": cfg.get("limit"), "num_fewshot": cfg.get("num_fewshot"),
                     "version": bench.get("version"), "timing": bench.get("timing") or {}})
    return {"models": models, "data": data, "config": res.get("config") or {},
            "versions": res.get("versions") or {}, "timing": res.get("timing") or {},
            "command": res.get("command"), "created": res.get("created"), "complete": res.get("complete", True),
            "cache": _cache_line(res)}


def _cache_line(res: dict[str, Any]) -> str:
    """``model 120 of 130 from the cache; base ...``: unique answers the request cache served."""
    totals: dict[str, list[int]] = {}
    for bench in res["benchmarks"].values():
        for role, st in (bench.get("cache") or {}).items() if isinstance(bench, dict) else ():
            t = totals.setdefault(role, [0, 0])
            t[0] += int(st.get("hits") or 0)
            t[1] += int(st.get("misses") or 0)
    return "; ".join(f"{role} {h} of {h + m} answers from the cache" for role, (h, m) in totals.items())


def _judges(run: Run) -> list[tuple[str, dict]]:
    """Win rates of judged benchmarks: they are the headline of an instruction-following eval."""
    out = []
    for name, res in run.results["benchmarks"].items():
        section = judge_section(res, []) if isinstance(res.get("pairwise"), dict) else None
        if section and (section["comparisons"] or section["scores"]):
            out.append((name, section))
    return out


def _errors(run: Run) -> list[dict[str, str]]:
    out = [{"where": f"benchmark {name}", "error": str(b["error"])}
           for name, b in run.results["benchmarks"].items() if b.get("error")]
    out += [{"where": f"plug-in {p.get('plugin', '?')}" + (f" ({p['module']})" if p.get("module") else ""),
             "error": str(p.get("error", ""))} for p in run.results.get("plugin_errors") or [] if isinstance(p, dict)]
    return out


def _write_samples(folder: Path, name: str, res: dict, records: list[dict], has_base: bool,
                   common: dict[str, Any], page_size: int) -> dict[str, Any]:
    """Write one benchmark's sample browser; returns its counts for the other pages."""
    folder.mkdir(parents=True, exist_ok=True)
    paged = paginate(name, res, records, page_size)
    (folder / "index.js").write_text(index_js(name, paged["status"], page_size), encoding="utf-8")
    buttons = filters(paged["counts"], has_base, paged["by_judge"], paged["against"])
    n_pages = len(paged["pages"])
    for k, views in enumerate(paged["pages"], 1):
        (folder / f"data-{k}.js").write_text(chunk_js(k, views), encoding="utf-8")
        meta = {"bench": name, "page": k, "pages": n_pages, "size": page_size, "has_base": has_base,
                "labels": status_labels(paged["by_judge"], paged["against"]),
                "metric": None if paged["by_judge"] else paged["metric"], "by_metric": paged["by_metric"]}
        html = _render("samples.html.j2", **common, root="../../../", bench=name, views=views, page=k,
                       pages=n_pages, filters=buttons, meta=meta, labels=meta["labels"], metric=paged["metric"],
                       has_base=has_base, total=paged["total"])
        (folder / f"page-{k}.html").write_text(html, encoding="utf-8")
    return {"counts": paged["counts"], "filters": buttons, "metric": paged["metric"], "pages": n_pages,
            "by_judge": paged["by_judge"]}


def _build_report_dir(run: Run, tmp: Path, rows: list[Row], note: str, page_size: int) -> dict[str, Any]:
    results = run.results
    has_base = run.has_base
    benches = list(results["benchmarks"])
    ft = finetune_context(run.model_info("model"), run.dir)
    common = {"title": shown(run.model_info("model").get("spec") or "model", run.dir), "benches": benches,
              "has_finetune": ft is not None, "page_size": page_size}
    sample_info = {}
    for name in benches:
        res = results["benchmarks"][name]
        records = run.samples.get(name, [])
        if records:
            sample_info[name] = _write_samples(tmp / "samples" / slug(name), name, res, records, has_base,
                                               common, page_size)
        metric, _ = primary_metric(res)
        ctx = bench_context(name, scrub(res, run.dir), records, [r for r in rows if r.bench == name], metric, has_base,
                            page_size)
        html = _render("bench.html.j2", **common, root="../", b=ctx, has_base=has_base, samples=sample_info.get(name),
                       span=_strip_span(rows), strip=strip, note=note)
        (tmp / f"bench-{slug(name)}.html").write_text(html, encoding="utf-8")
    if ft is not None:
        html = _render("finetune.html.j2", **common, root="../", ft=scrub(ft, run.dir),
                       model=scrub(run.model_info("model"), run.dir))
        (tmp / "finetune.html").write_text(html, encoding="utf-8")
    return sample_info


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp`` with renames, so the old report stays whole until the switch."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=".report-old-", dir=final.parent))
        os.rename(final, old / "report")
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render_report(run_dir: Path, out_dir: Path | None = None, page_size: int = PAGE_SIZE) -> Path:
    """Render the report of ``run_dir`` into ``out_dir`` (default: the run directory).

    Raises HarnessError (one line, naming the file) for a missing or corrupt
    results.json or samples file. Returns the path of index.html.
    """
    run = load_run(Path(run_dir))
    out = Path(out_dir) if out_dir is not None else run.dir
    out.mkdir(parents=True, exist_ok=True)
    fill_missing_deltas(run)
    rows, note = verdict_rows(run)
    attach_mde(run, rows)
    judged = bool(judge_rows(run.results))
    head = headline(rows) if run.has_base or judged else ""
    lines, checks = scrub(judge_lines(run.results, rows), run.dir), scrub(judge_checks(run.results), run.dir)
    lines += human_lines(run)  # a person's votes (harness review) beside the judge's verdict
    tmp = Path(tempfile.mkdtemp(prefix=".report-new-", dir=out))
    publish(tmp)
    try:
        sample_info = _build_report_dir(run, tmp, rows, note, max(1, int(page_size)))
        _swap_in(tmp, out / "report")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ft_exists = (out / "report" / "finetune.html").exists()
    shown_run = Run(run.dir, scrub(run.results, run.dir))  # machine paths as ~/... or relative, for display
    index = _render("index.html.j2", title=shown(run.model_info("model").get("spec") or "model", run.dir),
                    benches=list(run.results["benchmarks"]), has_finetune=ft_exists, page_size=page_size,
                    root="", rows=rows, note=note, headline=head, has_base=run.has_base, errors=scrub(_errors(run), run.dir),
                    cfg=_config_context(shown_run), samples=sample_info, span=_strip_span(rows),
                    strip=strip, results=shown_run.results, judges=_judges(run), judge_lines=lines, judge_checks=checks,
                    ci_methods=sorted({str(r.delta["ci_method"]) for r in rows
                                       if r.delta and r.delta.get("ci_method")}))
    atomic_write_text(out / "summary.md", summary_markdown(shown_run, rows, note, head, lines, checks))
    slices = [r for name, res in run.results["benchmarks"].items() for key in ("groups", "subsets")
              for r in slice_rows(name, res, key)]
    atomic_write_text(out / "results.csv", results_csv(rows + slices))
    atomic_write_text(out / "index.html", index)
    return out / "index.html"


def compare_runs(run_dirs: list[Path], out_dir: Path) -> Path:
    """`harness report RUN1 RUN2 ... --out D`: a leaderboard and a chart per benchmark metric."""
    from .compare import compare_context

    runs = [load_run(Path(d), with_samples=False) for d in run_dirs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = compare_context(runs, out)
    html = _render("compare.html.j2", title="comparison", benches=[], has_finetune=False, page_size=PAGE_SIZE,
                   root="", c=ctx)
    atomic_write_text(out / "index.html", html)
    return out / "index.html"
