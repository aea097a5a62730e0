"""The benchmark API that plug-ins implement.

A benchmark turns documents into :class:`Instance` objects holding requests, then
turns the model's responses into per-sample scores, then aggregates those.
The engine owns everything in between (batching, both models, records, files),
so a benchmark is small and testable without a model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .context import RunContext
from .requests import Instance


@dataclass
class BenchmarkConfig:
    """Per-run options the engine hands to a benchmark."""

    subsets: list[str] | None = None  # None: the benchmark's defaults
    limit: int | float | None = None  # per subset, as lm-eval's --limit (a float < 1: a fraction)
    num_fewshot: int | None = None  # None: the benchmark's default
    seed: int = 1234
    data_dir: str | None = None  # local copy of the full data set
    full: bool = False  # use the full data set (datasets / data_dir) not the bundled subset
    options: dict[str, Any] = field(default_factory=dict)  # benchmark-specific


@dataclass
class Metric:
    """How one metric is aggregated and compared.

    ``kind`` picks the paired significance test in comparisons: ``"binary"``
    (0/1 per sample: McNemar exact) or ``"continuous"`` (paired bootstrap).
    """

    name: str
    kind: str = "binary"
    higher_is_better: bool = True
    description: str = ""


class Benchmark(ABC):
    """Base class for a benchmark plug-in.

    Subclasses set the class attributes and implement :meth:`instances` and
    :meth:`process`. :meth:`aggregate` defaults to the mean of each metric.
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    metrics: Sequence[Metric] = ()
    subsets: Sequence[str] = ()  # all addressable subsets ("mmlu:<subset>")
    default_subsets: Sequence[str] | None = None  # None: all of them
    default_num_fewshot: int = 0
    options: dict[str, str] = {}  # option name -> help, shown by `harness tasks`
    groups: dict[str, list[str]] = {}  # group name -> subsets (e.g. MMLU categories)
    instruction_following: bool = False  # generate prompts are instructions: each model gets its own format
    requires_code_execution: bool = False  # runs generated code: needs --allow-code-execution, checked up front

    def resolve_subsets(self, names: list[str], options: dict[str, Any]) -> list[str]:
        """Check the subsets ``--suite name:a,name:b`` asked for and return the ones to run.

        Default: each name must be in :attr:`subsets` or :attr:`groups` (a group expands to its
        members). Override for open-ended subsets (lm-eval's task names); ``options`` are this
        benchmark's ``--option`` values. Raise :class:`HarnessError` naming a bad one.
        """
        from ..errors import HarnessError, did_you_mean

        groups = dict(self.groups or {})
        valid = list(self.subsets) + list(groups)
        out: list[str] = []
        for name in names:
            if name not in valid:
                raise HarnessError(f"--suite: {self.name} has no subset {name!r}{did_you_mean(name, valid)}; "
                                   f"`harness tasks {self.name}` lists them")
            out += [s for s in groups.get(name) or [name] if s not in out]
        return out

    @abstractmethod
    def instances(self, config: BenchmarkConfig) -> Iterable[Instance]:
        """Yield the instances to evaluate, at most ``config.limit`` per subset."""

    @abstractmethod
    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        """Score one instance from the responses to its requests (same order).

        Returns ``{"answer": str, "scores": {metric: float}, **extra}``; extra keys
        (e.g. ``"loglikelihoods"``) are kept in the sample records.
        """

    def process_batch(
        self, instances: list[Instance], responses: list[list], context: RunContext
    ) -> list[dict[str, Any]]:
        """Score many instances at once (override to parallelise, e.g. sandboxed code runs)."""
        return [self.process(i, r) for i, r in zip(instances, responses)]

    def postprocess(self, records: list[dict[str, Any]], context: RunContext) -> dict[str, Any] | None:
        """Called once after every model answered; ``records[i]`` holds ``"model"`` and,
        with a base, ``"base"`` entries. May add per-record fields (a judge's verdict)
        and return results that belong to the pair rather than to one model
        (win rates); those are stored under ``"pairwise"`` in results.json.
        """
        return None

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """Aggregate per-sample ``scores`` into benchmark-level values (default: means).

        Override for metrics that are not means (e.g. SQuAD v2's best threshold).
        Standard errors and intervals are added by the engine for mean metrics.
        """
        out: dict[str, float] = {}
        for m in self.metrics:
            vals = [r["scores"][m.name] for r in records if m.name in r["scores"]]
            if vals:
                out[m.name] = sum(vals) / len(vals)
        return out

    def score_files(self, context: RunContext, **kwargs: Any) -> dict[str, Any]:
        """`harness score NAME --key value ...`: score predictions produced elsewhere (optional).

        ``kwargs`` are the command-line options named in :attr:`score_options` (strings);
        ``context`` carries the code-execution opt-in and :meth:`RunContext.sandbox`.
        """
        raise NotImplementedError(f"benchmark {self.name!r} has no `harness score` mode")

    score_options: dict[str, str] = {}  # option -> help for `harness score`
