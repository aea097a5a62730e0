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
from pathlib import Path
from typing import Any

from harness.api import (
    Benchmark,
    BenchmarkConfig,
    GenerateRequest,
    HarnessError,
    Instance,
    Metric,
    RunContext,
    did_you_mean,
    hookimpl,
)
from harness.api.data import bundled, read_json, read_jsonl

from .cache import JudgeCache, default_cache_path, judge_fingerprint
from .pairwise import ANNOTATOR, PairwiseJudge, load_template
from .score import ScoreJudge, score_summary

DATASETS = ("helpful_base", "koala", "oasst", "selfinstruct", "vicuna")
FILE_SUBSET = "file"
DEFAULT_LIMIT, DEFAULT_FILE_LIMIT = 4, 20  # per AlpacaEval source (20 instructions) / for data=FILE
REFERENCE_GENERATOR = "gpt4_1106_preview"
STOPS = ("\n\n### Instruction", "\n\n### Input", "<|im_end|>", "<|endoftext|>", "<|end|>")
CHOICES = {"mode": ("pairwise", "score"), "against": ("auto", "base", "reference"),
           "judge_method": ("auto", "logprobs", "generate"), "judge_format": ("chatml", "raw"),
           "score_parse": ("strict", "lenient")}
DEFAULTS: dict[str, Any] = {"mode": "pairwise", "against": "auto", "swap": False, "data": None,
                            "prompt_format": None, "max_tokens": 128, "judge_method": "auto",
                            "judge_cache": None, "judge_format": "chatml", "score_parse": "strict", "order_seed": 0}


def bundled_path() -> Path:
    return Path(str(bundled("alpaca_eval", f"{REFERENCE_GENERATOR}.model_outputs.json.gz")))


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise HarnessError(f"alpaca_eval option {name}={value!r}: expected true or false")


def parse_options(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate ``--option alpaca_eval.NAME=VALUE`` values before any model loads."""
    for key in raw:
        if key not in DEFAULTS:
            raise HarnessError(f"alpaca_eval has no option {key!r}{did_you_mean(key, DEFAULTS)}; "
                               f"options: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **raw}
    for key, allowed in CHOICES.items():
        if opts[key] not in allowed:
            raise HarnessError(f"alpaca_eval option {key}={opts[key]!r}: expected one of {', '.join(allowed)}")
    opts["swap"] = _as_bool("swap", opts["swap"])
    for key in ("max_tokens", "order_seed"):
        try:
            opts[key] = int(opts[key])
        except (TypeError, ValueError):
            raise HarnessError(f"alpaca_eval option {key}={opts[key]!r}: expected an integer") from None
    return opts


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """A JSON list / JSONL of ``{"instruction", "input"?, "output"?, "dataset"?}`` records."""
    path = Path(path)
    what = "alpaca_eval data file"
    recs = [rec for _, rec in read_jsonl(path, what)] if ".jsonl" in path.name else read_json(path, what)
    if not isinstance(recs, list) or not recs:
        raise HarnessError(f"alpaca_eval data={path}: expected a non-empty JSON list of instruction records")
    for i, rec in enumerate(recs):
        if not isinstance(rec, dict) or not isinstance(rec.get("instruction"), str) or not rec["instruction"].strip():
            raise HarnessError(f"alpaca_eval data={path}: record {i} has no 'instruction' string")
        if rec.get("output") is not None and not isinstance(rec["output"], str):
            raise HarnessError(f"alpaca_eval data={path}: record {i}: 'output' must be a string")
    return recs


def _docs(opts: dict[str, Any]) -> list[dict[str, Any]]:
    data = opts["data"]
    recs = load_records(data or bundled_path())
    docs = []
    for i, rec in enumerate(recs):
        instruction, inp = rec["instruction"], rec.get("input") or ""
        docs.append({
            "id": f"{FILE_SUBSET}-{i:04d}" if data else f"alpaca_eval-{i:03d}",
            "subset": FILE_SUBSET if data else rec.get("dataset", "unknown"),
            "instruction": instruction, "input": inp,
            # what the judge and the evaluated models see (input as its own paragraph, as finetune does)
            "prompt": f"{instruction}\n\n{inp}" if inp else instruction,
            "reference": rec.get("output"),
        })
    return docs


class AlpacaEval(Benchmark):
    name = "alpaca_eval"
    version = "1"
    description = "AlpacaEval-style judged instruction following: win rates vs base or reference outputs"
    metrics = (
        Metric("judge_score", "continuous", description="mode=score: 0-100 judge score of the replies that parsed"),
        Metric("judge_parsed", "binary", description="mode=score: the judge replied with an integer in 0-100"),
    )
    subsets = DATASETS + (FILE_SUBSET,)
    default_subsets = DATASETS
    options = {
        "mode": "pairwise (default: AlpacaEval weighted m/M judge) | score (0-100 vs the expected output)",
        "against": "auto (default: base if --base, else reference) | base | reference",
        "swap": "judge both output orders and average (default false: seeded random order as upstream)",
        "data": "JSON list of {instruction, input?, output?} (e.g. harness finetune's test-responses.json); "
                "default: the bundled 805 AlpacaEval instructions with gpt4_1106_preview references",
        "prompt_format": "format every model's prompts with this format (default: each model's own format)",
        "max_tokens": "answer length cap (default 128); default limit 4 per AlpacaEval source = 20 instructions",
        "judge_method": "auto (default) | logprobs (label log-probabilities) | generate (greedy label)",
        "judge_cache": "sqlite file for judge calls, or off (default $HARNESS_JUDGE_CACHE or "
                       "~/.cache/harness/judge-cache.sqlite)",
        "judge_format": "mode=score: chatml (default) | raw prompt for the judge",
        "score_parse": "mode=score: strict (default: the reply must be an integer) | lenient (first integer)",
        "order_seed": "seed of the per-instruction output order (default 0, alpaca_eval's)",
    }

    # The engine prompts each model in its own format, or every model in option prompt_format.
    instruction_following = True

    def __init__(self) -> None:
        self._opts: dict[str, Any] = dict(DEFAULTS)
        self._docs: dict[str, dict[str, Any]] = {}
        self._score_judges: list[ScoreJudge] = []

    def instances(self, config: BenchmarkConfig) -> Iterable[Instance]:
        opts = self._opts = parse_options(dict(config.options))
        self._score_judges = []
        docs = _docs(opts)
        needs_reference = opts["mode"] == "score" or opts["against"] == "reference"
        if needs_reference and any(d["reference"] is None for d in docs):
            raise HarnessError(f"alpaca_eval data={opts['data']}: mode={opts['mode']} against={opts['against']} "
                               "needs an 'output' (reference answer) in every record")
        wanted = [FILE_SUBSET] if opts["data"] else list(config.subsets or DATASETS)
        limit = config.limit if config.limit is not None else (DEFAULT_FILE_LIMIT if opts["data"] else DEFAULT_LIMIT)
        taken: dict[str, int] = {}
        self._docs = {}
        for doc in docs:
            if doc["subset"] not in wanted or taken.get(doc["subset"], 0) >= limit:
                continue
            taken[doc["subset"]] = taken.get(doc["subset"], 0) + 1
            self._docs[doc["id"]] = doc
            yield Instance(doc_id=doc["id"], subset=doc["subset"], doc=doc, prompt=doc["prompt"],
                           target=doc["reference"] or "",
                           requests=[GenerateRequest(doc["prompt"], stop=STOPS, max_tokens=opts["max_tokens"])])

    def process(self, instance: Instance, responses: list) -> dict[str, Any]:
        return {"answer": (responses[0] if responses else "").strip(), "scores": {}}

    def _judge(self, context: RunContext) -> Any:
        judge = context.judge
        if judge is None:
            raise HarnessError("alpaca_eval needs a judge: pass --judge MODEL or --judge openai:URL --judge-model NAME")
        return judge

    def _cache(self) -> JudgeCache:
        path = self._opts.get("judge_cache")
        if path is None:
            return JudgeCache(default_cache_path())
        return JudgeCache(None if str(path).lower() in ("off", "none", "false", "0") else path)

    def process_batch(self, instances: list[Instance], responses: list[list], context: RunContext) -> list[dict]:
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
            out["scores"] = {"judge_parsed": float(verdict["score"] is not None)}
            if verdict["score"] is not None:
                out["scores"]["judge_score"] = float(verdict["score"])
        return outs

    def _judge_info(self, judge: Any, calls: int, caches: list[JudgeCache], **extra: Any) -> dict[str, Any]:
        info = getattr(judge, "info", None)
        return {"spec": getattr(info, "spec", ""), "backend": getattr(info, "backend", ""),
                "fingerprint": judge_fingerprint(judge), "calls": calls,
                "cache": {"path": caches[0].describe()["path"] if caches else None,
                          "hits": sum(c.hits for c in caches), "misses": sum(c.misses for c in caches)}, **extra}

    def postprocess(self, records: list[dict[str, Any]], context: RunContext) -> dict[str, Any] | None:
        roles = [r for r in ("model", "base") if records and all(r in rec for rec in records)]
        if self._opts["mode"] == "score":
            judges, self._score_judges = self._score_judges, []
            out: dict[str, Any] = {"mode": "score", "score": {}}
            for role in roles:
                out["score"][role] = score_summary([rec[role]["judge"] for rec in records],
                                                   [rec["doc_id"] for rec in records])
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
        from .metrics import head2head, summarise  # numpy: only when judging

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
            prefs = [v["preference"] for v in verdicts]
            summary = summarise(prefs, [len(a) for a in firsts], [len(b) for b in seconds])
            by_subset: dict[str, list] = {}
            for rec, p in zip(records, prefs):
                by_subset.setdefault(rec["subset"], []).append(p)
            summary["by_subset"] = {s: head2head(ps) for s, ps in sorted(by_subset.items())}
            summary["baseline"] = baseline or ("reference:" + (self._opts["data"] or REFERENCE_GENERATOR))
            result[name] = summary
        result["judge"] = self._judge_info(pj.judge, pj.calls, [cache], annotator=ANNOTATOR, method=method,
                                           swap=self._opts["swap"], order_seed=self._opts["order_seed"])
        return result


@hookimpl
def register_benchmarks(register):
    register(AlpacaEval())
