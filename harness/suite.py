"""Parsing ``--suite mmlu:abstract_algebra,squad`` into validated benchmark selections."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import HarnessError, did_you_mean


@dataclass
class Selection:
    benchmark: str
    subsets: list[str] | None  # None: the benchmark's defaults


def parse_suite(text: str, benchmarks: dict, options: dict | None = None) -> list[Selection]:
    """Validate every name before any model is loaded, so a typo costs nothing.

    Subsets are checked by each benchmark's ``resolve_subsets`` (given its ``--option`` values),
    so a benchmark may accept open-ended subsets (``lm-eval:<any lm-eval task>``)."""
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
        if name not in chosen:
            order.append(name)
            chosen[name] = [] if subset else None
        if subset:
            current = chosen[name]
            if current is None:  # "mmlu,mmlu:x" means all of mmlu
                continue
            current.append(subset)
        else:
            chosen[name] = None
    if not order:
        raise HarnessError("--suite is empty; name at least one benchmark, e.g. --suite mmlu,squad")
    for name in order:
        asked = chosen[name]
        if asked is not None:
            resolve = getattr(benchmarks[name], "resolve_subsets", None)
            opts = dict((options or {}).get(name, {}))
            chosen[name] = list(resolve(asked, opts)) if resolve else asked
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
