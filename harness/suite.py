"""Parsing ``--suite mmlu:abstract_algebra,squad`` into validated benchmark selections."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import HarnessError, did_you_mean


@dataclass
class Selection:
    benchmark: str
    subsets: list[str] | None  # None: the benchmark's defaults


def parse_suite(text: str, benchmarks: dict) -> list[Selection]:
    """Validate every name before any model is loaded, so a typo costs nothing."""
    order: list[str] = []
    chosen: dict[str, list[str] | None] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, subset = part.partition(":")
        if name not in benchmarks:
            known = ", ".join(sorted(benchmarks)) or "none installed"
            raise HarnessError(
                f"--suite: unknown benchmark {name!r}{did_you_mean(name, benchmarks)}; "
                f"installed: {known} (see `harness tasks`)"
            )
        bench = benchmarks[name]
        if name not in chosen:
            order.append(name)
            chosen[name] = [] if subset else None
        if subset:
            valid = list(bench.subsets) + list(getattr(bench, "groups", {}) or {})
            if subset not in valid:
                raise HarnessError(
                    f"--suite: {name} has no subset {subset!r}{did_you_mean(subset, valid)}; "
                    f"`harness tasks {name}` lists them"
                )
            group = (getattr(bench, "groups", {}) or {}).get(subset)
            current = chosen[name]
            if current is None:  # "mmlu,mmlu:x" means all of mmlu
                continue
            for s in group or [subset]:
                if s not in current:
                    current.append(s)
        else:
            chosen[name] = None
    if not order:
        raise HarnessError("--suite is empty; name at least one benchmark, e.g. --suite mmlu,squad")
    return [Selection(name, chosen[name]) for name in order]


def parse_data_dirs(values: tuple[str, ...], benchmarks: dict) -> dict[str, str]:
    """``--data-dir mmlu=path`` (repeatable) into ``{"mmlu": "path"}``."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not path:
            raise HarnessError(f"--data-dir {value!r}: expected BENCHMARK=DIR, e.g. --data-dir mmlu=data/mmlu")
        if name not in benchmarks:
            raise HarnessError(f"--data-dir: unknown benchmark {name!r}{did_you_mean(name, benchmarks)}")
        out[name] = path
    return out
