"""lm-eval's tasks as one harness benchmark: ``--suite lm-eval:hellaswag,lm-eval:arc_easy``.

lm-eval defines the prompts, few-shot examples, filters and metrics (its own TaskManager,
``build_all_requests``, ``apply_filters``, ``process_results`` and ``aggregation``); harness
runs the requests through its engine and models, so every lm-eval task gets harness's
model-vs-base comparison, paired tests, samples and report. Subsets are lm-eval task, group
or tag names, resolved by lm-eval itself; ``--include-path DIR`` adds local YAML tasks and
harness's own ``tasks/*.yaml`` are always included.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    Instance,
    LoglikelihoodRequest,
    Metric,
    RunContext,
    hookimpl,
    messages_to_chatml,
)
from harness.api.data import bundled

from .tasks import load_tasks, manager_for

BINARY = {0.0, 1.0}


def to_request(req: Any, repeat: int) -> LoglikelihoodRequest | GenerateRequest:
    """One lm-eval ``Instance`` as a harness request (lm-eval's hf backend semantics)."""
    if req.request_type == "loglikelihood":
        ctx, cont = req.args[0], req.args[1]
        return LoglikelihoodRequest(ctx, cont)
    if req.request_type == "loglikelihood_rolling":  # the whole text, conditioned on the prefix token
        return LoglikelihoodRequest("", req.args[0])
    if req.request_type == "generate_until":
        ctx, kwargs = req.args[0], dict(req.args[1] or {})
        until = kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        sample = bool(kwargs.get("do_sample")) and float(kwargs.get("temperature", 1.0) or 0) > 0
        return GenerateRequest(ctx, stop=tuple(until), max_tokens=int(kwargs.get("max_gen_toks", 256)),
                               temperature=float(kwargs.get("temperature", 1.0)) if sample else 0.0,
                               seed=repeat if sample else None)
    raise ValueError(f"lm-eval request type {req.request_type!r} is not supported")


def from_response(req: Any, resp: Any) -> Any:
    """A harness response in the shape lm-eval's filters and ``process_results`` expect."""
    if req.request_type == "loglikelihood":
        return (resp.logprob, resp.is_greedy)
    if req.request_type == "loglikelihood_rolling":
        return resp.logprob
    return resp


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


class LmEval(Benchmark):
    name = "lm-eval"
    version = "1"
    description = "lm-eval's tasks (lm-eval:TASK|GROUP): its prompts, filters and metrics; local YAML via --include-path"
    default_num_fewshot = -1  # each task's own; nonzero, so --num-fewshot reaches the tasks
    options = {"include_path": "directories of lm-eval YAML tasks (--include-path DIR)",
               "system_instruction": "lm-eval's --system_instruction, prepended to every context",
               "apply_chat_template": "build lm-eval's chat contexts (--apply-chat-template sets it)"}

    def __init__(self) -> None:
        self.metrics: list[Metric] = []
        self._tasks: dict[str, Any] = {}
        self._requests: dict[tuple[str, int], list[Any]] = {}

    @property
    def subsets(self) -> list[str]:  # type: ignore[override]
        """The tasks harness ships (``tasks/*.yaml``); any lm-eval task name is accepted too."""
        import yaml

        out = []
        for f in sorted(bundled().iterdir(), key=lambda p: p.name):
            if f.name.endswith(".yaml"):
                try:
                    name = (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("task")
                except yaml.YAMLError:
                    name = None
                if isinstance(name, str):
                    out.append(name)
        return out

    def resolve_subsets(self, names: list[str], options: dict[str, Any]) -> list[str]:
        manager_for(names, options)  # raises a one-line error for a name lm-eval does not know
        return list(dict.fromkeys(names))

    def instances(self, config: BenchmarkConfig):
        from lm_eval.evaluator_utils import get_sample_size

        names = config.subsets or self.subsets
        self._tasks = load_tasks(manager_for(names, config.options), names)
        system = config.options.get("system_instruction")
        chat = bool(config.options.get("apply_chat_template"))  # ChatML turns; the engine renders them per model
        for tname, task in self._tasks.items():
            if config.num_fewshot is not None and config.num_fewshot >= 0:
                task.set_config(key="num_fewshot", value=config.num_fewshot)
            task.build_all_requests(limit=get_sample_size(task, config.limit), rank=0, world_size=1,
                                    system_instruction=system, apply_chat_template=chat,
                                    chat_template=messages_to_chatml if chat else None)
            by_doc: dict[int, list[Any]] = defaultdict(list)
            for req in task.instances:
                by_doc[req.doc_id].append(req)
            for doc_id, reqs in sorted(by_doc.items()):
                reqs.sort(key=lambda r: r.idx)
                self._requests[(tname, doc_id)] = reqs
                hreqs = [to_request(r, k) for r in reqs for k in range(r.repeats or 1)]
                target = task.doc_to_target(reqs[0].doc)
                if task.OUTPUT_TYPE == "multiple_choice" and isinstance(target, int):
                    choices = task.doc_to_choice(reqs[0].doc)
                    target = choices[target] if 0 <= target < len(choices) else str(target)
                yield Instance(f"{tname}/{doc_id}", tname, {"task": tname, "doc_id": doc_id}, reqs[0].args[0],
                               target if isinstance(target, (str, list)) else str(target), hreqs)

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        return self.process_batch([instance], [responses], RunContext())[0]

    def process_batch(self, instances: list[Instance], responses: list[list], context: RunContext) -> list[dict]:
        for inst, resps in zip(instances, responses):  # lm-eval's resps, per request over its repeats
            pos = 0
            for req in self._requests[(inst.doc["task"], inst.doc["doc_id"])]:
                n = req.repeats or 1
                req.resps = [from_response(req, r) for r in resps[pos:pos + n]]
                req.filtered_resps = {}
                pos += n
        by_task: dict[str, list[Any]] = defaultdict(list)
        for inst in instances:
            by_task[inst.doc["task"]] += self._requests[(inst.doc["task"], inst.doc["doc_id"])]
        for tname, reqs in by_task.items():  # lm-eval's apply_filters, on these instances only
            for ensemble in getattr(self._tasks[tname], "_filters", []):
                ensemble.apply(reqs)
        out = [self._score(inst) for inst in instances]
        self._update_metrics(out)
        return out

    def _score(self, inst: Instance) -> dict[str, Any]:
        tname, doc_id = inst.doc["task"], inst.doc["doc_id"]
        task, reqs = self._tasks[tname], self._requests[(tname, doc_id)]
        doc = reqs[0].doc
        scores: dict[str, float] = {}
        items: dict[str, Any] = {}
        filtered: dict[str, Any] = {}
        for key in reqs[0].filtered_resps:
            fresps = [r.filtered_resps[key] for r in reqs]
            filtered[key] = fresps
            for metric, value in task.process_results(doc, fresps).items():
                name = metric if key == "none" else f"{metric},{key}"
                if isinstance(value, (bool, int, float)):
                    scores[name] = float(value)
                else:
                    items[name] = value
        first = next(iter(filtered.values()), [])
        if task.OUTPUT_TYPE == "multiple_choice" and first:
            lls = [x[0] if isinstance(x, tuple) else x for x in first]
            choices = task.doc_to_choice(doc)
            best = max(range(len(lls)), key=lls.__getitem__)
            answer = choices[best] if best < len(choices) else str(best)
        else:
            answer = first[0] if first and isinstance(first[0], str) else json.dumps(_jsonable(first))
        return {"answer": answer, "scores": scores, "items": _jsonable(items) if items else {},
                "lm_eval": {"task": tname, "doc_id": doc_id, "doc": _jsonable(doc),
                            "arguments": _jsonable([r.args for r in reqs]),
                            "resps": _jsonable([r.resps for r in reqs]),
                            "filtered_resps": _jsonable(filtered)}}

    def _update_metrics(self, outputs: list[dict]) -> None:
        """Metrics come from the tasks: binary when every value is 0/1 (McNemar), else continuous."""
        known = {m.name: m for m in self.metrics}
        hib: dict[str, bool] = {}
        for task in self._tasks.values():
            hib.update(task.higher_is_better() or {})
        for out in outputs:
            for name, value in list(out["scores"].items()) + [(k, None) for k in out["items"]]:
                base = name.split(",")[0]
                kind = "binary" if value in BINARY else "continuous"
                m = known.get(name)
                if m is None:
                    known[name] = Metric(name, kind, bool(hib.get(base, True)))
                elif kind == "continuous" and m.kind == "binary":
                    m.kind = "continuous"
        self.metrics = list(known.values())

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """One task: lm-eval's own aggregation per metric. Several: the mean over every sample
        (lm-eval's group score weighted by size) for metrics scored per sample."""
        tasks = {r["lm_eval"]["task"] for r in records}
        out: dict[str, float] = {}
        for m in self.metrics:
            vals = [r["scores"][m.name] for r in records if m.name in r["scores"]]
            items = [r["items"][m.name] for r in records if m.name in r.get("items", {})]
            if len(tasks) == 1 and (vals or items):
                agg = self._tasks[next(iter(tasks))].aggregation().get(m.name.split(",")[0])
                if agg is not None:
                    out[m.name] = float(agg(vals or items))
                    continue
            if vals:
                out[m.name] = sum(vals) / len(vals)
        return out

    def task_info(self) -> dict[str, Any]:
        """lm-eval's configs, versions and n-shot per task (for the lm-eval results layout)."""
        info: dict[str, Any] = {"configs": {}, "versions": {}, "n-shot": {}, "higher_is_better": {}}
        for name, task in self._tasks.items():
            info["configs"][name] = _jsonable(task.dump_config())
            info["versions"][name] = (task.config.metadata or {}).get("version", getattr(task, "VERSION", None))
            info["n-shot"][name] = task.config.num_fewshot or 0
            info["higher_is_better"][name] = dict(task.higher_is_better() or {})
        return info


@hookimpl
def register_benchmarks(register):
    register(LmEval())
