"""AlpacaEval-style LLM-judged instruction following: the model against its base or a reference.

Both systems answer the same instructions; a judge model (``--judge``, any harness model
or ``openai:URL``) compares the answers in :meth:`AlpacaEval.postprocess` with AlpacaEval
2.0's weighted ``m``/``M`` prompt (:mod:`.pairwise`), and the win rates are computed
as alpaca_eval does (:mod:`.metrics`). What is compared (option ``against``):

* ``auto`` (default): the model against its base when ``--base`` is given, else against
  the reference outputs;
* ``base``: model vs base head-to-head (the base is the baseline, output_1);
* ``reference``: each system against the reference outputs (bundled: the 805 AlpacaEval
  instructions with gpt4_1106_preview answers; or ``data=FILE``, e.g. the
  ``test-responses.json`` of ``harness finetune``, whose ``output`` is the reference).

``mode=score`` is the "LLMs from scratch" judge instead: each response is scored 0–100
against the expected output; replies that are not an integer are counted, never dropped.

results.json ``benchmarks.alpaca_eval.pairwise`` holds ``{"judge": {...}, "model_vs_base" |
"model_vs_reference" | "base_vs_reference": {win_rate, standard_error, n_wins, n_wins_base,
n_draws, n_total, discrete_win_rate, length_controlled_winrate_local, ..., by_subset}}`` (or
``{"judge", "score": {role: summary}}`` in score mode); every sample record gets a ``judge``
field keyed the same way with ``preference``, ``order`` and the judge's ``raw`` output.
Judge calls are cached on disk (see :mod:`.cache`), so a rerun costs no judge calls.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    Metric,
    RunContext,
    hookimpl,
)

from .cache import JudgeCache, cache_from_option, judge_fingerprint
from .check import measured
from .data import (
    DATASETS,
    DEFAULT_FILE_LIMIT,
    DEFAULT_LIMIT,
    DEFAULTS,
    FILE_SUBSET,
    REFERENCE_GENERATOR,
    STOPS,
    bundled_path,
    docs_of,
    load_records,
    parse_options,
)
from .pairwise import ANNOTATOR, PairwiseJudge, load_template
from .score import ScoreJudge, score_summary

__all__ = ["STOPS", "AlpacaEval", "bundled_path", "load_records", "parse_options"]

class AlpacaEval(Benchmark):
    name = "alpaca_eval"
    version = "1"
    description = "AlpacaEval-style judged instruction following: win rates vs base or reference outputs"
    metrics = (
        Metric("judge_score", "continuous", description="mode=score: 0-100 judge score of the replies that parsed"),
    )
    subsets = DATASETS + (FILE_SUBSET,)
    default_subsets = DATASETS
    options = {
        "mode": "pairwise (default: AlpacaEval weighted m/M judge) | score (0-100 vs the expected output)",
        "against": "auto (default: base if --base, else reference) | base | reference",
        "swap": "judge both output orders and average (default false: seeded random order as upstream)",
        "data": "JSON list of {instruction, input?, output?, model_response?} (e.g. harness finetune's "
                "test-responses.json); default: the bundled 805 AlpacaEval instructions with gpt4_1106_preview "
                "references",
        "use_responses": "true (default): when every data record has a model_response, judge it as the model's "
                         "answer instead of generating again (a --base cannot be judged then)",
        "prompt_format": "format every model's prompts with this format (default: each model's own format)",
        "max_tokens": "answer length cap (default 128); default limit 4 per AlpacaEval source = 20 instructions",
        "judge_method": "auto (default) | logprobs (label log-probabilities) | generate (greedy label)",
        "judge_cache": "sqlite file for judge calls, or off (default $HARNESS_JUDGE_CACHE or "
                       "~/.cache/harness/judge-cache.sqlite)",
        "judge_check": "pairs of the GPT-4-turbo reference the judge is measured on before its verdicts are "
                       "reported (default 20, cached per judge; 0: skip)",
        "judge_format": "mode=score: chatml (default) | raw prompt for the judge",
        "score_parse": "mode=score: strict (default: the reply must be an integer) | lenient (first integer)",
        "order_seed": "seed of the per-instruction output order (default 0, alpaca_eval's)",
    }
    score_options = {
        "model_outputs": "JSON list of {instruction, output, generator} (alpaca_eval's layout) or harness "
                         "finetune's test-responses.json (its model_response is judged, its output is the reference)",
        "reference_outputs": "the baseline's outputs in the same layout, matched by instruction (default: "
                             "test-responses.json's output, else the bundled gpt4_1106_preview outputs)",
        "mode": "pairwise (default) | score (ch07 0-100 against the reference output)",
        "judge_check": "reference pairs to measure the judge on first (default 20; 0: skip)",
        "judge_method": "auto (default) | logprobs | generate",
        "judge_cache": "sqlite file for judge calls, or off",
    }

    # The engine prompts each model in its own format, or every model in option prompt_format.
    instruction_following = True

    def __init__(self) -> None:
        self._opts: dict[str, Any] = dict(DEFAULTS)
        self._docs: dict[str, dict[str, Any]] = {}
        self._score_judges: list[ScoreJudge] = []
        self._saved = False  # answers come from data's model_response
        self._batches = 0  # process_batch calls this run: the engine answers with the model first

    def instances(self, config: BenchmarkConfig) -> Iterable[Instance]:
        opts = self._opts = parse_options(dict(config.options))
        self._score_judges, self._batches = [], 0
        docs = docs_of(opts)
        needs_reference = opts["mode"] == "score" or opts["against"] == "reference"
        if needs_reference and any(d["reference"] is None for d in docs):
            raise HarnessError(f"alpaca_eval data={opts['data']}: mode={opts['mode']} against={opts['against']} "
                               "needs an 'output' (reference answer) in every record")
        self._saved = bool(opts["data"]) and opts["use_responses"] and all(d["response"] is not None for d in docs)
        wanted = [FILE_SUBSET] if opts["data"] else list(config.subsets or DATASETS)
        limit = config.limit if config.limit is not None else (DEFAULT_FILE_LIMIT if opts["data"] else DEFAULT_LIMIT)
        taken: dict[str, int] = {}
        self._docs = {}
        for doc in docs:
            if doc["subset"] not in wanted or taken.get(doc["subset"], 0) >= limit:
                continue
            taken[doc["subset"]] = taken.get(doc["subset"], 0) + 1
            self._docs[doc["id"]] = doc
            requests = [] if self._saved else [GenerateRequest(doc["prompt"], stop=STOPS,
                                                               max_tokens=opts["max_tokens"])]
            yield Instance(doc_id=doc["id"], subset=doc["subset"], doc=doc, prompt=doc["prompt"],
                           target=doc["reference"] or "", requests=requests)

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        if self._saved:
            return {"answer": instance.doc["response"].strip(), "scores": {}, "source": "model_response"}
        return {"answer": (responses[0] if responses else "").strip(), "scores": {}}

    def _judge(self, context: RunContext) -> Any:
        judge = context.judge
        if judge is None:
            raise HarnessError("alpaca_eval needs a judge: pass --judge MODEL or --judge openai:URL --judge-model NAME")
        return judge

    def _cache(self) -> JudgeCache:
        return cache_from_option(self._opts.get("judge_cache"))

    def process_batch(self, instances: list[Instance], responses: list[list], context: RunContext) -> list[dict]:
        self._batches += 1
        if self._saved and self._batches > 1:
            raise HarnessError(f"alpaca_eval data={self._opts['data']}: the file's model_response answers are the "
                               "model's; the base has none. Drop --base, or pass "
                               "--option alpaca_eval.use_responses=false to generate both")
        outs = [self.process(i, r) for i, r in zip(instances, responses)]
        if self._opts["mode"] != "score":
            return outs
        sj = ScoreJudge(self._judge(context), chat_format=self._opts["judge_format"],
                        lenient=self._opts["score_parse"] == "lenient", cache=self._cache(), progress=context.progress)
        self._score_judges.append(sj)
        items = [(i.doc["instruction"], i.doc["input"], i.doc["reference"], o["answer"])
                 for i, o in zip(instances, outs)]
        for out, verdict in zip(outs, sj.score(items)):
            out["judge"] = verdict
            out["scores"] = {} if verdict["score"] is None else {"judge_score": float(verdict["score"])}
        return outs

    def _judge_info(self, judge: Any, calls: int, caches: list[JudgeCache], **extra: Any) -> dict[str, Any]:
        info = getattr(judge, "info", None)
        out = {"spec": getattr(info, "spec", ""), "backend": getattr(info, "backend", ""),
               "fingerprint": judge_fingerprint(judge), "calls": calls,
               "cache": {"path": caches[0].describe()["path"] if caches else None,
                         "hits": sum(c.hits for c in caches), "misses": sum(c.misses for c in caches)}, **extra}
        if self._opts["judge_check"] > 0:
            out["check"] = measured(judge, self._opts["judge_check"], self._cache(), self._opts["judge_method"])
        return out

    def postprocess(self, records: list[dict[str, Any]], context: RunContext) -> dict[str, Any] | None:
        roles = [r for r in ("model", "base") if records and all(r in rec for rec in records)]
        if self._opts["mode"] == "score":
            judges, self._score_judges = self._score_judges, []
            out: dict[str, Any] = {"mode": "score", "score": {}}
            for role in roles:
                out["score"][role] = score_summary([rec[role]["judge"] for rec in records],
                                                   [rec["doc_id"] for rec in records])
            for rec in records:  # the report reads one verdict per sample: both scores, or "judge failed"
                rec["judge"] = {"score": {role: rec[role]["judge"] for role in roles}}
            judge = judges[0].judge if judges else self._judge(context)
            out["judge"] = self._judge_info(judge, sum(j.calls for j in judges), [j.cache for j in judges],
                                            prompt="LLMs-from-scratch ch07 0-100 score",
                                            format=self._opts["judge_format"], parse=self._opts["score_parse"])
            return out
        against = self._opts["against"]
        if against == "auto":
            against = "base" if "base" in roles else "reference"
        docs = [self._docs.get(rec["doc_id"]) for rec in records]
        if any(d is None for d in docs):
            raise HarnessError("alpaca_eval: sample records do not match this run's instructions; rerun the benchmark")
        if against == "base":
            if "base" not in roles:
                raise HarnessError("alpaca_eval option against=base needs --base MODEL")
            comparisons = [("model_vs_base", "base", "model")]
        else:
            if any(d["reference"] is None for d in docs):
                raise HarnessError("alpaca_eval: without --base the model is judged against reference outputs, "
                                   "but data= has records without 'output'; add references or pass --base")
            comparisons = [(f"{r}_vs_reference", None, r) for r in roles]
        cache = self._cache()
        pj = PairwiseJudge(self._judge(context), load_template(), method=self._opts["judge_method"],
                           swap=self._opts["swap"], seed=self._opts["order_seed"], cache=cache,
                           progress=context.progress)
        result: dict[str, Any] = {"mode": "pairwise"}
        method = None
        for name, baseline, evaluated in comparisons:
            firsts = [rec[baseline]["answer"] if baseline else d["reference"] for rec, d in zip(records, docs)]
            seconds = [rec[evaluated]["answer"] for rec in records]
            method, verdicts = pj.judge_pairs([(d["prompt"], a, b) for d, a, b in zip(docs, firsts, seconds)])
            for rec, verdict in zip(records, verdicts):
                rec.setdefault("judge", {})[name] = verdict
            from .metrics import comparison_summary  # numpy: only when judging

            summary = comparison_summary(verdicts, firsts, seconds, [rec["subset"] for rec in records])
            summary["baseline"] = baseline or ("reference:" + (self._opts["data"] or REFERENCE_GENERATOR))
            result[name] = summary
        result["judge"] = self._judge_info(pj.judge, pj.calls, [cache], annotator=ANNOTATOR, method=method,
                                           swap=self._opts["swap"], order_seed=self._opts["order_seed"])
        return result

    def check_judge(self, judge: Any, *, n: int = 20, seed: int = 0, max_chars: int = 3000,
                    method: str = "auto", judge_cache: str | None = None, progress: bool = True) -> dict[str, Any]:
        """`harness judge check`: the judge against GPT-4-turbo's annotations (see :mod:`.check`)."""
        from .check import check_judge

        return check_judge(judge, n=n, seed=seed, max_chars=max_chars, method=method,
                           cache=cache_from_option(judge_cache), progress=progress)

    def score_files(self, context: RunContext, **kwargs: Any) -> dict[str, Any]:
        """`harness score alpaca_eval --model-outputs A.json [--reference-outputs B.json] [--mode score]`."""
        from .outputs import score_outputs

        return score_outputs(self._judge(context), progress=context.progress, **kwargs)


@hookimpl
def register_benchmarks(register):
    register(AlpacaEval())
