"""The evaluation engine: benchmarks' requests through each model, records, results, report.

One model is in memory at a time (model first, then base). Every benchmark's
requests are deduplicated and handed to the backend in one call, so the backend
can sort and batch them; :func:`run_requests` (harness/answering.py) is the single seam
where the request cache and torchrun sharding plug in.
"""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .answering import CHUNK_BATCHES, run_requests
from .api import BenchmarkConfig, Instance, Model, RunContext
from .cache import RequestCache, model_key
from .errors import HarnessError
from .instances import capped, checked_instances, checked_outputs, format_requests
from .plugins import PLUGIN_ERRORS
from .results import ROLES, SCHEMA_VERSION, benchmark_result, holm_adjust, versions
from .runconfig import RunConfig, config_dict, log
from .rundir import merged
from .runfiles import write_run
from .suite import Selection


class Engine:
    def __init__(self, config: RunConfig, benchmarks: dict[str, Any],
                 load_model: Callable[[str | None, str], Model], plugin_errors: list[dict] | None = None,
                 judge_factory: Callable[[], Model] | None = None,
                 sandbox_factory: Callable[..., Any] | None = None, plugin_of: dict[str, str] | None = None) -> None:
        self.config = config
        self.benchmarks = benchmarks
        self.plugin_of = plugin_of or {}  # benchmark -> the plug-in that registered it (blamed by name)
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
        self.cache: RequestCache | None = None  # opened by run(), on rank 0 only
        self.cache_stats: dict[str, dict[str, dict[str, int]]] = {}  # benchmark -> role -> hits/misses

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
            try:
                insts = checked_instances(bench.instances(self.bench_config(sel)))
            except HarnessError:
                raise  # the user's data or options: one line, before any model loads
            except PLUGIN_ERRORS as exc:  # the plug-in's bug: recorded, the other benchmarks go on
                self._record_error(sel.benchmark, exc, "instances")
                continue
            if not insts:
                raise HarnessError(f"benchmark {sel.benchmark}: no documents selected; check --limit and subsets")
            self.instances[sel.benchmark] = insts
            self.records[sel.benchmark] = [
                {"doc_id": i.doc_id, "subset": i.subset, "prompt": i.prompt, "target": i.target} for i in insts
            ]

    def evaluate_role(self, role: str, spec: str | None) -> dict[str, Any]:
        started = time.perf_counter()
        log(f"[{role}] loading {spec or 'the default model'} ...")
        try:
            model = self.load_model(spec, role)
        except HarnessError:
            raise
        except PLUGIN_ERRORS as exc:  # a backend's bug or an unreadable file: one line; what ran is kept
            if os.environ.get("HARNESS_DEBUG"):
                raise
            raise HarnessError(f"[{role}] {spec or 'the default model'}: loading failed "
                               f"({type(exc).__name__}: {exc}); HARNESS_DEBUG=1 shows where") from None
        log(f"[{role}] {model.info.spec} ({model.info.arch}, {model.info.n_params/1e6:.1f}M params) "
            f"loaded in {time.perf_counter() - started:.1f}s")
        try:
            cache_model = self._cache_key(model, role)
            for sel in self.config.suite:
                name = sel.benchmark
                if name in self.errors:
                    continue
                bench = self.benchmarks[name]
                t0 = time.perf_counter()
                log(f"[{role}] {name}: {len(self.instances[name])} samples")
                stage = None  # None: the model's part; else the plug-in call that failed
                try:
                    forced = self.config.options.get(name, {}).get("prompt_format")
                    if self.config.apply_chat_template:
                        from .instances import chat_requests

                        insts = chat_requests(model, self.instances[name], self.config.system_instruction)
                    else:
                        insts = format_requests(bench, model, self.instances[name], forced)
                    flat = [r for inst in insts for r in inst.requests]
                    answers = run_requests(model, flat, progress=self.config.progress, cache=self.cache,
                                           cache_model=cache_model, dist=self.config.dist,
                                           chunk_size=CHUNK_BATCHES * self.config.batch_size,
                                           stats=self.cache_stats.setdefault(name, {}).setdefault(role, {}))
                    caps = capped(model, insts, name)
                    grouped, pos = [], 0
                    for inst in insts:
                        grouped.append(answers[pos:pos + len(inst.requests)])
                        pos += len(inst.requests)
                    stage = "process"
                    processed = checked_outputs(bench.process_batch(insts, grouped, self.context), len(insts))
                    for rec, out, cap in zip(self.records[name], processed, caps):
                        if cap is not None:  # the prompt won: fewer new tokens than max_tokens asked
                            out["max_tokens_capped"] = cap
                        rec[role] = out
                except HarnessError as exc:
                    self._record_error(name, exc)
                except PLUGIN_ERRORS as exc:  # recorded; the other benchmarks go on
                    self._record_error(name, exc, stage)
                self.timing.setdefault(name, {})[f"{role}_s"] = round(time.perf_counter() - t0, 3)
                self.write(partial=True)
        finally:
            model.close()
        return asdict(model.info)

    def _cache_key(self, model: Model, role: str) -> str | None:
        """The model's request-cache key (None: not cached); with --merge, the same weights as before."""
        old = ((self.config.previous or {}).get("models") or {}).get(role) or {}
        if old.get("fingerprint") and old["fingerprint"] != model.info.fingerprint:
            raise HarnessError(f"--merge: {self.config.out} holds a run of {role} weights {old['fingerprint']}, "
                               f"{model.info.spec} has {model.info.fingerprint or 'no fingerprint'}; use another --out")
        if self.cache is None:
            return None
        args = self.config.base_args if role == "base" else self.config.model_args
        key = model_key(model.info, device=self.config.device, args=args, version=versions().get("harness", ""))
        if key is None:
            log(f"note: {model.info.spec} has no fingerprint; its answers are not cached")
        return key

    def _record_error(self, name: str, exc: BaseException, stage: str | None = None) -> None:
        msg = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        if stage:  # a plug-in call: name the plug-in
            msg = f"plug-in {self.plugin_of.get(name, name)!r} failed in {name}.{stage}(): {msg}"
        self.errors[name] = msg
        log(f"error: {name}: {msg}")
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exception(exc)

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.results = self._skeleton()
        self.prepare()
        if self.config.cache is not None and self.config.dist.is_main:
            self.cache = RequestCache(self.config.cache)
        try:
            return self._run(t0)
        finally:
            if self.cache is not None:
                self.cache.close()

    def _run(self, t0: float) -> dict[str, Any]:
        if self.config.previous is None:  # the directory now says which run it holds (a merge
            self.write(partial=True)      # keeps the old results until a model has been checked)
        if len(self.errors) == len(self.config.suite):  # nothing left to evaluate: load no model
            self.write(partial=False)
            return self.results
        self.results["models"]["model"] = self.evaluate_role("model", self.config.model)
        if self.config.base:
            self.results["models"]["base"] = self.evaluate_role("base", self.config.base)
        for sel in self.config.suite:
            name = sel.benchmark
            if name in self.errors or not self.config.dist.is_main:  # rank 0 judges alone
                continue
            try:
                pair = self.benchmarks[name].postprocess(self.records[name], self.context)
                if pair:
                    self.results["benchmarks"].setdefault(name, {})["pairwise"] = pair
            except HarnessError as exc:
                self._record_error(name, exc)
            except PLUGIN_ERRORS as exc:
                self._record_error(name, exc, "postprocess")
        self.results["timing"]["total_s"] = round(time.perf_counter() - t0, 3)
        self.write(partial=False)
        return self.results

    # -- output ----------------------------------------------------------------
    def _skeleton(self) -> dict[str, Any]:
        c = self.config
        skeleton = {
            "schema_version": SCHEMA_VERSION,
            "harness_version": versions().get("harness", ""),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": c.command,
            "complete": False,
            "config": config_dict(c),
            "models": {"model": {"spec": c.model}, "base": {"spec": c.base} if c.base else None},
            "benchmarks": {},
            "plugin_errors": self.plugin_errors,
            "timing": {},
            "versions": versions(),
        }
        if c.previous is None:
            return skeleton
        return merged(skeleton, c.previous, {s.benchmark: asdict(self.bench_config(s)) for s in c.suite}, c.out)

    def write(self, partial: bool) -> None:
        samples: dict[str, list[dict]] = {}
        for sel in self.config.suite:
            name = sel.benchmark
            bench = self.benchmarks[name]
            entry = self.results["benchmarks"].setdefault(name, {})
            entry.update({"version": bench.version, "description": bench.description,
                          "config": asdict(self.bench_config(sel)), "error": self.errors.get(name),
                          "timing": self.timing.get(name, {})})
            if self.config.cache is not None:
                entry["cache"] = self.cache_stats.get(name, {})
            records = self.records.get(name, [])
            roles = tuple(r for r in self.roles if records and all(r in rec for rec in records))
            if roles and name not in self.errors:
                try:
                    entry.update(benchmark_result(bench, records, roles, self.config.seed))
                except PLUGIN_ERRORS as exc:
                    self._record_error(name, exc, "aggregate")
                    entry["error"] = self.errors[name]
            if records and roles:
                samples[name] = records
        self.results["complete"] = not partial
        if not partial:
            holm_adjust(self.results)
        if self.config.dist.is_main:  # torchrun: rank 0 alone writes
            write_run(Path(self.config.out), self.results, samples)
