"""Turning per-sample records into the results.json schema.

The schema is documented in docs/ARCHITECTURE.md; ``SCHEMA_VERSION`` changes
whenever a reader would have to change.
"""
from __future__ import annotations

import math
import platform
from importlib import metadata
from typing import Any

from . import stats

SCHEMA_VERSION = 1
ROLES = ("model", "base")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("harness", "torch", "tiktoken", "pluggy", "datasets", "lm_eval", "transformers", "gguf"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _summary(values: list[float], kind: str, value: float | None = None) -> dict[str, Any]:
    mean, se = stats.mean_stderr(values) if values else (float("nan"), float("nan"))
    lo, hi = stats.ci95(values, kind) if values else (float("nan"), float("nan"))
    return {"value": mean if value is None else value, "stderr": se, "ci95": [lo, hi], "n": len(values)}


def metric_block(benchmark: Any, records: list[dict], roles: tuple[str, ...], seed: int,
                 aggregate: bool = True) -> dict[str, Any]:
    """Scores of every role for one slice of records, and the paired comparison."""
    block: dict[str, Any] = {}
    aggregated = {r: (benchmark.aggregate([x[r] for x in records]) if aggregate else {}) for r in roles}
    names = [m.name for m in benchmark.metrics]
    for r in roles:  # metrics a benchmark's aggregate adds (e.g. pass@10) count too
        names += [n for n in aggregated[r] if n not in names]
    kinds = {m.name: m for m in benchmark.metrics}
    for name in names:
        meta = kinds.get(name)
        kind = meta.kind if meta else "continuous"
        entry: dict[str, Any] = {"kind": kind, "higher_is_better": meta.higher_is_better if meta else True}
        per_role: dict[str, list[float]] = {}
        for r in roles:
            vals = [x[r]["scores"][name] for x in records if name in x[r].get("scores", {})]
            agg = aggregated[r].get(name)
            if not vals and agg is None:
                continue
            per_role[r] = vals
            # A mean over the samples that carry the metric (all, or e.g. SQuAD v2's HasAns_ ones)
            # gets an interval; anything else (pass@10, best thresholds) is reported as it is.
            if vals and (agg is None or math.isclose(agg, sum(vals) / len(vals), rel_tol=1e-9, abs_tol=1e-12)):
                entry[r] = _summary(vals, kind, agg)
            else:
                entry[r] = {"value": agg, "stderr": None, "ci95": None, "n": len(records)}
        if "model" not in entry and "base" not in entry:
            continue
        both = [x for x in records if len(roles) == 2 and all(name in x[r].get("scores", {}) for r in roles)]
        if both and all(entry.get(r, {}).get("ci95") is not None for r in roles):
            entry["delta"] = stats.paired_test([x["model"]["scores"][name] for x in both],
                                               [x["base"]["scores"][name] for x in both], kind, seed=seed)
        block[name] = entry
    return block


def benchmark_result(benchmark: Any, records: list[dict], roles: tuple[str, ...], seed: int) -> dict[str, Any]:
    """The ``benchmarks[NAME]`` entry minus config/timing (added by the engine)."""
    out: dict[str, Any] = {"n": len(records), "metrics": metric_block(benchmark, records, roles, seed)}
    by_subset: dict[str, list[dict]] = {}
    for rec in records:
        by_subset.setdefault(rec["subset"], []).append(rec)
    if len(by_subset) > 1 or (by_subset and next(iter(by_subset)) != benchmark.name):
        out["subsets"] = {s: {"n": len(rs), "metrics": metric_block(benchmark, rs, roles, seed)}
                          for s, rs in sorted(by_subset.items())}
    groups = getattr(benchmark, "groups", None) or {}
    if groups and len(by_subset) > 1:
        out["groups"] = {}
        for group, members in groups.items():
            rs = [r for s in members for r in by_subset.get(s, [])]
            if rs:
                out["groups"][group] = {"n": len(rs), "metrics": metric_block(benchmark, rs, roles, seed)}
    return out


def pairwise_comparisons(bench: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The judged head-to-heads of one benchmark entry that carry win/loss counts."""
    pair = bench.get("pairwise")
    if not isinstance(pair, dict):
        return {}
    return {k: v for k, v in pair.items() if "_vs_" in k and isinstance(v, dict) and "n_wins" in v}


def counted(name: str) -> bool:
    """Comparisons that speak about the evaluated model (not base_vs_reference) enter the verdict."""
    return name.startswith("model_vs_")


def add_pairwise_tests(results: dict[str, Any]) -> None:
    """Give every judged comparison its test against 50 % (``pairwise[NAME]["verdict"]``)."""
    for bench in results.get("benchmarks", {}).values():
        for summary in pairwise_comparisons(bench).values():
            summary["verdict"] = stats.win_rate_test(int(summary.get("n_wins") or 0),
                                                     int(summary.get("n_wins_base") or 0),
                                                     int(summary.get("n_draws") or 0))


def holm_adjust(results: dict[str, Any]) -> None:
    """Add Holm-adjusted p-values across every top-level comparison of the run: each
    benchmark metric's paired delta and each judged win rate against 50 % (one family)."""
    add_pairwise_tests(results)
    refs = [e["delta"] for br in results.get("benchmarks", {}).values()
            for e in br.get("metrics", {}).values() if "delta" in e and e["delta"].get("p_value") is not None]
    refs += [s["verdict"]["delta"] for br in results.get("benchmarks", {}).values()
             for name, s in pairwise_comparisons(br).items()
             if counted(name) and (s["verdict"].get("delta") or {}).get("p_value") is not None]
    if not refs:
        return
    adjusted = stats.holm([d["p_value"] for d in refs])
    for delta, p in zip(refs, adjusted):
        delta["p_value_holm"] = p
