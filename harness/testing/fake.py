"""A model-free :class:`harness.api.Model` and :func:`check_benchmark`, the contract check a plug-in's
tests run (instances, requests, processing, aggregation) with clear messages."""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    Instance,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Metric,
    Model,
    ModelInfo,
    RunContext,
)


class FakeModel(Model):
    """Deterministic stand-in for a model: scores are a hash of the text, so two fakes disagree.

    ``loglikelihood`` returns ``LoglikelihoodResult(logprob, False)`` with ``logprob`` in
    ``[-5, 0]`` from a hash of ``salt + context + "|" + continuation``; ``generate`` returns a
    short ``"answerN"`` string from a hash of ``salt + prompt``. ``calls`` records the size of
    every batch the model was asked (the engine asks each unique request once). ``info.fingerprint``
    is ``salt`` (``"0"`` without one). Subclass it to script answers::

        class AlwaysB(FakeModel):
            def generate(self, requests, progress=True):
                self.calls.append(len(requests))
                return ["B" for _ in requests]
    """

    def __init__(self, spec: str = "fake", salt: str = "") -> None:
        self.info = ModelInfo(spec=spec, backend="fake", arch="fake", fingerprint=salt or "0", n_params=1)
        self.salt = salt
        self.calls: list[int] = []

    def _h(self, text: str) -> float:
        return int(hashlib.sha256((self.salt + text).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    def loglikelihood(self, requests: list[LoglikelihoodRequest], progress: bool = True) -> list[LoglikelihoodResult]:
        self.calls.append(len(requests))
        return [LoglikelihoodResult(-self._h(r.context + "|" + r.continuation) * 5, False) for r in requests]

    def generate(self, requests: list[GenerateRequest], progress: bool = True) -> list[str]:
        self.calls.append(len(requests))
        return [f"answer{int(self._h(r.prompt) * 3)}" for r in requests]



class BenchmarkContractError(AssertionError):
    """A benchmark breaks the plug-in contract (:func:`check_benchmark`); the message says how."""


def _fail(bench: Any, msg: str) -> None:
    raise BenchmarkContractError(f"{type(bench).__name__} ({getattr(bench, 'name', '') or '?'}): {msg}")


def check_benchmark(bench: Any, config: BenchmarkConfig | None = None, limit: int = 3,
                    model: Model | None = None, base: Model | None = None) -> dict[str, Any]:
    """Run ``bench`` through the contract the engine relies on, with fake models; return a summary.

    Checks the class attributes (``name``, ``metrics``, ``subsets``), that ``instances`` yields
    :class:`Instance` objects (unique ``doc_id``, a declared subset, at most ``limit`` per subset,
    requests that are ``LoglikelihoodRequest`` / ``GenerateRequest``), that ``process_batch`` (hence
    ``process``) returns one JSON-serialisable ``{"answer": str, "scores": {metric: float}}`` per
    instance with only declared metrics, and that ``aggregate`` returns floats for every declared
    metric; ``postprocess`` gets a model and a base. Raises :class:`BenchmarkContractError` (an
    ``AssertionError``, so pytest shows it) naming the benchmark and what to fix.
    """
    import math

    if not isinstance(bench, Benchmark):
        _fail(bench, "is not an instance of a harness.api.Benchmark subclass; register Benchmark instances")
    if not isinstance(bench.name, str) or not bench.name.strip():
        _fail(bench, "has no name; set the class attribute name = 'my_bench' (what --suite uses)")
    if any(c in bench.name for c in ",: "):
        _fail(bench, f"name {bench.name!r} contains ',', ':' or a space, which --suite cannot address")
    metrics = tuple(bench.metrics or ())
    if not metrics:
        _fail(bench, "declares no metrics; set metrics = (Metric('acc'),)")
    for m in metrics:
        if not isinstance(m, Metric):
            _fail(bench, f"metrics holds {m!r}, not a harness.api.Metric")
        if m.kind not in ("binary", "continuous"):
            _fail(bench, f"metric {m.name!r} has kind {m.kind!r}; use 'binary' or 'continuous'")
    declared = [m.name for m in metrics]
    if len(set(declared)) != len(declared):
        _fail(bench, f"metrics declares a name twice: {declared}")
    subsets = tuple(bench.subsets or ())
    if isinstance(bench.subsets, str) or not all(isinstance(s, str) for s in subsets):
        _fail(bench, f"subsets must be a tuple of strings, not {bench.subsets!r}")
    config = config or BenchmarkConfig(limit=limit)
    try:
        produced = bench.instances(config)
        instances = list(produced)
    except TypeError as e:
        _fail(bench, f"instances(config) did not return an iterable of Instance ({e})")
    if not instances:
        _fail(bench, f"instances(BenchmarkConfig(limit={config.limit})) yielded nothing")
    seen: dict[str, int] = {}
    per_subset: dict[str, int] = {}
    for inst in instances:
        if not isinstance(inst, Instance):
            _fail(bench, f"instances yielded a {type(inst).__name__}, not a harness.api.Instance")
        if not isinstance(inst.doc_id, str):
            _fail(bench, f"doc_id {inst.doc_id!r} is a {type(inst.doc_id).__name__}; use str(...)")
        seen[inst.doc_id] = seen.get(inst.doc_id, 0) + 1
        if seen[inst.doc_id] > 1:
            _fail(bench, f"doc_id {inst.doc_id!r} appears twice; doc ids must be unique")
        if subsets and inst.subset not in subsets:
            _fail(bench, f"instance {inst.doc_id!r} has subset {inst.subset!r}, not one of subsets {subsets}")
        per_subset[inst.subset] = per_subset.get(inst.subset, 0) + 1
        if config.limit is not None and per_subset[inst.subset] > config.limit:
            _fail(bench, f"yielded more than limit={config.limit} instances of subset {inst.subset!r}; "
                         "honour config.limit")
        if not isinstance(inst.requests, list) or not inst.requests:
            _fail(bench, f"instance {inst.doc_id!r} has no requests (want a non-empty list)")
        for r in inst.requests:
            if not isinstance(r, (LoglikelihoodRequest, GenerateRequest)):
                _fail(bench, f"instance {inst.doc_id!r} has a request of type {type(r).__name__}; "
                             "use LoglikelihoodRequest or GenerateRequest")
    records: list[dict[str, Any]] = [
        {"doc_id": i.doc_id, "subset": i.subset, "prompt": i.prompt, "target": i.target} for i in instances]
    for role, m in (("model", model or FakeModel()), ("base", base or FakeModel("fake-base", salt="base"))):
        outputs = _process(bench, instances, m)
        for rec, out in zip(records, outputs):
            rec[role] = out
        agg = bench.aggregate(outputs)
        if not isinstance(agg, dict):
            _fail(bench, f"aggregate returned a {type(agg).__name__}, not a dict of metric -> float")
        for name in declared:
            if name not in agg:
                _fail(bench, f"aggregate has no value for declared metric {name!r}")
        for name, v in agg.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                _fail(bench, f"aggregate value {name!r} is {v!r}; want a finite float")
        if role == "model":
            summary = {"n": len(instances), "requests": sum(len(i.requests) for i in instances), "aggregate": agg}
    pair = bench.postprocess(records, RunContext(judge_factory=lambda: FakeModel("fake-judge", salt="judge")))
    if pair is not None and not isinstance(pair, dict):
        _fail(bench, f"postprocess returned a {type(pair).__name__}; want None or a dict")
    summary["pairwise"] = pair
    return summary


def _process(bench: Any, instances: list[Instance], model: Model) -> list[dict[str, Any]]:
    """Answer every request as the engine does (one call per request kind), then ``process_batch``."""
    lls = [r for i in instances for r in i.requests if isinstance(r, LoglikelihoodRequest)]
    gens = [r for i in instances for r in i.requests if isinstance(r, GenerateRequest)]
    answers: dict[Any, Any] = dict(zip(lls, model.loglikelihood(lls, progress=False)))
    answers.update(zip(gens, model.generate(gens, progress=False)))
    responses = [[answers[r] for r in i.requests] for i in instances]
    outputs = bench.process_batch(instances, responses, RunContext())
    if not isinstance(outputs, list) or len(outputs) != len(instances):
        _fail(bench, f"process_batch returned {type(outputs).__name__} of length "
                     f"{len(outputs) if hasattr(outputs, '__len__') else '?'} for {len(instances)} instances; "
                     "want one dict per instance")
    declared = {m.name for m in bench.metrics}
    for inst, out in zip(instances, outputs):
        where = f"process({inst.doc_id!r})"
        if not isinstance(out, dict):
            _fail(bench, f"{where} returned a {type(out).__name__}; want {{'answer': str, 'scores': {{...}}}}")
        if "answer" not in out or "scores" not in out:
            _fail(bench, f"{where} returned keys {sorted(out)}; want at least 'answer' and 'scores'")
        if not isinstance(out["answer"], str):
            _fail(bench, f"{where}'s answer is a {type(out['answer']).__name__}; want str")
        if not isinstance(out["scores"], dict):
            _fail(bench, f"{where}'s scores is a {type(out['scores']).__name__}; want a dict metric -> float")
        for name, v in out["scores"].items():
            if name not in declared:
                _fail(bench, f"{where} scores metric {name!r}, which is not declared in metrics {sorted(declared)}")
            if not isinstance(v, float):
                _fail(bench, f"{where} score {name!r} is {v!r} ({type(v).__name__}); want a float, e.g. float(ok)")
        try:
            json.dumps(out)
        except (TypeError, ValueError) as e:
            _fail(bench, f"{where} returned something JSON cannot store in the samples file ({e})")
    return outputs
