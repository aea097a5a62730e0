"""The evaluation engine: benchmarks' requests through each model, records, results, report.

One model is in memory at a time (model first, then base). Every benchmark's
requests are deduplicated and handed to the backend in one call, so the backend
can sort and batch them; :func:`run_requests` is the single seam where a request
cache and data-parallel sharding plug in later.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .api import BenchmarkConfig, GenerateRequest, Instance, LoglikelihoodRequest, Model, RunContext
from .errors import HarnessError
from .files import atomic_write_json, atomic_write_jsonl
from .results import ROLES, SCHEMA_VERSION, benchmark_result, holm_adjust, versions
from .suite import Selection


@dataclass
class RunConfig:
    suite: list[Selection]
    out: Path
    model: str | None = None  # None: the embedded default model
    base: str | None = None
    limit: int | None = None
    limits: dict[str, int] = field(default_factory=dict)  # per benchmark, overrides limit
    num_fewshot: int | None = None
    seed: int = 1234
    batch_size: int = 8
    device: str = "cpu"
    data_dirs: dict[str, str] = field(default_factory=dict)
    full: bool = False
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> options
    allow_code_execution: bool = False
    allow_weak_sandbox: bool = False
    progress: bool = True
    report: bool = True
    command: list[str] = field(default_factory=list)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_requests(model: Model, requests: list, progress: bool = True) -> list:
    """Answer a mixed list of requests, each unique request once, in the given order."""
    unique: dict[Any, int] = {}
    for req in requests:
        unique.setdefault(req, len(unique))
    keys = list(unique)
    answers: list[Any] = [None] * len(keys)
    ll = [i for i, k in enumerate(keys) if isinstance(k, LoglikelihoodRequest)]
    gen = [i for i, k in enumerate(keys) if isinstance(k, GenerateRequest)]
    if len(ll) + len(gen) != len(keys):
        raise TypeError("a benchmark emitted a request that is neither loglikelihood nor generate")
    if ll:
        for i, res in zip(ll, model.loglikelihood([keys[i] for i in ll], progress=progress)):
            answers[i] = res
    if gen:
        for i, res in zip(gen, model.generate([keys[i] for i in gen], progress=progress)):
            answers[i] = res
    return [answers[unique[r]] for r in requests]


def _format_requests(bench: Any, model: Model, instances: list[Instance], forced: str | None) -> list[Instance]:
    """Instruction benchmarks prompt each model as it expects: a fine-tuned checkpoint in the
    format it was trained on, a chat model (GGUF) through its own chat template; or every
    model in one ``prompt_format`` when the benchmark's options force it."""
    if not bench.instruction_following:
        return instances
    from .prompts import build_prompt

    out = []
    for inst in instances:
        reqs = []
        for r in inst.requests:
            if isinstance(r, GenerateRequest):
                prompt, stops, _ = build_prompt(model, r.prompt, fmt_name=forced)
                r = GenerateRequest(prompt, tuple(dict.fromkeys(r.stop + stops)), r.max_tokens, r.temperature, r.seed)
            reqs.append(r)
        out.append(Instance(inst.doc_id, inst.subset, inst.doc, inst.prompt, inst.target, reqs))
    return out


class Engine:
    def __init__(self, config: RunConfig, benchmarks: dict[str, Any],
                 load_model: Callable[[str | None, str], Model], plugin_errors: list[dict] | None = None,
                 judge_factory: Callable[[], Model] | None = None,
                 sandbox_factory: Callable[..., Any] | None = None) -> None:
        self.config = config
        self.benchmarks = benchmarks
        self.load_model = load_model
        self.plugin_errors = plugin_errors or []
        self.context = RunContext(
            out_dir=config.out, seed=config.seed, allow_code_execution=config.allow_code_execution,
            allow_weak_sandbox=config.allow_weak_sandbox, progress=config.progress,
            judge_factory=judge_factory, sandbox_factory=sandbox_factory,
        )
        self.roles = ROLES if config.base else ROLES[:1]
        self.instances: dict[str, list[Instance]] = {}
        self.records: dict[str, list[dict]] = {}
        self.errors: dict[str, str] = {}
        self.timing: dict[str, dict[str, float]] = {}
        self.results: dict[str, Any] = {}

    # -- phases ----------------------------------------------------------------
    def bench_config(self, sel: Selection) -> BenchmarkConfig:
        c = self.config
        return BenchmarkConfig(subsets=sel.subsets, limit=c.limits.get(sel.benchmark, c.limit),
                               num_fewshot=self._fewshot(sel.benchmark), seed=c.seed,
                               data_dir=c.data_dirs.get(sel.benchmark), full=c.full,
                               options=dict(c.options.get(sel.benchmark, {})))

    def _fewshot(self, name: str) -> int | None:
        """--num-fewshot applies to few-shot benchmarks; zero-shot ones (squad, humaneval) keep 0."""
        n = self.config.num_fewshot
        if n and not getattr(self.benchmarks[name], "default_num_fewshot", 0):
            return None
        return n

    def prepare(self) -> None:
        """Build every benchmark's instances before loading a model: bad data fails fast."""
        for sel in self.config.suite:
            bench = self.benchmarks[sel.benchmark]
            if self.config.num_fewshot and self._fewshot(sel.benchmark) is None:
                log(f"note: {sel.benchmark} is zero-shot; --num-fewshot {self.config.num_fewshot} does not apply to it")
            if bench.requires_code_execution:  # refuses now, not after generating, without opt-in or bwrap
                self.context.sandbox(what=sel.benchmark)
            forced = self.config.options.get(sel.benchmark, {}).get("prompt_format")
            if forced and bench.instruction_following:
                from .prompts import get_format

                get_format(str(forced))  # an unknown format fails now, not after a model loaded
            insts = list(bench.instances(self.bench_config(sel)))
            if not insts:
                raise HarnessError(f"benchmark {sel.benchmark}: no documents selected; check --limit and subsets")
            self.instances[sel.benchmark] = insts
            self.records[sel.benchmark] = [
                {"doc_id": i.doc_id, "subset": i.subset, "prompt": i.prompt, "target": i.target} for i in insts
            ]

    def evaluate_role(self, role: str, spec: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        log(f"[{role}] loading {spec or 'the default model'} ...")
        model = self.load_model(spec, role)
        log(f"[{role}] {model.info.spec} ({model.info.arch}, {model.info.n_params/1e6:.1f}M params) "
            f"loaded in {time.perf_counter() - started:.1f}s")
        try:
            for sel in self.config.suite:
                name = sel.benchmark
                if name in self.errors:
                    continue
                bench = self.benchmarks[name]
                t0 = time.perf_counter()
                log(f"[{role}] {name}: {len(self.instances[name])} samples")
                try:
                    forced = self.config.options.get(name, {}).get("prompt_format")
                    insts = _format_requests(bench, model, self.instances[name], forced)
                    flat = [r for inst in insts for r in inst.requests]
                    answers = run_requests(model, flat, progress=self.config.progress)
                    grouped, pos = [], 0
                    for inst in insts:
                        grouped.append(answers[pos:pos + len(inst.requests)])
                        pos += len(inst.requests)
                    processed = bench.process_batch(insts, grouped, self.context)
                    for rec, out in zip(self.records[name], processed):
                        rec[role] = out
                except Exception as exc:  # noqa: BLE001 - recorded; the other benchmarks go on
                    self._record_error(name, exc)
                self.timing.setdefault(name, {})[f"{role}_s"] = round(time.perf_counter() - t0, 3)
                self.write(partial=True)
        finally:
            model.close()
        return asdict(model.info)

    def _record_error(self, name: str, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        self.errors[name] = msg
        log(f"error: {name}: {msg}")
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exception(exc)

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.results = self._skeleton()
        self.prepare()
        self.results["models"]["model"] = self.evaluate_role("model", self.config.model)
        if self.config.base:
            self.results["models"]["base"] = self.evaluate_role("base", self.config.base)
        for sel in self.config.suite:
            name = sel.benchmark
            if name in self.errors:
                continue
            try:
                pair = self.benchmarks[name].postprocess(self.records[name], self.context)
                if pair:
                    self.results["benchmarks"].setdefault(name, {})["pairwise"] = pair
            except Exception as exc:  # noqa: BLE001
                self._record_error(name, exc)
        self.results["timing"]["total_s"] = round(time.perf_counter() - t0, 3)
        self.write(partial=False)
        return self.results

    # -- output ----------------------------------------------------------------
    def _skeleton(self) -> dict[str, Any]:
        c = self.config
        return {
            "schema_version": SCHEMA_VERSION,
            "harness_version": versions().get("harness", ""),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": c.command,
            "complete": False,
            "config": {"suite": [asdict(s) for s in c.suite], "limit": c.limit, "limits": c.limits, "num_fewshot": c.num_fewshot,
                       "seed": c.seed, "batch_size": c.batch_size, "device": c.device, "full": c.full,
                       "data_dirs": c.data_dirs, "options": c.options},
            "models": {"model": {"spec": c.model}, "base": {"spec": c.base} if c.base else None},
            "benchmarks": {},
            "plugin_errors": self.plugin_errors,
            "timing": {},
            "versions": versions(),
        }

    def write(self, partial: bool) -> None:
        out = Path(self.config.out)
        for sel in self.config.suite:
            name = sel.benchmark
            bench = self.benchmarks[name]
            entry = self.results["benchmarks"].setdefault(name, {})
            entry.update({"version": bench.version, "description": bench.description,
                          "config": asdict(self.bench_config(sel)), "error": self.errors.get(name),
                          "timing": self.timing.get(name, {})})
            records = self.records.get(name, [])
            roles = tuple(r for r in self.roles if records and all(r in rec for rec in records))
            if roles and name not in self.errors:
                entry.update(benchmark_result(bench, records, roles, self.config.seed))
            if records and roles:
                atomic_write_jsonl(out / "samples" / f"{name}.jsonl", records)
        self.results["complete"] = not partial
        if not partial:
            holm_adjust(self.results)
        atomic_write_json(out / "results.json", self.results)
