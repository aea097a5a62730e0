"""Reading a run directory and turning results.json into rows the templates show.

Why a separate layer: templates should only lay out numbers, never decide what is
"better" or "significant". Those decisions (direction from ``higher_is_better``,
Holm-adjusted significance, a fallback paired test when results.json has no delta)
live here, where tests can check them without parsing HTML.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import stats
from ..errors import HarnessError
from ..files import iter_jsonl
from .schema import check_record, check_results

ALPHA = 0.05
SUPPORTED_SCHEMA = 1


@dataclass
class Run:
    """One run directory: its results and its per-benchmark sample records."""

    dir: Path
    results: dict[str, Any]
    samples: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def has_base(self) -> bool:
        return bool(self.results.get("models", {}).get("base"))

    def model_info(self, role: str) -> dict[str, Any]:
        return self.results.get("models", {}).get(role) or {}


def load_results(run_dir: Path) -> dict[str, Any]:
    """results.json, or a one-line HarnessError naming the file and what to do."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise HarnessError(f"{path}: not found; pass a run directory written by `harness run`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path}: cannot be read ({exc}); re-run the evaluation") from exc
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); "
                           f"re-run the evaluation") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise HarnessError(f"{path}: not a harness results file (no \"benchmarks\" object)")
    version = data.get("schema_version", SUPPORTED_SCHEMA)
    if not isinstance(version, int) or isinstance(version, bool):
        raise HarnessError(f"{path}: schema_version {version!r} is not an integer; not a harness results file")
    if version > SUPPORTED_SCHEMA:
        raise HarnessError(f"{path}: schema_version {version!r} is newer than this harness reads "
                           f"({SUPPORTED_SCHEMA}); upgrade harness")
    check_results(data, str(path))
    return data


def load_samples(path: Path) -> list[dict]:
    """One samples/<bench>.jsonl file; a damaged line is an error naming file and line."""
    try:
        raw = Path(path).read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise HarnessError(f"{path}: cannot be read ({exc.strerror}); re-run the evaluation") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise HarnessError(f"{path} line {line}: not UTF-8 text; re-run the evaluation") from None
    return [check_record(rec, f"{path} line {n}")
            for n, rec in iter_jsonl(text.split("\n"), str(path), "re-run the evaluation")]


def load_run(run_dir: Path, with_samples: bool = True) -> Run:
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    run = Run(run_dir, results)
    if with_samples:
        sample_dir = run_dir / "samples"
        for name in results["benchmarks"]:
            path = sample_dir / f"{name}.jsonl"
            if path.is_file():
                run.samples[name] = load_samples(path)
    return run


def num(x: Any) -> float | None:
    """A finite float or None: results.json writes NaN as null and plug-ins may omit values."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def interval(entry: dict | None) -> tuple[float | None, float | None]:
    ci = (entry or {}).get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return num(ci[0]), num(ci[1])
    return None, None


@dataclass
class Row:
    """One benchmark × metric comparison as the summary table shows it."""

    bench: str
    metric: str
    kind: str
    higher_is_better: bool
    n: int | None
    model: dict | None
    base: dict | None
    delta: dict | None
    p_adj: float | None = None
    scope: str = "overall"  # overall | subset | group
    name: str = ""  # subset/group name
    mde: float | None = None  # minimum detectable effect at this n (report/power.py)

    @property
    def delta_value(self) -> float | None:
        return num((self.delta or {}).get("value"))

    @property
    def better(self) -> bool | None:
        """Whether the model moved in the good direction (None: no change or no base)."""
        d = self.delta_value
        if d is None or d == 0:
            return None
        return (d > 0) == self.higher_is_better

    @property
    def significant(self) -> bool:
        p = self.p_adj if self.p_adj is not None else num((self.delta or {}).get("p_value"))
        return p is not None and p < ALPHA

    @property
    def verdict(self) -> str:
        if self.delta is None:
            return "none"
        if not self.significant or self.better is None:
            return "ns"
        return "better" if self.better else "worse"


def _row(bench: str, metric: str, entry: dict, n: Any, scope: str = "overall", name: str = "") -> Row:
    return Row(bench=bench, metric=metric, kind=str(entry.get("kind", "continuous")),
               higher_is_better=bool(entry.get("higher_is_better", True)),
               n=n if isinstance(n, int) else None, model=entry.get("model"), base=entry.get("base"),
               delta=entry.get("delta") if isinstance(entry.get("delta"), dict) else None,
               scope=scope, name=name)


def fill_missing_deltas(run: Run) -> None:
    """Compute the paired test from the samples where results.json has both scores but no delta.

    Partial runs (the engine writes results.json as it goes) and older writers may lack
    it; the samples hold everything needed, so the report need not show a blank.
    """
    if not run.has_base:
        return
    seed = int(run.results.get("config", {}).get("seed") or 0)
    for name, bench in run.results["benchmarks"].items():
        records = [r for r in run.samples.get(name, []) if isinstance(r.get("model"), dict)
                   and isinstance(r.get("base"), dict)]
        for metric, entry in (bench.get("metrics") or {}).items():
            if not isinstance(entry, dict) or "delta" in entry or not entry.get("base") or not records:
                continue
            try:
                m = [float(r["model"]["scores"][metric]) for r in records]
                b = [float(r["base"]["scores"][metric]) for r in records]
                delta = stats.paired_test(m, b, str(entry.get("kind", "continuous")), seed=seed)
            except (KeyError, TypeError, ValueError):
                continue  # not a per-sample metric (e.g. a best-threshold score)
            delta["source"] = "computed by the report from samples"
            entry["delta"] = delta


def summary_rows(run: Run) -> tuple[list[Row], str]:
    """Top-level rows of every benchmark, with adjusted p-values and a note saying how.

    The engine stores ``p_value_holm``; when it is missing and there are several
    comparisons the report adjusts them itself, because with many rows some will look
    significant by chance.
    """
    rows: list[Row] = []
    for bench, res in run.results["benchmarks"].items():
        for metric, entry in (res.get("metrics") or {}).items():
            if isinstance(entry, dict):
                rows.append(_row(bench, metric, entry, res.get("n")))
    return rows, adjust(rows)


def adjust(rows: list[Row], what: str = "") -> str:
    """Holm-adjust the rows' tests as one family (the engine's ``p_value_holm`` when every row has
    it) and say so in a note; ``what`` names extra kinds of test in the family."""
    tested = [r for r in rows if num((r.delta or {}).get("p_value")) is not None]
    stored = [num(r.delta.get("p_value_holm")) for r in tested]  # type: ignore[union-attr]
    if len(tested) > 1:
        adjusted = stored if all(p is not None for p in stored) else stats.holm(
            [num(r.delta.get("p_value")) for r in tested])  # type: ignore[union-attr]
        for r, p in zip(tested, adjusted):
            r.p_adj = p
        return (f"p-values are Holm–Bonferroni adjusted across the {len(tested)} comparisons on this page"
                f"{f' ({what})' if what else ''}; “significant” means adjusted p < {ALPHA}.")
    if tested:
        tested[0].p_adj = None
        return (f"One comparison{f' ({what})' if what else ''}, so no multiple-testing adjustment; "
                f"“significant” means p < {ALPHA}.")
    return ""


def slice_rows(bench: str, res: dict, key: str) -> list[Row]:
    """Rows for the subsets or groups of one benchmark (no adjustment: exploratory)."""
    out = []
    for name, sub in sorted((res.get(key) or {}).items()):
        if isinstance(sub, dict):
            for metric, entry in (sub.get("metrics") or {}).items():
                if isinstance(entry, dict):
                    out.append(_row(bench, metric, entry, sub.get("n"), key.rstrip("s"), name))
    return out


def primary_metric(res: dict) -> tuple[str | None, dict]:
    """The metric that decides a sample's status: the first binary one, else the first."""
    metrics = {k: v for k, v in (res.get("metrics") or {}).items() if isinstance(v, dict)}
    for name, entry in metrics.items():
        if entry.get("kind") == "binary":
            return name, entry
    for name, entry in metrics.items():
        return name, entry
    return None, {}


def sample_status(rec: dict, metric: str | None, higher_is_better: bool = True) -> str:
    """One letter per sample: I improved, R regressed, B both right, W both wrong
    (with a base); C correct, X wrong (model only); ? no score."""
    def score(role: str) -> float | None:
        part = rec.get(role)
        return num(((part or {}).get("scores") or {}).get(metric)) if isinstance(part, dict) else None

    m = score("model")
    if m is None:
        return "?"
    if not isinstance(rec.get("base"), dict):
        return "C" if (m >= 0.5) == higher_is_better else "X"
    b = score("base")
    if b is None:
        return "?"
    if abs(m - b) > 1e-12:
        return "I" if (m > b) == higher_is_better else "R"
    return "B" if (m >= 0.5) == higher_is_better else "W"


STATUS_LABELS = {"I": "improved", "R": "regressed", "B": "both right", "W": "both wrong",
                 "C": "correct", "X": "wrong", "T": "tie", "?": "no score"}


def fmt(x: Any, digits: int = 4) -> str:
    v = num(x)
    return "–" if v is None else f"{v:.{digits}f}"


def fmt_signed(x: Any, digits: int = 4) -> str:
    v = num(x)
    if v is None:
        return "–"
    return f"{0.0:.{digits}f}" if v == 0 else f"{v:+.{digits}f}"  # no change: no sign, no arrow


def fmt_p(x: Any) -> str:
    v = num(x)
    if v is None:
        return "–"
    return f"{v:.3g}" if v >= 1e-4 else f"{v:.2e}"


def target_text(target: Any) -> str:
    """Gold answers as one string: several acceptable answers are joined with " | "."""
    if isinstance(target, list):
        return " | ".join(str(t) for t in target) if target else "(no answer)"
    if target is None or target == "":
        return "(no answer)"
    return str(target)


def is_no_answer(target: Any) -> bool:
    """SQuAD v2 unanswerable questions have no gold answer (empty string or list)."""
    if isinstance(target, list):
        return all(not str(t).strip() for t in target)
    return target is None or not str(target).strip()
